"""The chain client: one face over eth-tester, anvil and any JSON-RPC node; signs locally.

About 500 lines: the one chain client; eth-tester's and anvil's differences (reverts,
estimates, receipts) are kept here so that no other module knows them.
"""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal

from eth_abi.abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import (
    BlockNotFound,
    ContractCustomError,
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
)
from web3.exceptions import Web3Exception as Web3Exception  # for callers outside the chain modules
from web3.providers import EthereumTesterProvider, HTTPProvider
from web3.types import Nonce, RPCEndpoint, TxParams, TxReceipt, Wei

from ledger.errors import (
    ChainError,
    ContractRevertError,
    NodeUnreachableError,
    TransactionTimeoutError,
)

ChainKind = Literal["embedded", "anvil", "rpc"]

RECEIPT_TIMEOUT_S = 120.0
RPC_TIMEOUT_S = 30.0
# Ether given to each local signing account on chains we control (embedded, anvil).
FUNDING_WEI = Wei(10**21)
# Times a transaction is signed again after the node said its nonce was taken meanwhile
# (another process sent with the account): each time with the node's pending count.
NONCE_ATTEMPTS = 5
# How nodes (geth, anvil, Besu, Nethermind) say the nonce was used by another transaction.
_NONCE_TAKEN = (
    "nonce too low",
    "nonce is too low",
    "replacement transaction underpriced",
    "transaction underpriced",
    "nonce too high",
    "oldnonce",
    "incorrect nonce",
    "invalid nonce",
    "invalid transaction nonce",  # eth-tester
)
_ALREADY_KNOWN = ("already known", "known transaction", "already imported", "alreadyknown")

AccountLock = Callable[[str], AbstractContextManager[object]]
"""Who may sign with an address now, across the processes that share its key."""


class NonceTakenError(ChainError):
    """The node refused a transaction because its nonce was used meanwhile (by another
    process holding the same key): `Chain.send_recorded` signs it again."""


def _nonce_answer(exc: Exception) -> str | None:
    """'known' when the node holds this very transaction already, 'taken' when its nonce
    was used by another, else None (any other failure)."""
    text = str(exc).lower()
    if any(marker in text for marker in _ALREADY_KNOWN):
        return "known"
    if any(marker in text for marker in _NONCE_TAKEN):
        return "taken"
    return None


def _error_selectors(abi: Sequence[dict[str, Any]]) -> dict[bytes, tuple[str, list[str]]]:
    table: dict[bytes, tuple[str, list[str]]] = {
        function_signature_to_4byte_selector("Error(string)"): ("Error", ["string"]),
        function_signature_to_4byte_selector("Panic(uint256)"): ("Panic", ["uint256"]),
    }
    for entry in abi:
        if entry.get("type") != "error":
            continue
        types = [abi_type(i) for i in entry.get("inputs", [])]
        signature = f"{entry['name']}({','.join(types)})"
        table[function_signature_to_4byte_selector(signature)] = (entry["name"], types)
    return table


def abi_type(param: dict[str, Any]) -> str:
    """The canonical ABI type of a parameter (tuples spelled out), as in signatures."""
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def decode_revert(raw: bytes, abi: Sequence[dict[str, Any]]) -> ContractRevertError:
    """Name the contract's custom error in `raw` revert data (or say it is unknown)."""
    table = _error_selectors(abi)
    entry = table.get(raw[:4])
    if entry is None:
        return ContractRevertError("UnknownRevert", (raw,), raw)
    name, types = entry
    try:
        values = tuple(abi_decode(types, raw[4:]))
    except Exception:  # malformed arguments still name the error
        values = ()
    return ContractRevertError(name, values, raw)


def _revert_bytes(exc: Exception) -> bytes | None:
    """Raw revert data from web3's error (anvil, geth) or eth-tester's TransactionFailed."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    if isinstance(data, bytes):
        return data
    message = exc.args[0] if exc.args else None
    if isinstance(message, bytes):
        return message
    if isinstance(message, str):
        prefix = "execution reverted: "
        text = message[len(prefix) :] if message.startswith(prefix) else message
        if text.startswith(("b'", 'b"')):
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return None
            return value if isinstance(value, bytes) else None
    return None


def _is_revert(exc: Exception) -> bool:
    return isinstance(exc, ContractLogicError | ContractCustomError) or (
        type(exc).__name__ == "TransactionFailed"
    )


def _estimate_once(state: Any, transaction: Any) -> int:
    """Gas for `transaction`: one run at the block's gas limit, plus a margin for 63/64ths."""
    from eth.vm.spoof import SpoofTransaction

    limit = int(state.gas_limit)
    snapshot = state.snapshot()
    try:
        computation = state.apply_transaction(SpoofTransaction(transaction, gas=limit, gas_price=0))
        if computation.is_error:
            raise computation.error  # eth-tester turns a revert into TransactionFailed
        used = limit - computation.get_gas_remaining()
    finally:
        state.revert(snapshot)
    return min(limit, int(used) * 64 // 63 + 20_000)


@dataclass(frozen=True)
class Mined:
    """What a successful wait learns from a receipt, its logs left undecoded."""

    status: int  # 1 success, 0 reverted
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class SignedTx:
    """A transaction signed locally: its raw bytes and its hash."""

    raw: bytes
    tx_hash: bytes


@dataclass
class Chain:
    """A connection to one chain, with per-account nonces and deadline-bound receipts."""

    w3: Web3
    kind: ChainKind
    url: str | None = None
    confirmations: int = 0
    receipt_timeout: float = RECEIPT_TIMEOUT_S
    _nonces: dict[str, int] = field(default_factory=dict, repr=False)
    _chain_id: int | None = field(default=None, repr=False)
    # Set when other processes sign with the same accounts (`share_accounts`).
    _account_lock: AccountLock | None = field(default=None, repr=False)
    _thread_locks: dict[str, threading.RLock] = field(default_factory=dict, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ------------------------------------------------------------------ construction

    @classmethod
    def embedded(cls) -> Chain:
        """A fresh eth-tester chain in this process: ephemeral, for demos and unit tests."""
        provider = EthereumTesterProvider()
        # py-evm estimates gas by bisection, running a large transaction about 13 times;
        # one run with a margin is enough here (no refunds or gas-dependent paths).
        tester: Any = provider.ethereum_tester
        tester.backend.chain.gas_estimator = staticmethod(_estimate_once)
        return cls(Web3(provider), "embedded")

    @classmethod
    def connect(cls, url: str, *, kind: ChainKind = "rpc", confirmations: int = 0) -> Chain:
        """Connect to a JSON-RPC node; NodeUnreachableError when nothing answers there."""
        # web3.py's validation middleware asks the node's chain id twice for every call,
        # estimate and transaction it checks (7 times an anchored batch); a node's chain id
        # is fixed, as `chain_id` already takes it: it is kept, the checks still made.
        provider = HTTPProvider(
            url,
            request_kwargs={"timeout": RPC_TIMEOUT_S},
            cache_allowed_requests=True,
            cacheable_requests={RPCEndpoint("eth_chainId")},
        )
        w3 = Web3(provider)
        chain = cls(w3, kind, url=url, confirmations=confirmations)
        try:
            chain._chain_id = int(w3.eth.chain_id)
        except Exception as exc:
            raise NodeUnreachableError(
                f"no Ethereum node answers at {url} ({exc.__class__.__name__})"
            ) from exc
        return chain

    # ------------------------------------------------------------------ facts

    @property
    def chain_id(self) -> int:
        """The chain id (asked once)."""
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def block_number(self) -> int:
        """The latest block number."""
        return int(self.w3.eth.block_number)

    def code_at(self, address: str) -> bytes:
        """The runtime code deployed at `address` (empty when none)."""
        return bytes(self.w3.eth.get_code(Web3.to_checksum_address(address)))

    # ------------------------------------------------------------------ accounts

    def fund(self, address: str, amount: Wei = FUNDING_WEI) -> None:
        """Give `address` ether from one of the node's own unlocked accounts that can still
        afford it (embedded and anvil only): anvil starts each with 10,000 ether, so one
        account alone runs dry after nine fundings (a catalog of five departments needs
        eleven)."""
        if self.kind == "rpc":
            raise ChainError("cannot fund accounts on a foreign chain: use a funded key")
        sender = self._funder(amount)
        tx_hash = self.w3.eth.send_transaction(
            {"from": sender, "to": Web3.to_checksum_address(address), "value": amount}
        )
        self.wait(tx_hash)

    def _funder(self, amount: Wei) -> str:
        """The first of the node's accounts holding `amount` and a margin for gas."""
        accounts = self.w3.eth.accounts
        for account in accounts:
            if int(self.w3.eth.get_balance(account)) >= 2 * int(amount):
                return str(account)
        raise ChainError(
            f"none of the node's {len(accounts)} own accounts holds {2 * int(amount)} wei"
        )

    # ------------------------------------------------------------------ transactions

    def prepare(
        self,
        account: LocalAccount,
        build: Callable[[TxParams], TxParams],
        *,
        abi: Sequence[dict[str, Any]] = (),
        gas: int | None = None,
    ) -> TxParams:
        """Build a transaction, estimating its gas: a revert raises ContractRevertError here,
        before anything is sent."""
        params: TxParams = {"from": account.address, "chainId": self.chain_id}
        if gas is not None:
            params["gas"] = gas
        try:
            return build(params)
        except Exception as exc:
            raise self._translate(exc, abi) from exc

    def submit(
        self,
        account: LocalAccount,
        build: Callable[[TxParams], TxParams],
        *,
        abi: Sequence[dict[str, Any]] = (),
        gas: int | None = None,
    ) -> bytes:
        """`prepare`, then `send`; return the transaction hash."""
        return self.send(account, self.prepare(account, build, abi=abi, gas=gas), abi=abi)

    def send(
        self, account: LocalAccount, tx: TxParams, *, abi: Sequence[dict[str, Any]] = ()
    ) -> bytes:
        """Sign a prepared transaction locally with the account's next nonce and send it."""
        return self.send_recorded(account, tx, abi=abi)

    def send_recorded(
        self,
        account: LocalAccount,
        tx: TxParams,
        *,
        abi: Sequence[dict[str, Any]] = (),
        record: Callable[[bytes], None] | None = None,
    ) -> bytes:
        """Sign `tx` with the account's next nonce, `record` its hash (written before the
        broadcast, so a crash leaves a trail), send it; return the hash sent.

        Under the account's lock: this process's threads, and with `share_accounts` every
        process, sign with it one at a time. A node saying the nonce was taken meanwhile (by
        a process that does not share the lock, or a node behind on its pool) is answered
        here: the transaction is signed again with the node's pending count, recorded again
        and sent again, up to NONCE_ATTEMPTS times; "already known" means it was sent.
        """
        address = account.address
        with self._lock_for(address):
            for attempt in range(1, NONCE_ATTEMPTS + 1):
                signed = self.sign(account, tx)
                if record is not None:
                    try:
                        record(signed.tx_hash)
                    except BaseException:  # nothing sent: the nonce is still free
                        self._nonces.pop(address, None)
                        raise
                try:
                    self.broadcast(account, signed, abi=abi)
                except NonceTakenError:
                    if attempt < NONCE_ATTEMPTS:
                        continue
                    raise
                return signed.tx_hash
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def share_accounts(self, lock: AccountLock) -> None:
        """Other processes sign with these accounts too: hold `lock(address)` while signing
        and sending, and read each nonce from the node (never from this process's cache)."""
        self._account_lock = lock
        self._nonces.clear()

    @contextmanager
    def _lock_for(self, address: str) -> Iterator[None]:
        with self._guard:
            local = self._thread_locks.setdefault(address, threading.RLock())
        shared = self._account_lock
        with local, shared(address) if shared is not None else nullcontext():
            yield

    def sign(self, account: LocalAccount, tx: TxParams) -> SignedTx:
        """Sign with the account's next nonce; the hash is known before anything is sent.
        (Alone, for one process's single sender: `send_recorded` signs under the lock.)"""
        tx = dict(tx)  # type: ignore[assignment]
        tx["nonce"] = Nonce(self._next_nonce(account.address))
        signed = account.sign_transaction(tx)  # type: ignore[arg-type]
        return SignedTx(bytes(signed.raw_transaction), bytes(signed.hash))

    def broadcast(
        self, account: LocalAccount, signed: SignedTx, *, abi: Sequence[dict[str, Any]] = ()
    ) -> None:
        """Send a signed transaction; on failure the nonce is re-read from the node next time.
        NonceTakenError when the node says another transaction has its nonce."""
        try:
            self.w3.eth.send_raw_transaction(signed.raw)
        except Exception as exc:
            self._nonces.pop(account.address, None)
            answer = _nonce_answer(exc)
            if answer == "known":  # this very transaction is in the node's pool: sent
                return
            if answer == "taken":
                raise NonceTakenError(
                    f"the nonce of 0x{signed.tx_hash.hex()} was used by another transaction "
                    f"of {account.address}: sign it again"
                ) from exc
            raise self._translate(exc, abi) from exc

    def forget_nonces(self) -> None:
        """Re-read every nonce from the node (after it restarted, or after a reorg)."""
        self._nonces.clear()

    def transaction_known(self, tx_hash: bytes) -> bool:
        """Whether the node knows the transaction (pending or mined)."""
        try:
            return self.w3.eth.get_transaction(HexBytes(tx_hash)) is not None
        except TransactionNotFound:
            return False

    def transaction_stuck(self, tx_hash: bytes) -> bool:
        """Whether the node holds the transaction unmined with a nonce it cannot mine next:
        behind a gap (signed with a nonce cached before the node lost its chain) or taken."""
        try:
            tx = self.w3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return False
        if tx.get("blockNumber") is not None:
            return False
        sender, nonce = tx["from"], int(tx["nonce"])
        mined = int(self.w3.eth.get_transaction_count(sender, "latest"))
        return not mined <= nonce < int(self.w3.eth.get_transaction_count(sender, "pending"))

    def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """The receipt if the transaction is mined, else None (no waiting)."""
        try:
            return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None

    def block_hash(self, number: int) -> bytes | None:
        """The hash of the canonical block at `number`, or None beyond the head."""
        try:
            return bytes(self.w3.eth.get_block(number)["hash"])
        except BlockNotFound:
            return None

    def transact(
        self,
        account: LocalAccount,
        build: Callable[[TxParams], TxParams],
        *,
        abi: Sequence[dict[str, Any]] = (),
        gas: int | None = None,
    ) -> TxReceipt:
        """`submit`, then wait for a successful receipt."""
        tx_hash = self.submit(account, build, abi=abi, gas=gas)
        receipt = self.wait(tx_hash)
        if receipt["status"] != 1:
            raise ChainError(f"transaction 0x{tx_hash.hex()} failed on chain (status 0)")
        return receipt

    def wait(self, tx_hash: bytes, timeout: float | None = None) -> TxReceipt:
        """The receipt of `tx_hash` once it has the configured confirmations, or a timeout error."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.receipt_timeout)
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                HexBytes(tx_hash), timeout=max(0.1, deadline - time.monotonic()), poll_latency=0.05
            )
        except TimeExhausted as exc:
            raise TransactionTimeoutError(
                f"no receipt for 0x{bytes(tx_hash).hex()} within the deadline: the node may be "
                "down or congested; the transaction may still be mined"
            ) from exc
        self._await_depth(tx_hash, int(receipt["blockNumber"]), deadline)
        return receipt

    def wait_mined(self, tx_hash: bytes, timeout: float | None = None) -> Mined:
        """`wait`, reading only status, block and gas: a receipt of hundreds of events costs
        more to format with web3's formatters than the node spends mining the transaction."""
        if self.kind == "embedded":
            receipt = self.wait(tx_hash, timeout)
            return Mined(
                int(receipt["status"]), int(receipt["blockNumber"]), int(receipt["gasUsed"])
            )
        deadline = time.monotonic() + (timeout if timeout is not None else self.receipt_timeout)
        param = "0x" + bytes(tx_hash).hex()
        while True:
            try:
                answer = self.w3.provider.make_request(
                    RPCEndpoint("eth_getTransactionReceipt"), [param]
                )
            except Exception as exc:
                raise self._translate(exc, ()) from exc
            if answer.get("error"):
                raise ChainError(f"eth_getTransactionReceipt failed: {answer['error']}")
            found = answer.get("result")
            if found:
                break
            if time.monotonic() > deadline:
                raise TransactionTimeoutError(
                    f"no receipt for {param} within the deadline: the node may be down or "
                    "congested; the transaction may still be mined"
                )
            time.sleep(0.02)
        mined = Mined(
            int(found["status"], 16), int(found["blockNumber"], 16), int(found["gasUsed"], 16)
        )
        self._await_depth(tx_hash, mined.block_number, deadline)
        return mined

    def _await_depth(self, tx_hash: bytes, block: int, deadline: float) -> None:
        target = block + self.confirmations
        while self.block_number() < target:
            if time.monotonic() > deadline:
                raise TransactionTimeoutError(
                    f"0x{bytes(tx_hash).hex()} mined but not yet {self.confirmations} blocks deep"
                )
            time.sleep(0.05)

    def _next_nonce(self, address: str) -> int:
        # Shared accounts: another process may have sent since, only the node knows.
        nonce = None if self._account_lock is not None else self._nonces.get(address)
        if nonce is None:
            nonce = int(
                self.w3.eth.get_transaction_count(Web3.to_checksum_address(address), "pending")
            )
        self._nonces[address] = nonce + 1
        return nonce

    def refusal(
        self, call: TxParams, *, abi: Sequence[dict[str, Any]] = ()
    ) -> ContractRevertError | None:
        """What the contract says to `call` now, without sending it (an eth_call at the
        latest block): its refusal, or None when it would go through. NodeUnreachableError
        or ChainError when the node does not answer or answers otherwise."""
        try:
            self.w3.eth.call(call)
        except Exception as exc:
            error = self._translate(exc, abi)
            if isinstance(error, ContractRevertError):
                return error
            raise error from exc
        return None

    def _translate(self, exc: Exception, abi: Sequence[dict[str, Any]]) -> Exception:
        if _is_revert(exc):
            raw = _revert_bytes(exc)
            if raw is not None:
                return decode_revert(raw, abi)
            return ContractRevertError("UnknownRevert", (str(exc),))
        if isinstance(exc, ConnectionError | OSError) or "Connection" in type(exc).__name__:
            return NodeUnreachableError(f"the node at {self.url} does not answer: {exc}")
        return ChainError(f"{type(exc).__name__}: {exc}")
