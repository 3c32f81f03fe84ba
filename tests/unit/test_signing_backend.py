"""Transactions are signed with libsecp256k1 (coincurve), as the pure Python backend would."""

from __future__ import annotations

import os

from eth_account import Account
from eth_keys.backends import get_backend
from eth_keys.backends.coincurve import CoinCurveECCBackend
from eth_keys.backends.native.main import NativeECCBackend
from eth_keys.datatypes import PrivateKey


def test_eth_keys_signs_with_coincurve() -> None:
    assert isinstance(get_backend(), CoinCurveECCBackend)


def test_signatures_equal_the_pure_python_backends() -> None:
    for _ in range(20):
        key, digest = os.urandom(32), os.urandom(32)
        fast = PrivateKey(key, backend=CoinCurveECCBackend()).sign_msg_hash(digest)
        slow = PrivateKey(key, backend=NativeECCBackend()).sign_msg_hash(digest)
        assert fast.to_bytes() == slow.to_bytes()
        assert fast.recover_public_key_from_msg_hash(digest) == PrivateKey(key).public_key


def test_a_transaction_signs_the_same_bytes_as_before() -> None:
    account = Account.from_key("0x" + "42" * 32)
    tx = {
        "to": "0x" + "11" * 20,
        "value": 0,
        "gas": 100_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "nonce": 7,
        "chainId": 31337,
        "data": "0x" + "22" * 68,
    }
    signed = account.sign_transaction(tx)
    # as eth-keys' pure Python backend signs it (RFC 6979 nonces: deterministic)
    assert signed.raw_transaction.hex().endswith("43c031ff1421907febc337e5d6cc836c8e8dbbfa")
