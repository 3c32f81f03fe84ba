"""The scenarios of DOMAIN.md, end to end: intake, anchoring, verification against the
sample department data, outcomes and breaches on the (embedded) chain."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.deployment import HRSS_ID
from support.verifier_world import DAY, HRSS, POINTS, World, open_world

from api.demo import planted, sample_commitments
from ledger import (
    Acknowledgement,
    ApplicantExcludedError,
    Chain,
    ErasedError,
    Hash32,
    Status,
    canonical_bytes,
    hex32,
    keccak256,
    new_salt,
    verify_proof,
)
from verifier import (
    Matter,
    SignedReport,
    VerificationError,
    add_months,
    mask_id_number,
    mask_person_name,
    verify_report,
)
from verifier.engine import EngineConfig

ONE_DAY = timedelta(days=1)


@pytest.fixture
def world(tmp_path: Path, embedded_chain: Chain) -> Iterator[World]:
    with open_world(embedded_chain, tmp_path) as opened:
        yield opened


def month_index(text: str) -> int:
    year, month = text.split("-")
    return int(year) * 12 + int(month) - 1


def comparisons_of(world: World, commitment: Hash32) -> dict[str, dict[str, object]]:
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.report is not None
    return {c["key"]: c for c in verification.report["report"]["comparisons"]}


def only_breach_id(world: World, on: date) -> str:
    page = world.engine.records.search_breaches(on)
    assert page.total == 1, page
    return page.records[0].id


# ---------------------------------------------------------------------- 1. points, 14-month gap


def test_points_registration_with_a_14_month_gap_is_a_mismatch_listing_the_gap(
    world: World,
) -> None:
    commitment, _ = world.commit_kind("mismatch", POINTS)

    summary = world.engine.run(DAY)

    assert summary.outcomes == Counter({"mismatch": 1})
    assert summary.recorded == 1 and summary.transactions == 1
    assert summary.breaches == []
    assert world.status(commitment) == Status.MISMATCH
    verification = world.engine.records.verification(commitment)
    assert verification is not None
    assert verification.state == "mismatch"
    assert verification.rectify_by is not None and verification.rectify_by > DAY
    # The report names the gap: one run of 14 missing months, and a run short of 84.
    months = comparisons_of(world, commitment)["social_insurance_consecutive_months"]
    assert months["verdict"] == "disagree"
    assert months["claimed"] == {"op": ">=", "value": 84}
    gaps = months["gaps"]
    assert isinstance(gaps, list)
    [(first, last)] = gaps
    assert month_index(last) - month_index(first) + 1 == 14
    assert first in str(months["detail"]) and last in str(months["detail"])
    # The evidence on chain is the hash of exactly this signed report.
    assert verification.report is not None
    verify_report(SignedReport.from_json_obj(verification.report))
    evidence = keccak256(canonical_bytes(verification.report["report"]))
    [event] = [
        e
        for e in world.ledger.events("OutcomeRecorded")
        if bytes(e["args"]["commitment"]) == commitment
    ]
    assert bytes(event["args"]["evidence"]) == evidence == verification.evidence
    assert bytes(event["transactionHash"]) == verification.tx_hash


def test_a_transfer_certificate_supplied_in_time_keeps_the_commitment(world: World) -> None:
    commitment, applicant = world.commit_kind("mismatch", POINTS)
    world.engine.run(DAY)
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.rectify_by is not None

    # The last day of the window still counts.
    world.engine.rectify(
        commitment, verification.rectify_by, "officer 0042", "transfer certificate supplied"
    )

    assert world.status(commitment) == Status.KEPT
    assert world.outcome_events(commitment) == [
        (Status.ANCHORED, Status.MISMATCH),
        (Status.MISMATCH, Status.KEPT),
    ]
    after = world.engine.records.verification(commitment)
    assert after is not None and after.state == "kept"
    assert after.report is not None and after.report["report"]["decided_by"] == "officer 0042"
    # Long after the window nothing turns it into a breach.
    later = world.engine.run(verification.rectify_by + timedelta(days=60))
    assert later.transactions == 0 and later.breaches == []
    assert world.status(commitment) == Status.KEPT
    assert world.ledger.open_breaches() == 0
    assert not world.store.is_excluded(world.fingerprint(applicant))


def test_no_certificate_by_the_end_of_the_window_is_a_published_breach(world: World) -> None:
    commitment, applicant = world.commit_kind("mismatch", POINTS)
    world.engine.run(DAY)
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.rectify_by is not None
    rectify_by = verification.rectify_by

    # On the last day of the window the mismatch stands.
    on_the_day = world.engine.run(rectify_by)
    assert on_the_day.transactions == 0
    assert world.status(commitment) == Status.MISMATCH
    # The day after, a certificate is too late, and the run turns the mismatch into a breach.
    after = rectify_by + ONE_DAY
    with pytest.raises(VerificationError, match="too late"):
        world.engine.rectify(commitment, after, "officer 0042", "certificate came late")
    summary = world.engine.run(after)

    # Proposed first: the applicant is notified and may answer; nothing is published.
    assert summary.transactions == 1 and summary.breaches == []
    assert world.status(commitment) == Status.PROPOSED
    assert world.engine.records.search_breaches(after).total == 0
    assert not world.store.is_excluded(world.fingerprint(applicant))
    # Published after the defence (here an officer's confirmation).
    [record_id] = world.publish(after, summary)
    assert world.status(commitment) == Status.BREACHED
    assert world.outcome_events(commitment) == [
        (Status.ANCHORED, Status.MISMATCH),
        (Status.MISMATCH, Status.PROPOSED),
        (Status.PROPOSED, Status.BREACHED),
    ]
    assert world.events_of("BreachRecorded")[commitment] == 1
    assert world.ledger.open_breaches() == 1
    state = world.engine.records.verification(commitment)
    assert state is not None and state.state == "breached"
    # Published in public form: masked name and ID, the facts name the gap, nothing personal.
    record = world.engine.records.breach(record_id)
    assert record is not None
    person = applicant.applicant
    assert record.status == "published" and record.severity == "general"
    assert record.party_name == mask_person_name(person.name) != person.name
    assert "*" in record.party_name
    assert record.party_code == mask_id_number(person.id_type, person.id_number)
    assert record.party_code != person.id_number
    assert record.decision_date == after
    assert record.commitment_hash == hex32(commitment)
    assert "在京连续缴纳社会保险月数" in record.facts
    public = json.dumps(record.to_public_json(), ensure_ascii=False)
    assert person.id_number not in public and person.name not in public
    [event] = world.ledger.events("BreachRecorded")
    assert record.evidence.transaction == hex32(Hash32(bytes(event["transactionHash"])))
    assert record.evidence.block == event["blockNumber"]
    listed = world.engine.records.search_breaches(after)
    assert [r.id for r in listed.records] == [record_id]
    # The applicant is off the commitment route.
    assert world.store.is_excluded(world.fingerprint(applicant))
    # Running again changes nothing.
    again = world.engine.run(after + ONE_DAY)
    assert again.transactions == 0 and again.breaches == []
    assert world.ledger.open_breaches() == 1


# ---------------------------------------------------------------------- 2. no record yet


@pytest.mark.parametrize("matter", ["BJ-HRSS-0001", "BJ-HRSS-0002", "BJ-HRSS-0003", "BJ-HRSS-0004"])
def test_no_record_at_the_source_needs_a_person_never_a_breach(world: World, matter: str) -> None:
    commitment, applicant = world.commit_kind("missing", matter)

    summary = world.engine.run(DAY)

    assert summary.outcomes == Counter({"needs_manual": 1})
    assert world.status(commitment) == Status.NEEDS_MANUAL
    verdicts = {key: c["verdict"] for key, c in comparisons_of(world, commitment).items()}
    assert "undecidable" in verdicts.values() and "disagree" not in verdicts.values()
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.state == "manual"
    # However long nobody decides, no run makes it a breach.
    much_later = world.engine.run(DAY + timedelta(days=400))
    assert much_later.transactions == 0 and much_later.breaches == []
    assert world.status(commitment) == Status.NEEDS_MANUAL
    assert world.ledger.open_breaches() == 0
    assert world.engine.records.search_breaches(DAY + timedelta(days=400)).total == 0
    assert not world.store.is_excluded(world.fingerprint(applicant))


# ---------------------------------------------------------------------- 3. withdrawal


def test_withdrawal_before_the_decision_is_no_breach_and_the_route_stays_open(
    world: World,
) -> None:
    # Records that would make the commitment false: withdrawn first, they are never compared.
    commitment, applicant = world.commit_kind("false", POINTS)

    world.engine.withdraw(commitment, DAY, "withdrawn by the applicant at the counter")

    assert world.status(commitment) == Status.WITHDRAWN
    assert world.events_of("CommitmentWithdrawn")[commitment] == 1
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.state == "withdrawn"
    summary = world.engine.run(DAY)
    assert summary.examined == 0 and summary.transactions == 0
    assert world.outcome_events(commitment) == [(Status.ANCHORED, Status.WITHDRAWN)]
    assert world.ledger.open_breaches() == 0
    assert world.engine.records.search_breaches(DAY).total == 0
    assert not world.store.is_excluded(world.fingerprint(applicant))
    # A new commitment by the same applicant is accepted.
    again = world.sign(world.again(applicant))
    acknowledgement = world.intake.submit(again.to_json_obj())
    assert acknowledgement == Acknowledgement(again.hash(), True)


# ---------------------------------------------------------------------- 4. excluded applicant


def test_an_applicant_with_an_unrepaired_breach_is_refused_the_commitment_route(
    world: World,
) -> None:
    commitment, applicant = world.commit_kind("false", POINTS)
    summary = world.engine.run(DAY)
    assert summary.breaches == []
    # Not excluded while the breach is only proposed (in its defence period).
    assert not world.store.is_excluded(world.fingerprint(applicant))
    assert len(world.publish(DAY, summary)) == 1
    assert world.status(commitment) == Status.BREACHED

    refused = world.sign(world.again(applicant))
    other = world.sign(world.pick("agree", POINTS))
    with pytest.raises(ApplicantExcludedError, match="certificates"):
        world.intake.submit(refused.to_json_obj())
    # In a mixed submission only the excluded applicant's document is refused.
    results = world.intake.submit_many([refused.to_json_obj(), other.to_json_obj()])
    assert isinstance(results[0], ApplicantExcludedError)
    assert results[1] == Acknowledgement(other.hash(), True)
    assert world.store.get(refused.hash()) is None
    # Another matter: refused too (the exclusion is the applicant's, not the matter's).
    card = world.pick("agree", "BJ-HRSS-0004").model_copy(update={"applicant": applicant.applicant})
    with pytest.raises(ApplicantExcludedError):
        world.intake.submit(world.sign(card).to_json_obj())


# ---------------------------------------------------------------------- 5. overdue


def test_a_deadline_passing_with_nothing_recorded_is_flagged_once_for_the_department(
    world: World,
) -> None:
    # A work permit: its claims do not age, so a late verification can still keep it.
    permit = "BJ-HRSS-0002"
    verified, waiting = world.commit(world.pick("agree", permit), world.pick("agree", permit))
    engine = world.new_engine(config=EngineConfig(chunk=1))
    # One commitment is verified; the run stops before the other (limit), nothing recorded.
    first = engine.run(DAY, limit=1)
    assert first.examined == 1 and first.recorded == 1
    states = engine.records.states_of([verified, waiting])
    if states[verified] == "due":
        verified, waiting = waiting, verified
    assert engine.records.states_of([verified, waiting]) == {verified: "kept", waiting: "due"}
    pending = engine.records.verification(waiting)
    assert pending is not None and not pending.overdue_flagged
    deadline = pending.due_on
    assert deadline > DAY

    # On the deadline itself it is not overdue yet.
    assert engine.run(deadline, limit=0).overdue_flagged == 0
    # The day after it is flagged for the department, once.
    late = engine.run(deadline + ONE_DAY, limit=0)
    assert late.overdue_flagged == 1 and late.transactions == 0
    assert engine.records.overdue_unverified(deadline + ONE_DAY, HRSS) == [
        engine.records.verification(waiting)
    ]
    flagged = engine.records.verification(waiting)
    assert flagged is not None and flagged.overdue_flagged and flagged.state == "due"
    done = engine.records.verification(verified)
    assert done is not None and not done.overdue_flagged
    assert engine.run(deadline + 2 * ONE_DAY, limit=0).overdue_flagged == 0
    assert engine.records.flag_overdue(deadline + 3 * ONE_DAY, HRSS) == []
    # Another department has nothing overdue.
    assert engine.records.flag_overdue(deadline + 3 * ONE_DAY, "BJ-SAMR") == []
    # A late verification still records it.
    assert engine.run(deadline + 3 * ONE_DAY).recorded == 1
    assert world.status(waiting) == Status.KEPT


# ---------------------------------------------------------------------- 6. repair


def test_a_general_breach_is_repaired_only_after_3_months_and_its_history_stays(
    world: World,
) -> None:
    commitment, applicant = world.commit_kind("false", POINTS)
    world.engine.run(DAY)
    world.publish(DAY)
    record_id = only_breach_id(world, DAY)
    record = world.engine.records.breach(record_id)
    assert record is not None and record.severity == "general"
    earliest = add_months(DAY, 3)

    too_early = earliest - ONE_DAY
    with pytest.raises(VerificationError, match=earliest.isoformat()):
        world.engine.repair(record_id, too_early, "repair decision 京人社修复〔2027〕1号")
    assert world.status(commitment) == Status.BREACHED
    assert world.engine.records.search_breaches(too_early).total == 1
    assert world.store.is_excluded(world.fingerprint(applicant))

    world.engine.repair(record_id, earliest, "repair decision 京人社修复〔2027〕1号")

    assert world.status(commitment) == Status.REPAIRED
    assert world.ledger.open_breaches() == 0
    assert world.engine.records.search_breaches(earliest).total == 0
    repaired = world.engine.records.breach(record_id)
    assert repaired is not None
    assert repaired.status == "repaired" and repaired.repaired_on == earliest
    # The chain keeps the whole story.
    assert world.events_of("BreachRecorded")[commitment] == 1
    assert world.events_of("BreachRepaired")[commitment] == 1
    assert world.outcome_events(commitment) == [
        (Status.ANCHORED, Status.PROPOSED),
        (Status.PROPOSED, Status.BREACHED),
        (Status.BREACHED, Status.REPAIRED),
    ]
    [event] = world.ledger.events("BreachRepaired")
    assert bytes(event["args"]["decision"]) == keccak256(
        "repair decision 京人社修复〔2027〕1号".encode()
    )
    # Readmitted to the commitment route.
    assert not world.store.is_excluded(world.fingerprint(applicant))
    world.intake.submit(world.sign(world.again(applicant)).to_json_obj())


# ---------------------------------------------------------------------- 7. mistaken identity


def test_an_upheld_objection_corrects_the_record_and_the_history_stays(world: World) -> None:
    commitment, applicant = world.commit_kind("false", POINTS)
    world.engine.run(DAY)
    world.publish(DAY)
    record_id = only_breach_id(world, DAY)
    objection_upheld = DAY + timedelta(days=10)

    world.engine.annul(record_id, objection_upheld, "mistaken identity: another person's record")

    assert world.status(commitment) == Status.CORRECTED
    assert world.ledger.open_breaches() == 0
    assert world.engine.records.search_breaches(objection_upheld).total == 0
    corrected = world.engine.records.breach(record_id)
    assert corrected is not None and corrected.status == "corrected"
    assert world.events_of("BreachRecorded")[commitment] == 1
    [closed] = world.ledger.events("BreachClosed")
    assert bytes(closed["args"]["commitment"]) == commitment
    assert Status(closed["args"]["reason"]) == Status.CORRECTED
    assert world.outcome_events(commitment) == [
        (Status.ANCHORED, Status.PROPOSED),
        (Status.PROPOSED, Status.BREACHED),
        (Status.BREACHED, Status.CORRECTED),
    ]
    assert not world.store.is_excluded(world.fingerprint(applicant))
    # A corrected record is not repaired or annulled a second time.
    with pytest.raises(VerificationError):
        world.engine.repair(record_id, add_months(DAY, 3), "repair")


# ---------------------------------------------------------------------- 8. erasure


def chain_bytes(chain: Chain) -> bytes:
    """Every transaction's input and every log's data on the chain, concatenated."""
    parts = []
    for number in range(chain.block_number() + 1):
        block: Any = chain.w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            parts.append(bytes(tx.get("input", tx.get("data", b""))))
            receipt = chain.w3.eth.get_transaction_receipt(tx["hash"])
            parts.extend(bytes(log["data"]) for log in receipt["logs"])
    return b"".join(parts)


def test_erasure_leaves_a_proof_that_reveals_nothing_and_no_automatic_breach(
    world: World,
) -> None:
    # Records that would make the commitment false: erased, it can only go to a person.
    commitment, applicant = world.commit_kind("false", POINTS)
    anchoring = world.store.anchoring_of(commitment)
    assert anchoring is not None
    batch, proof = anchoring

    assert world.store.erase(commitment)

    with pytest.raises(ErasedError):
        world.intake.open_document(commitment)
    assert world.store.sealed(commitment) == (b"", None)
    # The proof still verifies, offline and on chain.
    assert verify_proof(batch.root, commitment, proof)
    assert world.ledger.is_anchored(HRSS_ID, commitment, batch.root, proof)
    # The hash is of a salted document: everything about the applicant, without the salt,
    # does not lead to it; with the salt (now gone) it did.
    assert applicant.hash() == commitment
    assert applicant.model_copy(update={"salt": new_salt()}).hash() != commitment
    for guess in range(3):
        assert applicant.model_copy(update={"salt": f"0x{guess:064x}"}).hash() != commitment

    summary = world.engine.run(DAY)

    assert summary.outcomes == Counter({"needs_manual": 1})
    assert summary.breaches == []
    assert world.status(commitment) == Status.NEEDS_MANUAL
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.report is not None
    assert "erased" in verification.report["report"]["note"]
    assert verification.report["report"]["comparisons"] == []
    [event] = [
        e
        for e in world.ledger.events("OutcomeRecorded")
        if bytes(e["args"]["commitment"]) == commitment
    ]
    assert bytes(event["args"]["root"]) == batch.root  # its first outcome proved membership
    assert world.ledger.open_breaches() == 0
    assert not world.store.is_excluded(world.fingerprint(applicant))
    # Nothing personal ever reached the chain.
    on_chain = chain_bytes(world.chain)
    assert bytes(commitment) in on_chain  # the scan sees the outcome transaction
    person = applicant.applicant
    for secret in (person.id_number, person.name):
        assert secret.encode() not in on_chain
        assert secret.encode("utf-16-be") not in on_chain


def test_erasure_during_an_open_mismatch_leaves_it_to_a_person_not_a_breach(
    world: World,
) -> None:
    commitment, applicant = world.commit_kind("mismatch", POINTS)
    world.engine.run(DAY)
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.rectify_by is not None
    assert world.store.erase(commitment)

    summary = world.engine.run(verification.rectify_by + ONE_DAY)

    assert summary.breaches == [] and summary.recorded == 1
    assert world.status(commitment) == Status.NEEDS_MANUAL
    after = world.engine.records.verification(commitment)
    assert after is not None and after.state == "manual"
    assert after.report is not None and "erased" in after.report["report"]["note"]
    assert world.ledger.open_breaches() == 0
    assert world.engine.outbox.open(HRSS) == []
    assert not world.store.is_excluded(world.fingerprint(applicant))
    assert world.engine.run(verification.rectify_by + 2 * ONE_DAY).transactions == 0


# ---------------------------------------------------------------------- 9. peak


def expected_outcome(matter: Matter, kind: str) -> str:
    """What the sample data plant for `kind` lead to for `matter`."""
    if kind == "agree":
        return "kept"
    if kind == "missing":
        return "needs_manual"
    if kind == "false" and any(spec.on_disagree == "false" for spec in matter.claims):
        return "false"
    return "mismatch"


PEAK = 2_000  # an application window's busiest hour, scaled down (about 15 s here)


def test_a_peak_batch_verifies_completely_in_one_run_in_few_transactions(world: World) -> None:
    commitments = list(sample_commitments(PEAK, seed=2027, department=HRSS))
    hashes = world.commit(*commitments)
    expected = Counter(
        expected_outcome(world.catalog.matter(c.matter_code), planted(c.applicant.id_number))
        for c in commitments
    )
    assert set(expected) == {"kept", "mismatch", "needs_manual", "false"}

    summary = world.engine.run(DAY)

    per_transaction = EngineConfig().outcomes_per_transaction
    assert summary.examined == PEAK
    assert summary.outcomes == expected
    assert summary.recorded == PEAK
    assert 1 <= summary.transactions <= math.ceil(PEAK / per_transaction)
    assert summary.breaches == []  # every false one proposed and notified
    states = Counter(world.engine.records.states_of(hashes).values())
    assert states["due"] == 0 and sum(states.values()) == PEAK
    assert states["proposed"] == expected["false"]
    assert world.engine.records.due(date.max, HRSS, PEAK) == []
    assert world.ledger.open_breaches() == 0
    recorded = world.events_of("OutcomeRecorded")
    assert all(recorded[h] == 1 for h in hashes)
    assert world.engine.run(DAY).transactions == 0


# ---------------------------------------------------------------------- expiry


def test_a_breach_expires_at_the_end_of_its_publication_period(world: World) -> None:
    commitment, applicant = world.commit_kind("false", POINTS)
    world.engine.run(DAY)
    world.publish(DAY)
    record_id = only_breach_id(world, DAY)
    record = world.engine.records.breach(record_id)
    assert record is not None
    end = record.publication_end  # general severity: one year

    assert world.engine.expire(end) == []  # the last day it is still listed
    assert world.engine.records.search_breaches(end).total == 1
    assert world.engine.expire(end + ONE_DAY) == [record_id]

    assert world.status(commitment) == Status.EXPIRED
    assert world.ledger.open_breaches() == 0
    assert world.engine.records.search_breaches(end + ONE_DAY).total == 0
    expired = world.engine.records.breach(record_id)
    assert expired is not None
    assert expired.status == "expired"
    [closed] = world.ledger.events("BreachClosed")
    assert bytes(closed["args"]["commitment"]) == commitment
    assert not world.store.is_excluded(world.fingerprint(applicant))
    assert world.engine.expire(end + 2 * ONE_DAY) == []  # nothing twice
