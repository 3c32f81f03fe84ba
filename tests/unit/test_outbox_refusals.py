"""Issue #12: an outcome the contract refuses is set aside on its own, with the reason in
words, and never blocks the outbox; after a crash, what the chain recorded is read from its
OutcomeRecorded events, not from the hash of a resend that reverted (finding 8)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.verifier_world import DAY, HRSS, World, open_world

from ledger import Chain, OutcomeItem, Status, TransactionTimeoutError, keccak256
from verifier import VerificationError


@pytest.fixture
def world(tmp_path: Path, embedded_chain: Chain) -> Iterator[World]:
    with open_world(embedded_chain, tmp_path) as opened:
        yield opened


def _abandoned(world: World) -> dict[bytes, str]:
    """The outbox's set-aside outcomes and their reasons, by commitment."""
    from sqlalchemy import select

    from ledger import outcome_outbox

    with world.store.engine.connect() as connection:
        rows = connection.execute(
            select(outcome_outbox.c.commitment_hash, outcome_outbox.c.abandoned).where(
                outcome_outbox.c.abandoned.is_not(None)
            )
        ).all()
    return {bytes(row.commitment_hash): str(row.abandoned) for row in rows}


def test_a_refused_first_outcome_is_set_aside_and_the_others_are_recorded(
    world: World,
) -> None:
    """A commitment decided on chain behind the engine's back (still due in the records):
    the run's transaction reverts for it; it is set aside with its reason, the other goes
    out alone, and the next run carries nothing."""
    moved, other = world.commit(world.pick("agree"), world.pick("agree"))
    anchoring = world.store.anchoring_of(moved)
    assert anchoring is not None
    verifier = world.deployment.verifier
    world.ledger.record_outcome(
        verifier, moved, Status.KEPT, keccak256(b"elsewhere"), *anchoring_of(anchoring)
    )

    summary = world.engine.run(DAY)

    assert world.status(other) == Status.KEPT
    assert world.events_of("OutcomeRecorded")[moved] == 1  # only the one made elsewhere
    reasons = _abandoned(world)
    assert set(reasons) == {moved}
    assert "does not allow this outcome (TransitionNotAllowed)" in reasons[moved]
    assert summary.abandoned == 1 and summary.recorded == 1
    assert world.engine.outbox.open(HRSS) == []
    [later] = world.commit(world.pick("agree"))
    assert world.engine.run(DAY).recorded == 1
    assert world.status(later) == Status.KEPT


def anchoring_of(anchoring: tuple[object, tuple[bytes, ...]]) -> tuple[bytes, tuple[bytes, ...]]:
    batch, proof = anchoring
    return batch.root, proof  # type: ignore[attr-defined]


def test_a_decision_the_contract_refuses_answers_with_the_reason(world: World) -> None:
    """A person's decision on a commitment whose first outcome the contract refuses: a
    VerificationError in words (the service's 409), and nothing left blocking."""
    target, _ = world.commit_kind("agree")
    anchoring = world.store.anchoring_of(target)
    assert anchoring is not None
    bad_root = keccak256(b"not the batch's root")
    # The store's root of its batch no longer names a batch of the department on chain.
    with world.store.engine.begin() as connection:
        from sqlalchemy import update

        from ledger import batches

        connection.execute(
            update(batches).where(batches.c.id == anchoring[0].id).values(root=bad_root)
        )
    with pytest.raises(VerificationError, match="no batch with this commitment's root"):
        world.engine.decide(target, "kept", DAY, "officer 3", "checked on site")
    assert world.engine.outbox.open(HRSS) == []


def test_recovery_records_the_transaction_the_chain_names_not_a_reverted_resend(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 8: the run crashes while its transaction is on its way; a resend of the same
    outcomes reverts. Recovery records the transaction and block the contract's
    OutcomeRecorded event names."""
    [commitment] = world.commit(world.pick("agree"))
    chain = world.chain
    real_wait = chain.wait_mined
    calls = 0

    def crash_once(tx_hash: bytes, timeout: float | None = None) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TransactionTimeoutError("killed while waiting")
        return real_wait(tx_hash, timeout)

    monkeypatch.setattr(chain, "wait_mined", crash_once)
    with pytest.raises(TransactionTimeoutError):
        world.engine.run(DAY)
    [queued] = world.engine.outbox.open(HRSS)
    first = queued.tx_hash
    assert first is not None and chain.receipt(first) is not None
    # A resend of the same outcome, mined and reverted (Kept is final on chain by now).
    item = OutcomeItem(commitment, Status.KEPT, queued.evidence)
    verifier = world.deployment.verifier
    tx = chain.prepare(verifier, world.ledger.outcomes_builder([item]), gas=200_000)
    signed = chain.sign(verifier, tx)
    chain.broadcast(verifier, signed)
    reverted = chain.receipt(signed.tx_hash)
    assert reverted is not None and reverted["status"] == 0
    world.engine.outbox.mark_sent([queued.id], signed.tx_hash)

    world.restarted().run(DAY)

    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.state == "kept"
    landed = chain.receipt(first)
    assert landed is not None
    assert verification.tx_hash == first
    assert verification.block_number == int(landed["blockNumber"])
