"""The chain client against a real anvil node: connecting, funding, confirmations, pipelined
nonces with mining paused, a node gone after connecting."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from support.deployment import HRSS_ID

from ledger import (
    REGISTRAR_ROLE,
    Chain,
    ChainError,
    LedgerContract,
    NodeUnreachableError,
    Status,
    TransactionTimeoutError,
    department_id,
    keccak256,
)


def h(label: str) -> bytes:
    return keccak256(label.encode())


def test_connect_to_anvil(anvil: Any) -> None:
    chain = Chain.connect(anvil.url, kind="anvil")
    assert chain.kind == "anvil"
    assert chain.url == anvil.url
    assert chain.chain_id == 31337
    assert chain.block_number() >= 0


def test_fund_refused_on_foreign_chain(anvil: Any) -> None:
    chain = Chain.connect(anvil.url)  # kind "rpc": a chain we do not control
    with pytest.raises(ChainError):
        chain.fund("0x" + "11" * 20)


def test_fund_more_accounts_than_one_node_account_can_afford(anvil: Any) -> None:
    # anvil gives each of its accounts 10,000 ether: eleven fundings (a five-department
    # catalog's accounts and the admin, as `serve --demo` makes) drained the first one.
    chain = Chain.connect(anvil.url, kind="anvil")
    receivers = [Account.create().address for _ in range(12)]
    for address in receivers:
        chain.fund(address)
    assert all(chain.w3.eth.get_balance(address) == 10**21 for address in receivers)


def _deploy_with_registrar(chain: Chain) -> tuple[LedgerContract, LocalAccount]:
    admin, registrar = Account.create(), Account.create()
    chain.fund(admin.address)
    chain.fund(registrar.address)
    ledger = LedgerContract.deploy(chain, admin)
    ledger.grant_department_role(admin, REGISTRAR_ROLE, registrar.address, department_id("BJ-HRSS"))
    return ledger, registrar


def test_confirmations_wait_for_depth(anvil: Any) -> None:
    chain = Chain.connect(anvil.url, kind="anvil", confirmations=2)
    sender = chain.w3.eth.accounts[0]
    tx_hash = chain.w3.eth.send_transaction({"from": sender, "to": sender, "value": 1})
    # anvil mines on demand: nothing makes the block 2 deep, so the deadline must hit
    with pytest.raises(TransactionTimeoutError, match="blocks deep"):
        chain.wait(tx_hash, timeout=0.5)
    chain.w3.provider.make_request("anvil_mine", [2])  # type: ignore[arg-type]
    receipt = chain.wait(tx_hash, timeout=5)
    assert chain.block_number() >= receipt["blockNumber"] + 2


def test_pipelined_submits_land_in_one_block_in_nonce_order(anvil: Any) -> None:
    """With mining paused, every transaction is pending when the next is built and signed."""
    chain = Chain.connect(anvil.url, kind="anvil")
    ledger, registrar = _deploy_with_registrar(chain)
    chain.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    values = [h(f"pending-{i}") for i in range(8)]
    hashes = [
        chain.submit(
            registrar, ledger._contract.functions.anchor(v).build_transaction, abi=ledger.abi
        )
        for v in values
    ]
    assert chain.w3.eth.get_transaction_count(registrar.address, "latest") + len(values) == (
        chain.w3.eth.get_transaction_count(registrar.address, "pending")
    )
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    receipts = [chain.wait(tx_hash, timeout=30) for tx_hash in hashes]
    assert all(r["status"] == 1 for r in receipts)
    assert len({r["blockNumber"] for r in receipts}) == 1
    assert [r["transactionIndex"] for r in receipts] == list(range(len(values)))
    for v in values:
        assert ledger.status_of(HRSS_ID, v).status is Status.ANCHORED


def test_node_gone_after_connect_is_unreachable(anvil: Any) -> None:
    chain = Chain.connect(anvil.url, kind="anvil")
    ledger, registrar = _deploy_with_registrar(chain)
    anvil.stop()
    with pytest.raises(NodeUnreachableError):
        chain.submit(
            registrar,
            ledger._contract.functions.anchor(h("nobody listens")).build_transaction,
            abi=ledger.abi,
        )
