"""The verification engine on the embedded chain: departments, failing data sources,
tampered documents, idempotent reruns and recovery from a crash around the chain."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from support.verifier_world import DAY, HRSS, POINTS, SAMR, World, open_world

from api.demo import Planted
from ledger import (
    Chain,
    ChainError,
    ContractRevertError,
    Hash32,
    OutcomeItem,
    QueuedOutcome,
    SigningKey,
    Status,
    TransactionTimeoutError,
    department_id,
    hex32,
    keccak256,
    sign_commitment,
)
from verifier import BreachRecord, ClosingNote, SignedReport, VerificationError, verify_report
from verifier.engine import Department, EngineConfig
from verifier.records import NoticeRecords, VerifierRecords

FOOD = "BJ-SAMR-0001"


@pytest.fixture
def world(tmp_path: Path, embedded_chain: Chain) -> Iterator[World]:
    with open_world(embedded_chain, tmp_path) as opened:
        yield opened


def once(action: Callable[..., Any], error: Exception) -> Callable[..., Any]:
    """`action`, except that its first call raises `error` instead (a crash at that point)."""
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise error
        return action(*args, **kwargs)

    return wrapper


def one_of_each(world: World) -> dict[str, Hash32]:
    """Anchored points-registration commitments planted for each outcome, by outcome."""
    kinds: dict[str, Planted] = {
        "kept": "agree",
        "mismatch": "mismatch",
        "false": "false",
        "needs_manual": "missing",
    }
    picked = {outcome: world.pick(kind) for outcome, kind in kinds.items()}
    hashes = world.commit(*picked.values())
    return dict(zip(picked, hashes, strict=True))


EXPECTED_STATUS = {
    "kept": Status.KEPT,
    "mismatch": Status.MISMATCH,
    "false": Status.PROPOSED,  # notified first: published after the defence (issue #14)
    "needs_manual": Status.NEEDS_MANUAL,
}
EXPECTED_STATE = {
    "kept": "kept",
    "mismatch": "mismatch",
    "false": "proposed",
    "needs_manual": "manual",
}


def assert_recorded_once(world: World, hashes: dict[str, Hash32]) -> None:
    """Every outcome on chain and in the records, each exactly once, one breach proposed
    with one notice (nothing published before the defence)."""
    records = world.engine.records
    for outcome, commitment in hashes.items():
        assert world.status(commitment) == EXPECTED_STATUS[outcome], outcome
        verification = records.verification(commitment)
        assert verification is not None and verification.state == EXPECTED_STATE[outcome]
    recorded = world.events_of("OutcomeRecorded")
    assert {outcome: recorded[h] for outcome, h in hashes.items()} == dict.fromkeys(hashes, 1)
    notices = NoticeRecords(world.store).listed(HRSS)
    assert [n.commitment_hash for n in notices] == [hashes["false"]]
    assert world.ledger.open_breaches() == 0
    # The records point at the transaction and block that carry each outcome.
    where = {
        bytes(e["args"]["commitment"]): (bytes(e["transactionHash"]), e["blockNumber"])
        for e in world.ledger.events("OutcomeRecorded")
    }
    for commitment in hashes.values():
        verification = records.verification(commitment)
        assert verification is not None
        assert (verification.tx_hash, verification.block_number) == where[commitment]
    assert records.search_breaches(DAY).total == 0
    assert world.events_of("BreachRecorded") == Counter()
    assert world.engine.outbox.open(HRSS) == []
    # published once its defence ends: one breach, from the chain's Proposed record
    world.publish(DAY)
    [breach] = records.search_breaches(DAY).records
    assert breach.commitment_hash == hex32(hashes["false"])
    assert world.events_of("BreachRecorded") == Counter({hashes["false"]: 1})
    assert world.ledger.open_breaches() == 1
    assert world.publish(DAY) == []


# ---------------------------------------------------------------------- departments


def test_another_department_neither_sees_nor_records_an_outcome(world: World) -> None:
    [commitment] = world.commit(world.pick("agree", POINTS))
    [food] = world.commit(world.pick("agree", FOOD))
    market = world.new_engine(SAMR)

    # The market regulator's engine sees only its own commitments (a food licence waits
    # for a person to review the food-safety rules: never kept by the engine alone).
    summary = market.run(DAY)
    assert summary.examined == 1 and summary.outcomes == Counter({"needs_manual": 1})
    assert market.records.verification(commitment) is None
    assert world.status(food) == Status.NEEDS_MANUAL
    assert world.status(commitment) == Status.NONE
    refused_actions: list[Callable[[], object]] = [
        lambda: market.decide(commitment, "kept", DAY, "officer 7", "looks fine"),
        lambda: market.decide(commitment, "false", DAY, "officer 7", "looks false"),
        lambda: market.withdraw(commitment, DAY, "withdrawn"),
    ]
    for refused in refused_actions:
        with pytest.raises(VerificationError, match=f"not a commitment of {SAMR}"):
            refused()
    assert market.outbox.open(SAMR) == []
    assert world.status(commitment) == Status.NONE

    # The contract refuses the other department's verifier, before and after the first outcome.
    anchoring = world.store.anchoring_of(commitment)
    assert anchoring is not None
    batch, proof = anchoring
    other = world.deployment.other_verifier
    evidence = keccak256(b"a report of the wrong department")
    with pytest.raises(ContractRevertError) as refused_first:
        world.ledger.record_outcome(other, commitment, Status.KEPT, evidence, batch.root, proof)
    assert refused_first.value.error_name == "UnknownBatch"  # it has no batch of its own
    assert world.status(commitment) == Status.NONE

    assert world.engine.run(DAY).outcomes == Counter({"kept": 1})
    assert world.status(commitment) == Status.KEPT
    with pytest.raises(ContractRevertError) as refused_later:
        world.ledger.record_outcome(other, commitment, Status.BREACHED, evidence)
    assert refused_later.value.error_name == "NotAnchored"  # nor a record
    assert world.status(commitment) == Status.KEPT
    assert world.events_of("OutcomeRecorded")[commitment] == 1


def test_the_anchoring_department_engine_does_not_verify_another_departments_commitments(
    world: World,
) -> None:
    [food] = world.commit(world.pick("false", FOOD))
    summary = world.engine.run(DAY)
    assert summary.examined == 0 and summary.transactions == 0
    with pytest.raises(VerificationError):
        world.engine.decide(food, "false", DAY, "officer 9", "not ours")
    assert world.status(food) == Status.NONE


def test_a_check_only_a_person_can_make_stays_open_until_a_person_decides(world: World) -> None:
    """Issue 12, finding 1: a food licence whose data all agree is not kept while the
    food-safety rules are unreviewed; the report lists the task, a person's decision closes it."""
    [food] = world.commit(world.pick("agree", FOOD))
    market = world.new_engine(SAMR)
    [task] = world.catalog.matter(FOOD).tasks

    assert market.run(DAY).outcomes == Counter({"needs_manual": 1})
    assert world.status(food) == Status.NEEDS_MANUAL
    verification = market.records.verification(food)
    assert verification is not None and verification.report is not None
    report = SignedReport.from_json_obj(verification.report)
    assert all(c.verdict == "agree" for c in report.comparisons())
    assert [(t["key"], t["status"]) for t in report.tasks()] == [(task.key, "open")]
    assert task.key in report.note

    market.decide(food, "kept", DAY, "officer 7", "rules reviewed at the premises")
    assert world.status(food) == Status.KEPT
    decided = market.records.verification(food)
    assert decided is not None and decided.report is not None
    closed = SignedReport.from_json_obj(decided.report)
    assert [(t["key"], t["status"]) for t in closed.tasks()] == [(task.key, "done")]


# ---------------------------------------------------------------------- data sources


FAULTS: dict[str, Callable[[World, str], None]] = {
    "timeout": lambda world, source: world.faults.slow(source, 2.0),
    "malformed": lambda world, source: world.faults.corrupt(source),
    "server error": lambda world, source: world.faults.fail(source),
}


@pytest.mark.parametrize(
    ("kind", "source"),
    [("false", "police_criminal"), ("mismatch", "hrss_social_insurance")],
    ids=["false-criminal-record", "mismatch-social-insurance"],
)
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_data_source_needs_a_person_never_a_breach(
    world: World, fault: str, kind: Planted, source: str
) -> None:
    # The source that would decide against the applicant is the one that fails.
    commitment, applicant = world.commit_kind(kind, POINTS)
    FAULTS[fault](world, source)
    # 1 s: well under the slow fault's 2 s, and enough that a loaded machine's first answer
    # is not a timeout too (at 0.25 s a malformed answer was once retried as a timeout).
    engine = world.new_engine(sources=world.sources(timeout=1.0, retries=1, backoff=0.0))

    summary = engine.run(DAY)

    assert summary.outcomes == Counter({"needs_manual": 1})
    assert summary.breaches == []
    # Timeouts and server errors are tried again once; a malformed answer is not.
    assert world.faults.attempts[source] == (1 if fault == "malformed" else 2)
    assert world.status(commitment) == Status.NEEDS_MANUAL
    verification = engine.records.verification(commitment)
    assert verification is not None and verification.report is not None
    compared = {c["key"]: c for c in verification.report["report"]["comparisons"]}
    # Every claim that source answers, and only those, is undecidable; the report names it.
    failed = [c for c in compared.values() if c["verdict"] == "undecidable"]
    assert failed and {c["source"] for c in failed} == {source}
    expected = "SourceUnavailable" if fault != "malformed" else "SourceGarbage"
    assert {c["detail"] for c in failed} == {f"data source {source} failed: {expected}"}
    assert all(c["data_hash"] is None for c in failed)  # it answered no data
    assert all(c["verdict"] == "agree" for c in compared.values() if c["source"] != source)
    # Later runs do not turn it into a breach either.
    assert engine.run(DAY + timedelta(days=90)).transactions == 0
    assert world.ledger.open_breaches() == 0
    assert engine.records.search_breaches(DAY).total == 0
    assert not world.store.is_excluded(world.fingerprint(applicant))


# ---------------------------------------------------------------------- tampered documents


def tamper(world: World, how: str, targets: list[Hash32]) -> None:
    """Change the stored sealed documents of `targets` directly in the SQLite file."""
    with sqlite3.connect(world.db_path) as db:
        rows = {
            bytes(h): (bytes(sealed), bytes(key))
            for h, sealed, key in db.execute("SELECT hash, sealed, wrapped_key FROM commitments")
        }
        updates: list[tuple[bytes, bytes, bytes]] = []
        if how == "flipped byte":
            [target] = targets
            sealed, key = rows[target]
            middle = len(sealed) // 2
            altered = sealed[:middle] + bytes([sealed[middle] ^ 0x01]) + sealed[middle + 1 :]
            updates.append((altered, key, target))
        elif how == "swapped ciphertexts":
            first, second = targets
            updates.append((*rows[second], first))
            updates.append((*rows[first], second))
        elif how == "resealed other document":
            # Someone with the master key seals another, validly signed document in its place.
            [target] = targets
            signed = world.signed[target]
            other = signed.document.model_copy(
                update={"channel": "counter" if signed.document.channel == "online" else "online"}
            )
            forged = sign_commitment(other, world.applicant_key)
            plain = json.dumps(forged.to_json_obj(), ensure_ascii=False, separators=(",", ":"))
            resealed = world.vault.seal(plain.encode(), associated=target)
            updates.append((resealed.ciphertext, resealed.wrapped_key, target))
        else:
            raise AssertionError(how)
        db.executemany("UPDATE commitments SET sealed = ?, wrapped_key = ? WHERE hash = ?", updates)


@pytest.mark.parametrize(
    ("how", "count", "reason"),
    [
        ("flipped byte", 1, "does not open"),
        ("swapped ciphertexts", 2, "does not open"),
        ("resealed other document", 1, "does not hash to the anchored value"),
    ],
)
def test_a_tampered_stored_document_is_an_integrity_failure_with_nothing_on_chain(
    world: World, caplog: pytest.LogCaptureFixture, how: str, count: int, reason: str
) -> None:
    # Planted false: verified, they would be breaches.
    targets = [world.commit_kind("false")[0] for _ in range(count)]
    [honest] = world.commit(world.pick("agree"))
    tamper(world, how, targets)

    with caplog.at_level(logging.WARNING, logger="commitledger.verifier"):
        summary = world.engine.run(DAY)

    assert summary.outcomes == Counter({"integrity_failure": count, "kept": 1})
    assert summary.recorded == 1 and summary.transactions == 1 and summary.breaches == []
    assert world.status(honest) == Status.KEPT
    recorded = world.events_of("OutcomeRecorded")
    for target in targets:
        assert world.status(target) == Status.NONE
        assert recorded[target] == 0
        verification = world.engine.records.verification(target)
        assert verification is not None and verification.state == "integrity_failure"
        assert verification.tx_hash is None
    warnings = [r.getMessage() for r in caplog.records if "integrity failure" in r.getMessage()]
    assert len(warnings) == count
    assert all(reason in message for message in warnings)
    assert world.outcome_events(honest) == [(Status.ANCHORED, Status.KEPT)]
    assert world.ledger.open_breaches() == 0
    assert world.engine.outbox.open(HRSS) == []
    # Not verified again by the next run: the department looks into it.
    again = world.engine.run(DAY)
    assert again.examined == 0 and again.transactions == 0


# ---------------------------------------------------------------------- reruns and crashes


def test_a_second_run_records_nothing(world: World) -> None:
    hashes = one_of_each(world)
    first = world.engine.run(DAY)
    assert first.recorded == 4 and first.transactions == 1 and first.breaches == []

    second = world.engine.run(DAY)
    restarted = world.restarted().run(DAY)

    for summary in (second, restarted):
        assert summary.examined == 0 and summary.recorded == 0
        assert summary.transactions == 0 and summary.breaches == []
    assert_recorded_once(world, hashes)


CRASHES_AFTER_BROADCAST: dict[str, tuple[str, Exception]] = {
    "receipt never seen": (
        "wait_mined",
        TransactionTimeoutError("no receipt within the deadline"),
    ),
    "outcome not recorded": ("record_outcomes", RuntimeError("killed while recording")),
    "notice not kept": ("issue", RuntimeError("killed while keeping the notice")),
}


@pytest.mark.parametrize("crash", list(CRASHES_AFTER_BROADCAST))
def test_a_crash_after_the_broadcast_is_recovered_without_recording_twice(
    world: World, monkeypatch: pytest.MonkeyPatch, crash: str
) -> None:
    hashes = one_of_each(world)
    name, error = CRASHES_AFTER_BROADCAST[crash]
    if name == "wait_mined":
        monkeypatch.setattr(world.chain, name, once(world.chain.wait_mined, error))
    elif name == "issue":
        monkeypatch.setattr(NoticeRecords, name, once(NoticeRecords.issue, error))
    else:
        monkeypatch.setattr(VerifierRecords, name, once(getattr(VerifierRecords, name), error))

    with pytest.raises(type(error)):
        world.engine.run(DAY)

    # The transaction was mined: the chain has every outcome, the records lag behind.
    for outcome, commitment in hashes.items():
        assert world.status(commitment) == EXPECTED_STATUS[outcome]
    assert len(world.engine.outbox.open(HRSS)) == 4
    world.chain.fund(world.deployment.outsider.address)  # the chain moves on meanwhile
    recovered = world.restarted().run(DAY)

    assert recovered.transactions == 0 and recovered.recorded == 0
    assert recovered.examined == 0
    assert_recorded_once(world, hashes)
    assert world.engine.run(DAY).transactions == 0


def test_a_crash_before_the_broadcast_is_recovered_by_sending_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = one_of_each(world)
    monkeypatch.setattr(
        world.chain, "broadcast", once(world.chain.broadcast, ChainError("node went away"))
    )

    with pytest.raises(ChainError, match="node went away"):
        world.engine.run(DAY)

    assert all(world.status(h) == Status.NONE for h in hashes.values())
    [sent] = {q.tx_hash for q in world.engine.outbox.open(HRSS)}
    assert sent is not None and world.chain.receipt(sent) is None
    recovered = world.restarted().run(DAY)

    assert recovered.transactions == 1 and recovered.recorded == 4
    assert recovered.breaches == []
    assert_recorded_once(world, hashes)
    assert world.engine.run(DAY).transactions == 0


def test_the_same_engine_resumes_after_the_node_refused_a_broadcast(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = one_of_each(world)
    eth = world.chain.w3.eth
    refused = ConnectionError("connection reset by the node")
    monkeypatch.setattr(eth, "send_raw_transaction", once(eth.send_raw_transaction, refused))
    with pytest.raises(ChainError):
        world.engine.run(DAY)
    assert all(world.status(h) == Status.NONE for h in hashes.values())

    again = world.engine.run(DAY)

    assert again.transactions == 1 and again.recorded == 4
    assert_recorded_once(world, hashes)


def test_a_recovery_run_reports_the_breaches_it_published(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = one_of_each(world)
    monkeypatch.setattr(world.chain, "wait", once(world.chain.wait, TransactionTimeoutError("")))
    with pytest.raises(TransactionTimeoutError):
        world.engine.run(DAY)

    recovered = world.restarted().run(DAY)

    assert recovered.breaches == []  # proposed: its notice kept once, nothing published
    [notice] = NoticeRecords(world.store).listed(HRSS)
    assert notice.commitment_hash == hashes["false"]
    assert world.publish(DAY, recovered) == [only_breach(world).id]
    assert recovered.breaches == [only_breach(world).id]
    assert only_breach(world).commitment_hash == "0x" + hashes["false"].hex()


def only_breach(world: World) -> BreachRecord:
    page = world.engine.records.search_breaches(DAY)
    assert page.total == 1
    return page.records[0]


# ---------------------------------------------------------------------- transactions


def test_outcomes_fill_whole_transactions_across_chunks(world: World) -> None:
    hashes = world.commit(*(world.pick("agree") for _ in range(8)))
    engine = world.new_engine(config=EngineConfig(chunk=5, outcomes_per_transaction=2))

    summary = engine.run(DAY)

    assert summary.recorded == 8
    assert summary.transactions == 4
    assert all(world.status(h) == Status.KEPT for h in hashes)


def test_a_reverted_outcome_transaction_is_not_taken_for_recorded_outcomes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    withdrawn, other = world.commit(world.pick("agree"), world.pick("agree"))
    outbox = world.engine.outbox
    mark_sent = outbox.mark_sent

    def withdrawn_meanwhile(ids: list[int], tx_hash: bytes, now: float | None = None) -> None:
        # Between the gas estimate and the broadcast, the registrar's desk withdraws one.
        mark_sent(ids, tx_hash, now)
        monkeypatch.setattr(outbox, "mark_sent", mark_sent)
        anchoring = world.store.anchoring_of(withdrawn)
        assert anchoring is not None
        registrar = world.deployment.registrar
        evidence = keccak256(b"withdrawal request")
        world.ledger.withdraw(registrar, withdrawn, evidence, anchoring[0].root, anchoring[1])

    monkeypatch.setattr(outbox, "mark_sent", withdrawn_meanwhile)

    summary = world.engine.run(DAY)

    # The transaction reverted: the outcome the contract refuses now is set aside with its
    # reason and the other is sent again alone; the reverted one is recorded for neither.
    assert world.status(withdrawn) == Status.WITHDRAWN
    assert world.status(other) == Status.KEPT
    assert summary.abandoned == 1 and summary.recorded == 1
    assert world.engine.records.states_of([withdrawn]) == {withdrawn: "due"}
    verification = world.engine.records.verification(other)
    assert verification is not None and verification.tx_hash is not None
    assert world.chain.receipt(verification.tx_hash)["status"] == 1  # type: ignore[index]
    assert world.engine.outbox.open(HRSS) == []


# ---------------------------------------------------------------------- decisions retried


def refuse_next_broadcast(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    eth = world.chain.w3.eth
    refused = ConnectionError("connection reset by the node")
    monkeypatch.setattr(eth, "send_raw_transaction", once(eth.send_raw_transaction, refused))


def test_a_decision_the_chain_cannot_take_is_refused_and_blocks_nothing(world: World) -> None:
    kept, _ = world.commit_kind("agree")
    breached, _ = world.commit_kind("false")
    world.engine.run(DAY)
    world.publish(DAY)

    with pytest.raises(VerificationError, match="KEPT on chain"):
        world.engine.decide(kept, "kept", DAY, "officer 3", "checked twice")
    with pytest.raises(VerificationError, match="BREACHED on chain"):
        world.engine.decide(breached, "kept", DAY, "officer 3", "not for a person to undo")

    assert world.engine.outbox.open(HRSS) == []
    [later] = world.commit(world.pick("agree"))
    assert world.engine.run(DAY).recorded == 1
    assert world.status(later) == Status.KEPT
    assert world.status(kept) == Status.KEPT and world.status(breached) == Status.BREACHED


def test_a_rectification_retried_after_the_node_refused_it_is_recorded_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    commitment, _ = world.commit_kind("mismatch")
    world.engine.run(DAY)
    refuse_next_broadcast(world, monkeypatch)
    with pytest.raises(ChainError):
        world.engine.rectify(commitment, DAY, "officer 5", "transfer certificate")

    # The retry finds the first attempt's outcome and records it; nothing is sent twice.
    with pytest.raises(VerificationError, match="kept"):
        world.engine.rectify(commitment, DAY, "officer 5", "transfer certificate")

    assert world.status(commitment) == Status.KEPT
    assert world.outcome_events(commitment) == [
        (Status.ANCHORED, Status.MISMATCH),
        (Status.MISMATCH, Status.KEPT),
    ]
    assert world.engine.outbox.open(HRSS) == []
    assert world.engine.run(DAY + timedelta(days=90)).transactions == 0


def test_overdue_processing_retried_after_the_node_refused_it_breaches_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    commitment, _ = world.commit_kind("mismatch")
    world.engine.run(DAY)
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.rectify_by is not None
    late = verification.rectify_by + timedelta(days=1)
    refuse_next_broadcast(world, monkeypatch)
    with pytest.raises(ChainError):
        world.engine.process_overdue(late)

    world.engine.process_overdue(late)
    summary = world.engine.run(late)

    assert summary.transactions == 0
    assert world.status(commitment) == Status.PROPOSED  # notified before publication
    assert len(NoticeRecords(world.store).listed(HRSS)) == 1
    world.publish(late)
    assert world.status(commitment) == Status.BREACHED
    assert world.events_of("BreachRecorded")[commitment] == 1
    assert world.engine.records.search_breaches(late).total == 1
    assert world.engine.outbox.open(HRSS) == []


def test_an_annulment_retried_after_the_node_refused_it_corrects_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    commitment, applicant = world.commit_kind("false")
    world.engine.run(DAY)
    world.publish(DAY)
    record = only_breach(world)
    refuse_next_broadcast(world, monkeypatch)
    with pytest.raises(ChainError):
        world.engine.annul(record.id, DAY, "mistaken identity")

    world.engine.annul(record.id, DAY, "mistaken identity")

    assert world.status(commitment) == Status.CORRECTED
    assert world.events_of("BreachClosed")[commitment] == 1
    assert world.engine.records.search_breaches(DAY).total == 0
    assert not world.store.is_excluded(world.fingerprint(applicant))
    assert world.engine.outbox.open(HRSS) == []
    assert world.engine.run(DAY).transactions == 0


def test_a_persons_decision_before_the_first_run_is_recorded(world: World) -> None:
    commitment, _ = world.commit_kind("missing")

    world.engine.decide(commitment, "kept", DAY, "officer 8", "certificates checked at the counter")

    assert world.status(commitment) == Status.KEPT
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.state == "kept"
    assert world.engine.outbox.open(HRSS) == []
    summary = world.engine.run(DAY)
    assert summary.examined == 0 and summary.transactions == 0
    assert world.outcome_events(commitment) == [(Status.ANCHORED, Status.KEPT)]


def test_an_outcome_the_contract_refuses_now_is_abandoned_and_blocks_nothing(
    world: World,
) -> None:
    kept, _ = world.commit_kind("agree", "BJ-HRSS-0001")
    world.engine.run(DAY)
    assert world.status(kept) == Status.KEPT
    # An outcome queued for a commitment that has moved on (Kept is final on chain).
    stale = world.engine.actions.entry(kept, "mismatch", DAY, "officer 2", "decided late")
    world.engine.outbox.enqueue(HRSS, [stale])
    later, _ = world.commit_kind("agree", "BJ-HRSS-0004")

    summary = world.engine.run(DAY)

    assert summary.abandoned == 1
    assert world.status(kept) == Status.KEPT
    assert world.status(later) == Status.KEPT  # the department is not blocked
    assert world.engine.outbox.open(HRSS) == []


def test_checking_documents_in_worker_processes_decides_the_same(world: World) -> None:
    hashes = one_of_each(world)
    honest = [world.commit_kind("agree", "BJ-HRSS-0004")[0] for _ in range(6)]
    altered = honest.pop()
    tamper(world, "flipped byte", [altered])
    engine = world.new_engine(workers=2)  # 11 documents: enough to use the workers

    summary = engine.run(DAY)

    for outcome, commitment in hashes.items():
        assert world.status(commitment) == EXPECTED_STATUS[outcome], outcome
    assert all(world.status(h) == Status.KEPT for h in honest)
    assert world.status(altered) == Status.NONE
    assert summary.outcomes["integrity_failure"] == 1


def test_chunks_checked_ahead_in_workers_are_each_decided_and_recorded_once(
    world: World,
) -> None:
    hashes = one_of_each(world)
    honest = [world.commit_kind("agree", "BJ-HRSS-0004")[0] for _ in range(20)]
    altered = [honest.pop(2), honest.pop(11)]
    for target in altered:
        tamper(world, "flipped byte", [target])
    # Chunks of 8 (enough for two workers each): the next is checked while one is sent.
    config = EngineConfig(chunk=8, outcomes_per_transaction=8)
    engine = world.new_engine(config=config, workers=2)

    summary = engine.run(DAY)

    assert summary.examined == 24 and summary.recorded == 22
    assert summary.outcomes["integrity_failure"] == 2
    assert summary.transactions == 3  # chunks of 8, 8 and 8, less the two altered
    for outcome, commitment in hashes.items():
        assert world.status(commitment) == EXPECTED_STATUS[outcome], outcome
    assert all(world.status(h) == Status.KEPT for h in honest)
    assert all(world.status(h) == Status.NONE for h in altered)
    recorded = world.events_of("OutcomeRecorded")
    assert len(recorded) == 22 and set(recorded.values()) == {1}
    # Signed in the workers with the department's key; the evidence on chain is their hash.
    for commitment in [*hashes.values(), *honest]:
        verification = engine.records.verification(commitment)
        assert verification is not None and verification.report is not None
        signed = SignedReport.from_json_obj(verification.report)
        verify_report(signed)
        assert signed.public_key == engine.report_key.public_key_b64()
        assert signed.report["department"] == HRSS and signed.report["as_of"] == DAY.isoformat()
        assert signed.evidence == verification.evidence


def test_a_failing_data_source_needs_a_person_when_workers_compare(world: World) -> None:
    # The failure crosses into the worker processes with the data: its kind must survive.
    falses = [world.commit_kind("false", POINTS)[0] for _ in range(8)]
    world.faults.fail("police_criminal")
    engine = world.new_engine(sources=world.sources(retries=0, backoff=0.0), workers=2)

    summary = engine.run(DAY)

    assert summary.outcomes == Counter({"needs_manual": 8}) and summary.breaches == []
    for commitment in falses:
        assert world.status(commitment) == Status.NEEDS_MANUAL
        verification = engine.records.verification(commitment)
        assert verification is not None and verification.report is not None
        details = [c["detail"] for c in verification.report["report"]["comparisons"]]
        assert "data source police_criminal failed: SourceUnavailable" in details


def test_outcome_transactions_stay_under_the_gas_cap_by_the_estimate() -> None:
    from verifier.engine.sending import _GAS_CAP, _gas_for, _transactions

    node = Hash32(bytes(32))
    deep, shallow = (node,) * 17, (node,) * 10  # 100,000- and 1,000-leaf batches
    items = [
        OutcomeItem(keccak256(bytes([i % 256, i // 256])), status, node, node, proof)
        for i, (status, proof) in enumerate(
            [(Status.BREACHED, deep)] * 300 + [(Status.KEPT, shallow)] * 800
        )
    ]
    note = ClosingNote.of({})
    queued = [
        QueuedOutcome(i, item.commitment, HRSS, item.outcome, node, note, None, None, None)
        for i, item in enumerate(items)
    ]

    parts = list(_transactions(queued, items, 300))

    assert [q for part, _ in parts for q in part] == queued  # all, in order, once
    assert all(len(part) <= 300 for part, _ in parts)
    assert all((_gas_for(part, chosen) or _GAS_CAP + 1) <= _GAS_CAP for part, chosen in parts)
    assert len(parts[0][0]) < 300  # breaches alone would have crossed the cap
    assert max(len(part) for part, _ in parts) == 300  # plain outcomes fill a transaction


def test_a_department_shows_its_code_and_never_its_keys() -> None:
    verifier = Account.create()
    key = SigningKey.generate("ed25519")
    department = Department(HRSS, verifier=verifier, report_key=key, registrar=verifier)

    assert repr(department) == "Department(code='BJ-HRSS')"  # logged safely
    assert department.id == department_id(HRSS)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_breach_found_in_a_run_is_published_without_opening_its_document_again(
    world: World, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    falses = [world.commit_kind("false", POINTS)[0] for _ in range(8)]  # enough for 2 workers

    def opened_again(commitment: Hash32) -> None:
        raise AssertionError("the document was checked in this run: not opened again")

    monkeypatch.setattr(world.intake, "open_document", opened_again)
    engine = world.new_engine(workers=workers)

    summary = engine.run(DAY)

    # each notice names its addressee (masked) from the document checked in the run
    notices = NoticeRecords(world.store).listed(HRSS)
    assert len(notices) == len(falses) and all(n.body["addressee"] for n in notices)
    world.publish(DAY, summary, engine.actions)
    assert len(summary.breaches) == len(falses)
    published = [engine.records.breach(record_id) for record_id in summary.breaches]
    assert all(record is not None and record.party_name for record in published)
