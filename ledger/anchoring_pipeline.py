"""The anchoring pipeline: batches pending commitments, anchors them, follows them to finality.

Every step reads its state from the store, so a restart resumes where the last process
died: a batch sent but not recorded is found on chain by its root; one whose transaction
vanished (node restarted without state, a reorg before the confirmation depth) is sent
again; a root the contract already holds for the batch's department, with the batch's size,
counts as done (another department's batch of the same root is not ours, and does not stop
ours). A root the department's own batch holds with another size (its registrar key used
elsewhere) would make every proof fail: the batch is re-formed under a fresh root, with one
extra leaf, and anchored again (`reform_nonce`). Nothing is anchored twice. The stored
evidence (transaction, block number and hash) is re-read from the contract's BatchAnchored
events after a reorg, so it stays true when the same transactions are mined again in other
blocks.

Several processes may anchor on one store, each for its own departments (`registrars`):
an Anchorer touches only its departments' batches, and with `fences` set (each department's
lease check, `ledger.leases`) every batch it forms, sends or takes back checks in the same
transaction that it still holds the department: a holder paused past its lease, whose
department another process has taken over, writes nothing and sends nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from ledger.calldata import decode_batch_size, encode_batch_of
from ledger.canonical import keccak256
from ledger.chain import Chain, Web3Exception
from ledger.contract import LedgerContract, department_id
from ledger.errors import ChainError, ContractRevertError, StoreError
from ledger.merkle import MerkleTree
from ledger.rpc import RpcBatch, hex_data, hex_quantity
from ledger.store import BatchRow, Fence, Store
from ledger.types import Hash32, hex32

log = logging.getLogger("commitledger.pipeline")

RECHECK_WINDOW = 64  # blocks below the head whose anchored batches are re-checked each time
REFORM_DOMAIN = b"commitledger/batch-reform/v1"


class BatchConflictError(ChainError):
    """The department's own batch of a root was on chain with another size than ours
    `max_reforms` times in a row, fresh roots and all: only the department's own registrar key
    can have made them, so it is being used elsewhere, and the pipeline stops on it."""


def reform_nonce(department: str, taken: Hash32) -> Hash32:
    """The extra leaf of a batch re-formed because its root `taken` is the department's on
    chain with another size: a value no commitment has, so the tree gets a fresh root.

    Deterministic (from the department and the taken root), so a re-formed batch's tree can
    be rebuilt from its members and its roots; each re-forming replaces the previous extra
    leaf. Proofs of the members verify as any others: the extra leaf is one more sibling.
    """
    return keccak256(REFORM_DOMAIN + department_id(department) + taken)


@dataclass(frozen=True)
class PipelineConfig:
    """When to cut a batch and how to follow it to finality."""

    batch_size: int = 1000
    max_age: float = 2.0  # seconds the oldest pending commitment may wait for a full batch
    confirmations: int = 0  # blocks on top before a batch counts as anchored
    max_in_flight: int = 4  # batches built or sent but not yet anchored
    max_reforms: int = 8  # fresh roots one batch gets (in one process) before it stops on it
    resend_grace: float = 2.0  # seconds a sent transaction may be unknown to the node
    recheck_every: float = 1.0  # seconds between checks that anchored batches are still there
    backoff_initial: float = 0.2
    backoff_max: float = 10.0


def build_tree(hashes: list[Hash32]) -> tuple[Hash32, dict[Hash32, list[Hash32]]]:
    """Root and every proof of a batch (the store keeps them with the batch)."""
    tree = MerkleTree.build(hashes)
    return tree.root, tree.proofs()


class Anchorer:
    """Moves commitments from the outbox to the chain, one department's registrar each."""

    def __init__(
        self,
        store: Store,
        ledger: LedgerContract,
        registrars: Mapping[str, LocalAccount],
        config: PipelineConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.chain: Chain = ledger.chain
        self.registrars = dict(registrars)
        self.config = config or PipelineConfig()
        self.clock = clock
        self._verified_at: float | None = None  # when anchored batches were last re-checked
        self._reforms: dict[int, int] = {}  # batch id -> fresh roots given in this process
        self._rpc: RpcBatch | None = None  # the node's batched reads (`_node`)
        # Each department's lease check (`ledger.leases`), run in the transaction of every
        # write to one of its batches; None: no lease (one process anchors them all).
        self.fences: Mapping[str, Fence] | None = None

    def _fence(self, department: str) -> Fence | None:
        return None if self.fences is None else self.fences[department]

    def _ours(self, *states: str) -> list[BatchRow]:
        """Batches in `states` of the departments anchored here (others are another's)."""
        return [b for b in self.store.batches_in(*states) if b.department in self.registrars]

    # ------------------------------------------------------------------ one pass

    def step(self, cut_all: bool = False) -> int:
        """Follow batches in flight, send built ones, cut due ones (every backlog with
        `cut_all`); return how much moved."""
        moved = self.recheck_anchored()
        moved += self.follow_in_flight()
        moved += self.send_built()
        moved += self.cut_due_batches(force=cut_all)
        return moved

    def recheck_anchored(self, force: bool = False) -> int:
        """Re-read the evidence of anchored batches when the chain under them changed.

        A node restarted without its state, or a reorg deeper than the confirmation depth,
        takes anchored batches with it: they are anchored again. A reorg that mines the
        same transactions again moves them to other blocks: their stored transaction, block
        number and hash are replaced by what the contract's BatchAnchored events say now.
        Checked on start and after the node was away; in between, at most every
        `recheck_every` seconds, the canary is the block hash of the first and last anchored
        batch and of every batch anchored in the last RECHECK_WINDOW blocks.
        """
        now = self.clock()
        due = self._verified_at is None or now - self._verified_at >= self.config.recheck_every
        if not (force or due):
            return 0
        if not force and self._verified_at is not None and self._canary_holds():
            self._verified_at = now
            return 0
        moved = self._reread_anchored()
        self._verified_at = now
        return moved

    def _canary_holds(self) -> bool:
        """Whether the first, last and recent anchored batches' blocks are still the same."""
        head = self.chain.block_number()
        watched = {b.id: b for b in self.store.anchored_ends() if b.department in self.registrars}
        for batch in self._ours("anchored"):
            if (batch.block_number or 0) >= head - RECHECK_WINDOW:
                watched[batch.id] = batch
        numbers: dict[int, int] = {}  # batch id -> its block
        for batch in watched.values():
            assert batch.block_number is not None
            numbers[batch.id] = batch.block_number
        seen = self._block_hashes(set(numbers.values()))
        return all(seen[numbers[batch.id]] == batch.block_hash for batch in watched.values())

    def _block_hashes(self, numbers: Collection[int]) -> dict[int, bytes | None]:
        """The canonical block hash at each of `numbers` (None beyond the head). On a node,
        one batched POST: the canary asks for up to RECHECK_WINDOW blocks each second, and
        through web3.py each cost a millisecond of CPU (10 us a commitment at 6,000/s)."""
        rpc = self._node()
        if rpc is None:
            return {number: self.chain.block_hash(number) for number in numbers}
        wanted = sorted(numbers)
        if not wanted:
            return {}
        blocks = rpc.call([("eth_getBlockByNumber", [hex(n), False]) for n in wanted])
        return {
            number: None if block is None else _block_hash_of(block)
            for number, block in zip(wanted, blocks, strict=True)
        }

    def _reread_anchored(self) -> int:
        """Every anchored batch against the BatchAnchored events the node has now: one
        `eth_getLogs` from the oldest anchored block. Returns how many batches changed."""
        anchored = self._ours("anchored")
        if not anchored:
            return 0
        head = self.chain.block_number()
        # from a window below the oldest: a re-mined transaction may land a little earlier
        oldest = min(b.block_number or 0 for b in anchored)
        start = max(0, min(oldest, head) - RECHECK_WINDOW)
        events: dict[tuple[bytes, bytes], tuple[bytes, int, bytes, int]] = {}
        for entry in self.ledger.events("BatchAnchored", from_block=start, to_block=head):
            args = entry["args"]
            key = (bytes(args["department"]), bytes(args["root"]))
            events.setdefault(
                key,
                (
                    bytes(entry["transactionHash"]),
                    int(entry["blockNumber"]),
                    bytes(entry["blockHash"]),
                    int(args["size"]),
                ),
            )
        changed = 0
        lost = False
        for batch in anchored:
            found = events.get((department_id(batch.department), batch.root))
            if found is None:
                log.warning("batch %d is no longer on chain: anchoring it again", batch.id)
                self.store.mark_unsent(batch.id, fence=self._fence(batch.department))
                lost = True
                changed += 1
                continue
            tx_hash, block_number, block_hash, size = found
            if size != batch.size:
                # A reorg put the department's other batch of this root in place of ours.
                self._reform(batch, size)
                lost = True
                changed += 1
                continue
            if (tx_hash, block_number, block_hash) == (
                batch.tx_hash,
                batch.block_number,
                batch.block_hash,
            ):
                continue
            changed += 1
            if head - block_number < self.config.confirmations:
                log.warning(
                    "batch %d was mined again in block %d: confirming it again",
                    batch.id,
                    block_number,
                )
                self.store.mark_sent(
                    batch.id, tx_hash, now=self.clock(), fence=self._fence(batch.department)
                )
            else:
                log.warning(
                    "batch %d was mined again in block %d: evidence updated", batch.id, block_number
                )
                self.store.mark_anchored(
                    batch.id, tx_hash, block_number, block_hash, now=batch.anchored_at
                )
        if lost:
            self.chain.forget_nonces()
        return changed

    def cut_due_batches(self, force: bool = False) -> int:
        """Form batches from departments whose backlog is full or old enough."""
        formed = 0
        flying: dict[str, int] = {}
        for flown in self._ours("built", "sent"):
            flying[flown.department] = flying.get(flown.department, 0) + 1
        now = self.clock()
        for department, count, oldest in self.store.pending_by_department():
            if department not in self.registrars:
                continue  # another process anchors for that department
            in_flight = flying.get(department, 0)  # one department's backlog never stops another
            due = force or count >= self.config.batch_size or now - oldest >= self.config.max_age
            while due and in_flight < self.config.max_in_flight and count > 0:
                try:
                    batch = self.store.form_batch(
                        department,
                        self.config.batch_size,
                        build_tree,
                        now=now,
                        fence=self._fence(department),
                    )
                except StoreError:
                    break
                if batch is None:
                    break
                log.info("formed batch %d of %d for %s", batch.id, batch.size, department)
                formed += 1
                in_flight += 1
                count -= batch.size
                due = force or count >= self.config.batch_size
        return formed

    def send_built(self) -> int:
        """Send every batch that is built but not (or no longer) on its way."""
        sent = 0
        for batch in self._ours("built"):
            self._send(batch)
            sent += 1
        return sent

    def follow_in_flight(self) -> int:
        """Record batches that reached the confirmation depth; resend those that vanished."""
        settled = 0
        for batch in self._ours("sent"):
            settled += self._follow(batch)
        return settled

    # ------------------------------------------------------------------ one batch

    def _registrar(self, batch: BatchRow) -> LocalAccount:
        return self.registrars[batch.department]

    def _send(self, batch: BatchRow) -> None:
        registrar = self._registrar(batch)
        try:
            tx = self.chain.prepare(
                registrar,
                self.ledger.builder("anchorBatch", batch.root, batch.size),
                abi=self.ledger.abi,
            )
        except ContractRevertError as exc:
            if exc.error_name == "BatchAlreadyAnchored":
                # An earlier send landed although we never saw it: adopt it, do not resend.
                self._adopt(batch)
                return
            raise

        def record(tx_hash: bytes) -> None:
            # Written before the broadcast: after a crash here, recovery knows what to look
            # for; refused (LeaseLostError) when another process anchors the department now.
            self.store.mark_sent(
                batch.id, tx_hash, now=self.clock(), fence=self._fence(batch.department)
            )

        tx_hash = self.chain.send_recorded(registrar, tx, abi=self.ledger.abi, record=record)
        log.info("sent batch %d (root %s) in %s", batch.id, hex32(batch.root), hex32(tx_hash))

    def _follow(self, batch: BatchRow) -> int:
        assert batch.tx_hash is not None
        mined = self._mined(batch.tx_hash)
        if mined is None:
            in_grace = self.clock() - (batch.sent_at or 0.0) < self.config.resend_grace
            if self.chain.transaction_known(batch.tx_hash):
                # pending in the node's pool, unless its nonce can never come next there
                if in_grace or not self.chain.transaction_stuck(batch.tx_hash):
                    return 0
            elif in_grace:
                return 0
            return self._vanished(batch)
        status, block_number, block_hash, head = mined
        if status != 1:
            return self._vanished(batch)
        if head - block_number < self.config.confirmations:
            return 0
        canonical, size_on_chain = self._block_and_size(block_number, batch)
        if canonical != block_hash:
            return 0  # reorged away; the next pass finds the transaction gone or re-mined
        if size_on_chain != batch.size:
            return self._vanished(batch)  # mined but anchored nothing (no contract there)
        self.store.mark_anchored(
            batch.id, batch.tx_hash, block_number, block_hash, now=self.clock()
        )
        log.info("anchored batch %d in block %d", batch.id, block_number)
        return 1

    # The reads of `_follow`, two by two: on a node each pair is one batched POST (four
    # calls through web3.py cost about 10 ms of CPU a batch, 10 us a commitment).

    def _mined(self, tx_hash: bytes) -> tuple[int, int, bytes, int] | None:
        """(status, block number, block hash) of the transaction's receipt and the head's
        number; None while the transaction is not mined."""
        rpc = self._node()
        if rpc is None:
            receipt = self.chain.receipt(tx_hash)
            if receipt is None:
                return None
            number, mined_in = int(receipt["blockNumber"]), bytes(receipt["blockHash"])
            return int(receipt["status"]), number, mined_in, self.chain.block_number()
        found, head = rpc.call(
            [("eth_getTransactionReceipt", ["0x" + tx_hash.hex()]), ("eth_blockNumber", [])]
        )
        if found is None:
            return None
        if not isinstance(found, dict):
            raise ChainError(f"the node's receipt is not an object: {found!r:.80}")
        number, mined_in = hex_quantity(found.get("blockNumber")), hex_data(found.get("blockHash"))
        return hex_quantity(found.get("status")), number, mined_in, hex_quantity(head)

    def _block_and_size(self, number: int, batch: BatchRow) -> tuple[bytes | None, int]:
        """The canonical block hash at `number` and the size of the batch's root that the
        contract holds for the batch's department now (0: none)."""
        department = department_id(batch.department)
        rpc = self._node()
        if rpc is None:
            on_chain = self.ledger.batch_of(department, batch.root)
            return self.chain.block_hash(number), on_chain.size
        call = {"to": self.ledger.address, "data": encode_batch_of(department, batch.root)}
        block, answer = rpc.call(
            [("eth_getBlockByNumber", [hex(number), False]), ("eth_call", [call, "latest"])]
        )
        canonical = None if block is None else _block_hash_of(block)
        return canonical, decode_batch_size(hex_data(answer))

    def _node(self) -> RpcBatch | None:
        """The node's batched reads; None on the embedded chain (asked through web3.py)."""
        if self.chain.kind == "embedded" or self.chain.url is None:
            return None
        if self._rpc is None:
            self._rpc = RpcBatch(self.chain.url)
        return self._rpc

    def _vanished(self, batch: BatchRow) -> int:
        """The transaction is gone or failed: adopt the root if the contract has it as the
        batch's department's, else resend."""
        if self.ledger.batch_of(department_id(batch.department), batch.root).size:
            return self._adopt(batch)
        log.warning("batch %d: transaction vanished; sending again", batch.id)
        self.chain.forget_nonces()
        self.store.mark_unsent(batch.id, fence=self._fence(batch.department))
        return 0

    def _adopt(self, batch: BatchRow) -> int:
        """Record the on-chain anchoring of `batch.root`, found by its BatchAnchored event,
        when the chain's batch is the batch's department's and has its size.

        Batches are keyed by department on chain, so another department's batch of the
        same root (a front-run) is never adopted: ours is anchored beside it. A batch of
        ours with another size would fail every one of our proofs: the batch is re-formed
        under a fresh root and anchored again (`_reform`).
        """
        department = department_id(batch.department)
        on_chain = self.ledger.batch_of(department, batch.root)
        if on_chain.department != department or on_chain.size != batch.size:
            if on_chain.size == 0:
                log.warning(
                    "batch %d: root %s is not on chain: anchoring it again",
                    batch.id,
                    hex32(batch.root),
                )
                self.chain.forget_nonces()
                self.store.mark_unsent(batch.id, fence=self._fence(batch.department))
                return 0
            self._reform(batch, on_chain.size)
            return 0
        found = self.ledger.batch_anchored_event(department, batch.root)
        if found is None:
            raise ChainError(f"root {hex32(batch.root)} is anchored but its event is not found")
        tx_hash, block_number, block_hash = found
        if self.chain.block_number() - block_number < self.config.confirmations:
            self.store.mark_sent(
                batch.id, tx_hash, now=self.clock(), fence=self._fence(batch.department)
            )
            return 0
        self.store.mark_anchored(batch.id, tx_hash, block_number, block_hash, now=self.clock())
        log.info(
            "adopted batch %d anchored earlier for %s in block %d",
            batch.id,
            batch.department,
            block_number,
        )
        return 1

    def _reform(self, batch: BatchRow, size_on_chain: int) -> None:
        """Our root is the department's on chain with another size: give the batch a fresh
        root (its members and one extra leaf, `reform_nonce`), store the new proofs, and let
        the next pass anchor it. BatchConflictError after `max_reforms` fresh roots in a row."""
        done = self._reforms.get(batch.id, 0)
        if done >= self.config.max_reforms:
            raise BatchConflictError(
                f"batch {batch.id}: {done} fresh roots in a row were anchored for "
                f"{batch.department} with other sizes first (latest {hex32(batch.root)} with "
                f"size {size_on_chain}, not {batch.size}): its registrar key is used elsewhere"
            )
        members = self.store.batch_members(batch.id)
        extra = reform_nonce(batch.department, batch.root)
        root, proofs = build_tree([*members, extra])
        del proofs[extra]
        self.chain.forget_nonces()  # a transaction of ours may have been replaced
        self.store.reform_batch(
            batch.id, root, len(members) + 1, proofs, fence=self._fence(batch.department)
        )
        self._reforms[batch.id] = done + 1
        log.warning(
            "batch %d: root %s is anchored for %s with size %d, not %d (its registrar key "
            "used elsewhere?): re-formed under the fresh root %s, anchoring it again",
            batch.id,
            hex32(batch.root),
            batch.department,
            size_on_chain,
            batch.size,
            hex32(root),
        )

    # ------------------------------------------------------------------ loops

    def _chain_lost(self) -> None:
        self.chain.forget_nonces()
        self._verified_at = None  # the node may come back without its state

    def run(self, stop: threading.Event, idle_wait: float = 0.05) -> None:
        """Anchor until `stop` is set; while the node is down, retry with backoff."""
        backoff = self.config.backoff_initial
        while not stop.is_set():
            try:
                moved = self.step()
                backoff = self.config.backoff_initial
            except (ChainError, OSError, Web3Exception) as exc:
                log.warning(
                    "chain unavailable (%s); retrying in %.1fs", type(exc).__name__, backoff
                )
                self._chain_lost()
                stop.wait(backoff)
                backoff = min(backoff * 2, self.config.backoff_max)
                continue
            if not moved:
                stop.wait(idle_wait)

    def drain(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Anchor until nothing is pending or in flight; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        stop = stop or threading.Event()
        backoff = self.config.backoff_initial
        while time.monotonic() < deadline and not stop.is_set():
            try:
                self.step(cut_all=True)
                backoff = self.config.backoff_initial
            except (ChainError, OSError, Web3Exception) as exc:
                log.warning("chain unavailable (%s); retrying", type(exc).__name__)
                self._chain_lost()
                stop.wait(backoff)
                backoff = min(backoff * 2, self.config.backoff_max)
                continue
            status = self.store.status()
            idle = status.pending == 0 and status.batches_in_flight == 0
            if idle and self.store.pending_decisions() == 0:
                return True
            stop.wait(0.02)
        return False


def _block_hash_of(block: object) -> bytes:
    """The hash of a block as eth_getBlockByNumber answers it; ChainError when malformed."""
    return hex_data(block.get("hash") if isinstance(block, dict) else block)
