"""`chain check`: replay every state event of the contract and compare each commitment's
replayed state with `statusOf` and with the store.

The events are read from the node (eth_getLogs), from the deployment's block to the
confirmed head; `statusOf` is asked at that same block in batched calls. A state the
events do not explain is a storage change without an event (on a development chain,
`anvil_setStorageAt` does it in one call); a store state the chain does not hold is a
registry that went its own way. Both are reported per commitment and department.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sqlalchemy import select

from ledger import (
    Hash32,
    LedgerContract,
    RpcBatch,
    Status,
    Store,
    commitments,
    decode_standing,
    department_id,
    encode_status_of,
    hex32,
)
from verifier.records.reconcile import (
    STATUS_NAMES,
    Reconciliation,
    live_breach_statuses,
    reconciliations,
    store_status,
)
from verifier.records.tables import verifications_table

LOG_BLOCKS = 5_000  # blocks per eth_getLogs request
CALLS_PER_BATCH = 200  # statusOf calls per JSON-RPC batch
STATE_EVENTS = ("CommitmentAnchored", "BatchAnchored", "OutcomeRecorded")

Key = tuple[bytes, Hash32]  # (department id, commitment)
DifferenceKind = Literal["no_event", "store", "replay"]


@dataclass(frozen=True)
class Difference:
    """One commitment whose replayed, on-chain and stored states do not agree."""

    kind: DifferenceKind
    commitment: str
    department: str
    replayed: str
    chain: str
    store: str | None
    detail: str


@dataclass
class ChainCheckReport:
    """What `chain check` found."""

    head: int = 0
    events: int = 0
    commitments: int = 0
    differences: list[Difference] = field(default_factory=list)
    conflicts: list[Reconciliation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the events, the contract and the store agree."""
        return not self.differences

    def to_json_obj(self) -> dict[str, Any]:
        """The report as plain JSON."""
        return {
            "ok": self.ok,
            "head": self.head,
            "events": self.events,
            "commitments": self.commitments,
            "differences": [asdict(d) for d in self.differences],
            "conflicts": [asdict(c) for c in self.conflicts],
        }


@dataclass
class Replay:
    """Each (department, commitment)'s state as the events alone make it."""

    states: dict[Key, Status] = field(default_factory=dict)
    batches: set[tuple[bytes, bytes]] = field(default_factory=set)
    anomalies: dict[Key, str] = field(default_factory=dict)
    events: int = 0

    def apply(self, name: str, args: dict[str, Any]) -> None:
        """One event, in chain order."""
        self.events += 1
        department = bytes(args["department"])
        if name == "BatchAnchored":
            self.batches.add((department, bytes(args["root"])))
            return
        key = (department, Hash32(bytes(args["commitment"])))
        current = self.states.get(key, Status.NONE)
        if name == "CommitmentAnchored":
            if current != Status.NONE:
                self.anomalies[key] = f"anchored again while {STATUS_NAMES[current]}"
            self.states[key] = Status.ANCHORED
            return
        before, after = Status(int(args["from"])), Status(int(args["to"]))
        if current == Status.NONE and (department, bytes(args["root"])) in self.batches:
            current = Status.ANCHORED  # a batch member's record is made by its first outcome
        if before != current:
            self.anomalies[key] = (
                f"an event moves it from {STATUS_NAMES[before]}, the replay has it "
                f"{STATUS_NAMES[current]}"
            )
        self.states[key] = after


def state_events(ledger: LedgerContract, start: int, end: int) -> Iterator[tuple[str, Any]]:
    """Every state-changing event of the contract from `start` to `end`, in chain order."""
    while start <= end:
        stop = min(end, start + LOG_BLOCKS - 1)
        found = [(name, e) for name in STATE_EVENTS for e in ledger.events(name, start, stop)]
        found.sort(key=lambda item: (int(item[1]["blockNumber"]), int(item[1]["logIndex"])))
        yield from found
        start = stop + 1


def statuses_at(
    ledger: LedgerContract,
    keys: Sequence[Key],
    block: int,
    progress: Callable[[int], None] | None = None,
) -> dict[Key, Status]:
    """`statusOf` of each key at `block`: batched calls on a node, one by one on the
    embedded chain (it has no JSON-RPC endpoint)."""
    found: dict[Key, Status] = {}
    url = ledger.chain.url
    batch = None if ledger.chain.kind == "embedded" or url is None else RpcBatch(url, timeout=30)
    try:
        for start in range(0, len(keys), CALLS_PER_BATCH):
            part = keys[start : start + CALLS_PER_BATCH]
            if batch is None:
                found.update((k, ledger.status_of(k[0], k[1]).status) for k in part)
            else:
                tag = hex(block)
                calls: list[tuple[str, list[Any]]] = [
                    ("eth_call", [{"to": ledger.address, "data": encode_status_of(*k)}, tag])
                    for k in part
                ]
                answers = batch.call(calls)
                found.update(
                    (k, decode_standing(bytes.fromhex(a[2:])).status)
                    for k, a in zip(part, answers, strict=True)
                )
            if progress is not None:
                progress(len(part))
    finally:
        if batch is not None:
            batch.close()
    return found


def store_states(store: Store) -> dict[Key, tuple[Status, str]]:
    """Each anchored commitment of the store: the chain status its state stands for, and
    the state as the store names it."""
    held: dict[Key, tuple[Status, str]] = {}
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(commitments.c.hash, commitments.c.department).where(
                commitments.c.state == "anchored"
            )
        ).all()
        hashes = [bytes(row.hash) for row in rows]
        states: dict[bytes, str] = {}
        for start in range(0, len(hashes), 500):
            part = hashes[start : start + 500]
            states.update(
                (bytes(h), s)
                for h, s in connection.execute(
                    select(
                        verifications_table.c.commitment_hash, verifications_table.c.state
                    ).where(verifications_table.c.commitment_hash.in_(part))
                ).all()
            )
        breaches = live_breach_statuses(connection, hashes)
    for row in rows:
        digest = bytes(row.hash)
        state, breach = states.get(digest), breaches.get(digest)
        named = state or "due"
        if state == "breached" and breach is not None:
            named = f"breached ({breach})"
        key = (bytes(department_id(row.department)), Hash32(digest))
        held[key] = (store_status(state, breach), named)
    return held


def check_chain(
    ledger: LedgerContract,
    store: Store | None,
    department_names: dict[bytes, str],
    *,
    from_block: int = 0,
    confirmations: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> ChainCheckReport:
    """Replay the contract's state events up to the confirmed head and compare each
    commitment's replayed state with `statusOf` there and with `store` (when given).
    `progress(stage, done, total)` is told how far the long parts are."""
    report = ChainCheckReport(head=max(0, ledger.chain.block_number() - confirmations))
    replay = Replay()
    span = max(1, report.head - from_block + 1)
    for name, entry in state_events(ledger, from_block, report.head):
        replay.apply(name, dict(entry["args"]))
        if progress is not None:
            progress("events", int(entry["blockNumber"]) - from_block + 1, span)
    report.events = replay.events
    held = store_states(store) if store is not None else {}
    keys = sorted(set(replay.states) | set(held))
    report.commitments = len(keys)
    done = 0

    def counted(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress("statusOf", done, len(keys))

    chain = statuses_at(ledger, keys, report.head, counted)
    for key in keys:
        difference = _compare(key, replay, chain[key], held.get(key), department_names)
        if difference is not None:
            report.differences.append(difference)
    if store is not None:
        report.conflicts = reconciliations(store, "conflict")
    return report


def _compare(
    key: Key,
    replay: Replay,
    on_chain: Status,
    stored: tuple[Status, str] | None,
    names: dict[bytes, str],
) -> Difference | None:
    replayed = replay.states.get(key, Status.NONE)
    department = names.get(key[0]) or hex32(Hash32(key[0]))
    kind: DifferenceKind | None = None
    detail = ""
    if replayed != on_chain:
        kind, detail = "no_event", "the contract's storage changed without an event"
    elif key in replay.anomalies:
        kind, detail = "replay", replay.anomalies[key]
    elif stored is not None and not _store_agrees(stored[0], on_chain):
        kind, detail = "store", "the store holds another state than the chain"
    if kind is None:
        return None
    return Difference(
        kind,
        hex32(key[1]),
        department,
        STATUS_NAMES[replayed],
        STATUS_NAMES[on_chain],
        None if stored is None else stored[1],
        detail,
    )


def _store_agrees(held: Status, on_chain: Status) -> bool:
    # A batch member awaiting its first outcome has no record of its own on chain yet.
    return held == on_chain or (held == Status.ANCHORED and on_chain == Status.NONE)
