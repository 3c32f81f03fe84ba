"""The Python binding of CommitmentLedger.sol: deploy, roles, anchoring, outcomes, views."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, cast

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from web3 import Web3
from web3.contract import Contract
from web3.types import TxParams, TxReceipt

from ledger.artifact import load_artifact
from ledger.calldata import WORD
from ledger.calldata import decode_bool as decode_bool
from ledger.calldata import encode_is_anchored as encode_is_anchored
from ledger.calldata import encode_outcomes as encode_outcomes
from ledger.calldata import encode_status_of as encode_status_of
from ledger.canonical import keccak256
from ledger.chain import Chain, abi_type
from ledger.errors import ChainError, ContractRevertError
from ledger.rpc import RpcBatch, hex_data, hex_quantity
from ledger.types import DepartmentId, Hash32

ZERO_HASH = Hash32(bytes(32))
REGISTRAR_ROLE = keccak256(b"REGISTRAR_ROLE")
VERIFIER_ROLE = keccak256(b"VERIFIER_ROLE")
DEPLOY_GAS = 3_000_000


class Status(IntEnum):
    """A commitment's status on chain; values are the contract's `Status` enum."""

    NONE = 0
    ANCHORED = 1
    WITHDRAWN = 2
    KEPT = 3
    MISMATCH = 4
    NEEDS_MANUAL = 5
    BREACHED = 6
    REPAIRED = 7
    EXPIRED = 8
    CORRECTED = 9
    PROPOSED = 10  # a breach proposed and notified, in its defence period; never public


def department_id(code: str) -> DepartmentId:
    """The on-chain id of a department: keccak256 of its code (e.g. "BJ-HRSS")."""
    return DepartmentId(keccak256(code.encode("utf-8")))


@dataclass(frozen=True)
class Standing:
    """A commitment's standing as the contract reports it."""

    status: Status
    department: bytes
    anchored_at: int
    updated_at: int


@dataclass(frozen=True)
class StandingNow:
    """What the contract says of a commitment at the time of asking: the head block,
    whether it holds the commitment (None when not asked: no batch to prove it in) and
    the commitment's standing."""

    head: int
    anchored: bool | None
    standing: Standing


@dataclass(frozen=True)
class BatchInfo:
    """A batch as the contract reports it (size 0 when unknown)."""

    department: bytes
    size: int
    anchored_at: int
    block_number: int


@dataclass(frozen=True)
class OutcomeItem:
    """One outcome for `record_outcomes`."""

    commitment: Hash32
    outcome: Status
    evidence: Hash32
    root: Hash32 = ZERO_HASH
    proof: tuple[Hash32, ...] = ()


@dataclass(frozen=True)
class Sent:
    """A mined transaction."""

    tx_hash: bytes
    block_number: int
    gas_used: int


def decode_standing(raw: bytes) -> Standing:
    """`statusOf`'s return value (uint8, bytes32, uint64, uint64); ChainError when malformed."""
    if len(raw) != 4 * WORD:
        raise ChainError(f"statusOf returned {len(raw)} bytes, not {4 * WORD}")
    status, anchored_at, updated_at = (
        int.from_bytes(raw[i * WORD : (i + 1) * WORD], "big") for i in (0, 2, 3)
    )
    if anchored_at >= 2**64 or updated_at >= 2**64:
        raise ChainError("statusOf returned a time wider than uint64")
    try:
        known = Status(status)
    except ValueError:
        raise ChainError(f"statusOf returned an unknown status {status}") from None
    return Standing(known, raw[WORD : 2 * WORD], anchored_at, updated_at)


def _sent(receipt: TxReceipt) -> Sent:
    return Sent(
        bytes(receipt["transactionHash"]), int(receipt["blockNumber"]), int(receipt["gasUsed"])
    )


class LedgerContract:
    """A deployed CommitmentLedger on one chain."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.address = Web3.to_checksum_address(address)
        self.abi: list[dict[str, Any]] = load_artifact()["abi"]
        self._contract: Contract = chain.w3.eth.contract(address=self.address, abi=self.abi)
        self._functions = {e["name"]: e for e in self.abi if e.get("type") == "function"}
        self._rpc: RpcBatch | None = None
        self._rpc_lock = threading.Lock()

    @classmethod
    def deploy(cls, chain: Chain, admin: LocalAccount) -> LedgerContract:
        """Deploy a new CommitmentLedger with `admin` as the governing office."""
        artifact = load_artifact()
        factory = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = chain.transact(
            admin,
            lambda p: factory.constructor(admin.address).build_transaction(p),
            abi=artifact["abi"],
            gas=DEPLOY_GAS,
        )
        address = receipt["contractAddress"]
        if address is None:
            raise ChainError("deployment receipt has no contract address")
        return cls(chain, address)

    # ------------------------------------------------------------------ writes

    def builder(self, name: str, *args: Any) -> Callable[[TxParams], TxParams]:
        """A transaction builder for `name(*args)`, for `Chain.submit` (pipelined sending).

        The call data are encoded with eth_abi directly: web3's generic argument mapping
        took most of the time of a 300-outcome transaction.
        """
        return self._builder_of(self.encode_call(name, *args))

    def outcomes_builder(self, items: Sequence[OutcomeItem]) -> Callable[[TxParams], TxParams]:
        """The builder of `recordOutcomes(items)`, its call data written by `encode_outcomes`."""
        return self._builder_of(encode_outcomes(items))

    def _builder_of(self, data: str) -> Callable[[TxParams], TxParams]:
        w3 = self.chain.w3

        def build(params: TxParams) -> TxParams:
            tx: dict[str, Any] = {**params, "to": self.address, "data": data, "value": 0}
            if "gas" not in tx:
                tx["gas"] = w3.eth.estimate_gas(cast(TxParams, tx))
            base_fee = w3.eth.get_block("latest").get("baseFeePerGas", 0)
            tip = w3.eth.max_priority_fee
            tx["maxPriorityFeePerGas"] = tip
            tx["maxFeePerGas"] = 2 * int(base_fee) + int(tip)
            return cast(TxParams, tx)

        return build

    def encode_call(self, name: str, *args: Any) -> str:
        """0x-hex call data of `name(*args)`."""
        entry = self._functions[name]
        types = [abi_type(i) for i in entry["inputs"]]
        selector = function_signature_to_4byte_selector(f"{name}({','.join(types)})")
        return "0x" + (selector + abi_encode(types, list(args))).hex()

    def _send(self, account: LocalAccount, name: str, *args: Any, gas: int | None = None) -> Sent:
        receipt = self.chain.transact(account, self.builder(name, *args), abi=self.abi, gas=gas)
        return _sent(receipt)

    def grant_department_role(
        self, admin: LocalAccount, role: bytes, account: str, department: DepartmentId
    ) -> Sent:
        """Bind `account` to `department` and grant it REGISTRAR_ROLE or VERIFIER_ROLE."""
        return self._send(
            admin, "grantDepartmentRole", role, Web3.to_checksum_address(account), department
        )

    def anchor(self, registrar: LocalAccount, commitment: Hash32) -> Sent:
        """Anchor one commitment hash."""
        return self._send(registrar, "anchor", commitment)

    def anchor_batch(self, registrar: LocalAccount, root: Hash32, size: int) -> Sent:
        """Anchor the Merkle root of `size` commitments."""
        return self._send(registrar, "anchorBatch", root, size)

    def record_outcome(
        self,
        verifier: LocalAccount,
        commitment: Hash32,
        outcome: Status,
        evidence: Hash32,
        root: Hash32 = ZERO_HASH,
        proof: Sequence[Hash32] = (),
    ) -> Sent:
        """Record one verification outcome."""
        return self._send(
            verifier, "recordOutcome", commitment, int(outcome), evidence, root, list(proof)
        )

    def record_outcomes(self, verifier: LocalAccount, items: Sequence[OutcomeItem]) -> Sent:
        """Record many outcomes in one transaction (all or nothing)."""
        receipt = self.chain.transact(verifier, self.outcomes_builder(items), abi=self.abi)
        return _sent(receipt)

    def outcomes_refusal(
        self, verifier: str, items: Sequence[OutcomeItem]
    ) -> ContractRevertError | None:
        """The contract's refusal of `recordOutcomes(items)` from `verifier` now, or None
        when it would record them all: asked with an eth_call, nothing is sent."""
        call = {
            "from": Web3.to_checksum_address(verifier),
            "to": self.address,
            "data": encode_outcomes(items),
        }
        return self.chain.refusal(cast(TxParams, call), abi=self.abi)

    def repair(self, verifier: LocalAccount, commitment: Hash32, decision: Hash32) -> Sent:
        """Repair a breach."""
        return self._send(verifier, "repair", commitment, decision)

    def withdraw(
        self,
        registrar: LocalAccount,
        commitment: Hash32,
        evidence: Hash32,
        root: Hash32 = ZERO_HASH,
        proof: Sequence[Hash32] = (),
    ) -> Sent:
        """Withdraw a commitment before the decision."""
        return self._send(registrar, "withdraw", commitment, evidence, root, list(proof))

    # ------------------------------------------------------------------ views

    def is_anchored(
        self,
        department: bytes,
        commitment: Hash32,
        root: Hash32 = ZERO_HASH,
        proof: Sequence[Hash32] = (),
    ) -> bool:
        """Whether `department` anchored `commitment`, singly or in its batch `root` by `proof`
        (records and batches are the department's own: another's anchoring does not count)."""
        return bool(
            self._contract.functions.isAnchored(department, commitment, root, list(proof)).call()
        )

    def status_of(self, department: bytes, commitment: Hash32) -> Standing:
        """`department`'s standing of the commitment (NONE when it has no record of it)."""
        status, known, anchored_at, updated_at = self._contract.functions.statusOf(
            department, commitment
        ).call()
        return Standing(Status(status), bytes(known), int(anchored_at), int(updated_at))

    def standing_now(
        self,
        department: bytes,
        commitment: Hash32,
        anchoring: tuple[Hash32, Sequence[Hash32]] | None = None,
    ) -> StandingNow:
        """The head block, `isAnchored(department, commitment, *anchoring)` when a batch root
        and proof are given, and `statusOf(department, commitment)`, asked now.

        On a node: one batched JSON-RPC POST (eth_blockNumber and two eth_call at the
        latest block) over a kept-alive connection with a short timeout, the call data and
        answers encoded here: through web3.py the three cost ~10 ms of CPU. The embedded
        chain has no HTTP and is asked through web3.py. NodeUnreachableError when the node
        does not answer; ChainError when its answer is malformed.
        """
        if self.chain.kind == "embedded" or self.chain.url is None:
            head = self.chain.block_number()
            anchored = (
                None if anchoring is None else self.is_anchored(department, commitment, *anchoring)
            )
            return StandingNow(head, anchored, self.status_of(department, commitment))
        target = {"to": self.address}
        calls: list[tuple[str, list[Any]]] = [
            ("eth_blockNumber", []),
            ("eth_call", [{**target, "data": encode_status_of(department, commitment)}, "latest"]),
        ]
        if anchoring is not None:
            data = encode_is_anchored(department, commitment, anchoring[0], anchoring[1])
            calls.append(("eth_call", [{**target, "data": data}, "latest"]))
        results = self._batch().call(calls)
        return StandingNow(
            hex_quantity(results[0]),
            None if anchoring is None else decode_bool(hex_data(results[2])),
            decode_standing(hex_data(results[1])),
        )

    def _batch(self) -> RpcBatch:
        with self._rpc_lock:
            if self._rpc is None:
                assert self.chain.url is not None
                self._rpc = RpcBatch(self.chain.url)
            return self._rpc

    def batch_of(self, department: bytes, root: Hash32) -> BatchInfo:
        """`department`'s batch with this root (size 0 when that department has none)."""
        known, size, anchored_at, block_number = self._contract.functions.batchOf(
            department, root
        ).call()
        return BatchInfo(bytes(known), int(size), int(anchored_at), int(block_number))

    def department_of(self, account: str) -> bytes:
        """The department an account is bound to (zero bytes when none)."""
        return bytes(
            self._contract.functions.departmentOf(Web3.to_checksum_address(account)).call()
        )

    def has_role(self, role: bytes, account: str) -> bool:
        """Whether `account` holds `role`."""
        return bool(
            self._contract.functions.hasRole(role, Web3.to_checksum_address(account)).call()
        )

    def transition_allowed(self, current: Status, target: Status) -> bool:
        """Whether the contract's status machine allows `current` -> `target` (a view call)."""
        return bool(self._contract.functions.transitionAllowed(int(current), int(target)).call())

    def open_breaches(self) -> int:
        """Commitments currently breached."""
        return int(self._contract.functions.openBreaches().call())

    def events(self, name: str, from_block: int = 0, to_block: int | str = "latest") -> list[Any]:
        """Decoded logs of one event type."""
        event = getattr(self._contract.events, name)
        return list(event.get_logs(from_block=from_block, to_block=to_block))

    def outcome_recorded(
        self, department: bytes, commitment: Hash32, to: Status, from_block: int = 0
    ) -> tuple[bytes, int] | None:
        """Where the chain recorded `department`'s move of `commitment` to `to`, as its
        OutcomeRecorded event says: (transaction, block number), the latest such; None when
        there is none. The chain's word, not the hash a sender last signed: after a crash the
        transaction that landed may be an earlier one, and a resend of it reverted."""
        logs = self._contract.events.OutcomeRecorded.get_logs(
            argument_filters={"commitment": commitment, "department": department},
            from_block=from_block,
        )
        found = [
            (bytes(e["transactionHash"]), int(e["blockNumber"]))
            for e in logs
            if bytes(e["args"]["commitment"]) == commitment
            and bytes(e["args"]["department"]) == department
            and int(e["args"]["to"]) == int(to)
        ]
        return found[-1] if found else None

    def batch_anchored_event(
        self, department: bytes, root: Hash32, from_block: int = 0
    ) -> tuple[bytes, int, bytes] | None:
        """Where `department`'s BatchAnchored event of `root` is, as the node says now:
        (transaction, block number, block hash); None when it has none."""
        logs = self._contract.events.BatchAnchored.get_logs(
            argument_filters={"root": root, "department": department}, from_block=from_block
        )
        for entry in logs:
            args = entry["args"]
            if bytes(args["root"]) == root and bytes(args["department"]) == department:
                return (
                    bytes(entry["transactionHash"]),
                    int(entry["blockNumber"]),
                    bytes(entry["blockHash"]),
                )
        return None
