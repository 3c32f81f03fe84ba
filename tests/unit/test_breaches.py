"""Breach records: masking as public credit sites do, publication periods, repair, correction."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pytest

from ledger import Applicant, hex32, keccak256, make_resident_id, make_uscc
from verifier import (
    BreachError,
    BreachEvidence,
    BreachRecord,
    BreachStateError,
    Matter,
    PublicationPeriod,
    RepairTooEarlyError,
    add_months,
    can_repair,
    corrected,
    default_catalog,
    earliest_repair,
    expired,
    make_breach_record,
    mask_id_number,
    mask_person_name,
    publication_over,
    publication_period,
    publicly_listed,
    repaired,
)

BIRTH = date(1990, 3, 7)
ZHANG_ID = make_resident_id("110105", BIRTH, 123)
ZHANG = Applicant(kind="person", name="张三丰", id_type="resident_id", id_number=ZHANG_ID)
COMPANY_CODE = make_uscc("110108", "MA01ABCD")
COMPANY = Applicant(
    kind="organisation", name="北京示例餐饮有限公司", id_type="uscc", id_number=COMPANY_CODE
)
DECIDED = date(2026, 1, 15)
# Chinese punctuation, as real decisions are written (ruff takes it for ASCII look-alikes).
FACTS = "申请人承诺连续缴纳社会保险84个月，经核查实际中断14个月，逾期未补正。"
DECISION = "撤销审批决定，记入失信记录"
CORRECTED_FACTS = "经异议复核，更正失信事实。"


def document_number(n: int) -> str:
    return f"京人社承诺〔2026〕{n}号"


def matter(code: str) -> Matter:
    return default_catalog().matter(code)


GENERAL = matter("BJ-HRSS-0001")  # points-based household registration
MINOR = matter("BJ-HRSS-0004")  # social-security card
SERIOUS = matter("BJ-SAMR-0001")  # food business licence


def evidence(commitment: str) -> BreachEvidence:
    return BreachEvidence(
        chain_id=31337,
        contract="0x" + "ab" * 20,
        transaction=hex32(keccak256(b"tx " + commitment.encode())),
        block=42,
        commitment_hash=commitment,
    )


def breach(
    n: int = 1,
    applicant: Applicant = ZHANG,
    of: Matter = GENERAL,
    decided: date = DECIDED,
    corrects: BreachRecord | None = None,
    facts: str = FACTS,
) -> BreachRecord:
    commitment = hex32(keccak256(f"commitment {n}".encode()))
    return make_breach_record(
        applicant,
        of,
        commitment,
        facts=facts,
        decision=DECISION,
        document_number=document_number(n),
        decision_date=decided,
        evidence=evidence(commitment),
        corrects=corrects,
    )


# --------------------------------------------------------------------------- masking


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("张三", "张*"),
        ("王小明", "王**"),
        ("欧阳修文", "欧阳**"),
        ("诸葛亮", "诸葛*"),
        ("司马相如", "司马**"),
        ("欧阳", "欧*"),  # two characters: a one-character surname and a given name
        ("阿依古丽·买买提", "阿***·***"),
        ("SMITH JOHN", "S**** J***"),
        ("Li Na", "L* N*"),
        ("MARIE-CLAIRE DUPONT", "M*********** D*****"),
    ],
)
def test_person_names_keep_only_the_surname_or_initials(name: str, shown: str) -> None:
    assert mask_person_name(name) == shown


def test_resident_id_hides_the_birth_date_and_most_of_the_sequence() -> None:
    shown = mask_id_number("resident_id", ZHANG_ID)
    assert shown == "110105" + "*" * 10 + ZHANG_ID[-2:]
    assert len(shown) == len(ZHANG_ID)
    assert "19900307" not in shown


def test_permanent_residence_ids_are_masked_like_resident_ids() -> None:
    card_2023 = "9" + ZHANG_ID[1:]
    assert mask_id_number("foreign_permanent_resident_id", card_2023) == (
        card_2023[:6] + "*" * 10 + card_2023[-2:]
    )
    card_2017 = "USA110900307001"
    assert mask_id_number("foreign_permanent_resident_id", card_2017) == "USA" + "*" * 10 + "01"


@pytest.mark.parametrize(
    ("passport", "shown"),
    [("E12345678", "E1*****78"), ("AB123", "A***3"), ("G1234567", "G1****67")],
)
def test_passports_keep_two_characters_at_each_end_but_never_half(
    passport: str, shown: str
) -> None:
    assert mask_id_number("passport", passport) == shown


def test_credit_codes_are_public_and_not_masked() -> None:
    assert mask_id_number("uscc", COMPANY_CODE) == COMPANY_CODE


# --------------------------------------------------------------------------- periods


def test_publication_periods_follow_severity() -> None:
    assert publication_period("minor") == PublicationPeriod(0, 3)
    assert publication_period("general") == PublicationPeriod(3, 12)
    assert publication_period("serious") == PublicationPeriod(12, 36)


@pytest.mark.parametrize(
    ("day", "months", "result"),
    [
        (date(2026, 1, 15), 3, date(2026, 4, 15)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 12, 1), 1, date(2027, 1, 1)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2026, 5, 5), 36, date(2029, 5, 5)),
    ],
)
def test_add_months_counts_calendar_months(day: date, months: int, result: date) -> None:
    assert add_months(day, months) == result


@pytest.mark.parametrize(
    ("of", "end", "repair_from"),
    [
        (MINOR, date(2026, 4, 15), DECIDED),
        (GENERAL, date(2027, 1, 15), date(2026, 4, 15)),
        (SERIOUS, date(2029, 1, 15), date(2027, 1, 15)),
    ],
)
def test_record_periods_run_from_the_decision_date(
    of: Matter, end: date, repair_from: date
) -> None:
    record = breach(of=of)
    assert record.severity == of.severity
    assert record.publication_end == end
    assert earliest_repair(record) == repair_from


# --------------------------------------------------------------------------- the record


def test_a_person_appears_masked_everywhere_in_the_public_json() -> None:
    record = breach()
    assert record.party_name == "张**"
    assert record.party_code == mask_id_number("resident_id", ZHANG_ID)
    text = json.dumps(record.to_public_json(), ensure_ascii=False)
    for secret in (ZHANG.name, ZHANG_ID, ZHANG_ID[6:14], ZHANG_ID[:14]):
        assert secret not in text


def test_an_organisation_appears_by_name_and_credit_code() -> None:
    record = breach(applicant=COMPANY, of=SERIOUS)
    assert (record.party_kind, record.party_name, record.party_code) == (
        "organisation",
        COMPANY.name,
        COMPANY_CODE,
    )


def test_the_record_carries_the_matter_department_and_chain_evidence() -> None:
    record = breach()
    commitment = hex32(keccak256(b"commitment 1"))
    assert record.id == "BR-" + commitment[2:18]
    assert record.commitment_hash == commitment
    assert (record.matter_code, record.matter_name) == (GENERAL.code, GENERAL.name)
    assert (record.department, record.department_name) == ("BJ-HRSS", GENERAL.department_name)
    assert record.legal_basis == GENERAL.legal_basis
    assert record.status == "published"
    assert record.evidence.commitment_hash == commitment
    assert record.to_public_json()["decision_date"] == "2026-01-15"


def test_public_json_round_trips() -> None:
    record = repaired(breach(), date(2026, 5, 1))
    data = record.to_public_json()
    assert BreachRecord.from_json(data) == record
    assert BreachRecord.from_json(json.dumps(data, ensure_ascii=False)) == record


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},
        {"status": "deleted"},
        {"decision_date": "2026-02-30"},
        {"evidence": {"chain_id": "31337"}},
    ],
)
def test_from_json_rejects_malformed_records(change: dict[str, object]) -> None:
    data = {**breach().to_public_json(), **change}
    with pytest.raises(BreachError, match="not a breach record"):
        BreachRecord.from_json(data)


@pytest.mark.parametrize(
    "facts",
    [f"{ZHANG.name}承诺连续缴纳社会保险", f"身份证号{ZHANG_ID}的申请人未补正"],
)
def test_facts_naming_the_person_are_refused(facts: str) -> None:
    with pytest.raises(BreachError, match="unmasked name or ID"):
        breach(facts=facts)


def test_evidence_for_another_commitment_is_refused() -> None:
    other = hex32(keccak256(b"another"))
    with pytest.raises(BreachError, match="evidence is for commitment"):
        make_breach_record(
            ZHANG,
            GENERAL,
            hex32(keccak256(b"commitment 1")),
            facts=FACTS,
            decision="撤销",
            document_number=document_number(1),
            decision_date=DECIDED,
            evidence=evidence(other),
        )


def test_empty_decision_is_refused() -> None:
    commitment = hex32(keccak256(b"commitment 1"))
    with pytest.raises(BreachError, match="decision must not be empty"):
        make_breach_record(
            ZHANG,
            GENERAL,
            commitment,
            facts=FACTS,
            decision=" ",
            document_number=document_number(1),
            decision_date=DECIDED,
            evidence=evidence(commitment),
        )


# --------------------------------------------------------------------------- scenario 6: repair


def test_a_general_breach_cannot_be_repaired_before_three_months() -> None:
    record = breach()
    day_before = date(2026, 4, 14)
    assert not can_repair(record, day_before)
    with pytest.raises(RepairTooEarlyError, match="from 2026-04-15") as caught:
        repaired(record, day_before)
    assert caught.value.earliest == date(2026, 4, 15)
    assert isinstance(caught.value, ValueError)


def test_a_general_breach_can_be_repaired_after_three_months() -> None:
    record = breach()
    on = date(2026, 4, 15)
    assert can_repair(record, on)
    fixed = repaired(record, on)
    assert (fixed.status, fixed.repaired_on) == ("repaired", on)
    assert not publicly_listed(fixed, on)
    # the rest of the record (its history) is unchanged
    assert replace(fixed, status="published", repaired_on=None) == record


def test_a_minor_breach_can_be_repaired_at_once_and_a_serious_one_after_a_year() -> None:
    assert can_repair(breach(of=MINOR), DECIDED)
    serious = breach(of=SERIOUS)
    assert not can_repair(serious, date(2027, 1, 14))
    assert can_repair(serious, date(2027, 1, 15))


def test_only_a_listed_record_can_be_repaired() -> None:
    fixed = repaired(breach(), date(2026, 5, 1))
    assert not can_repair(fixed, date(2026, 6, 1))
    with pytest.raises(BreachStateError, match="not listed"):
        repaired(fixed, date(2026, 6, 1))
    with pytest.raises(BreachStateError, match="not listed"):
        repaired(breach(), date(2027, 1, 16))  # past its publication


# --------------------------------------------------------------------------- expiry


def test_listed_through_the_publication_end_date_then_expired() -> None:
    record = breach()
    assert not publicly_listed(record, date(2026, 1, 14))  # not yet decided
    assert publicly_listed(record, DECIDED)
    assert publicly_listed(record, date(2027, 1, 15))
    assert not publication_over(record, date(2027, 1, 15))
    assert not publicly_listed(record, date(2027, 1, 16))
    assert publication_over(record, date(2027, 1, 16))


def test_expiry_only_after_the_publication_end() -> None:
    record = breach()
    with pytest.raises(BreachStateError, match="published until 2027-01-15"):
        expired(record, date(2027, 1, 15))
    gone = expired(record, date(2027, 1, 16))
    assert gone.status == "expired"
    with pytest.raises(BreachStateError, match="expired, not published"):
        expired(gone, date(2027, 2, 1))


# --------------------------------------------------------------------------- scenario 7


def test_a_correction_supersedes_the_record_and_history_stays() -> None:
    original = breach()
    # The objection showed the bureau matched another person's social-insurance records.
    correction = breach(corrects=original, of=MINOR, facts=CORRECTED_FACTS)
    assert correction.id == original.id + "-2"
    superseded = corrected(original, by=correction)
    on = date(2026, 2, 1)
    assert (superseded.status, superseded.superseded_by) == ("corrected", correction.id)
    assert not publicly_listed(superseded, on)
    assert publicly_listed(correction, on)
    assert replace(superseded, status="published", superseded_by=None) == original
    third = breach(corrects=correction)
    assert third.id == original.id + "-3"


def test_a_correction_for_another_commitment_keeps_its_own_id() -> None:
    original = breach(1)
    other = breach(2, corrects=original)
    assert other.id == "BR-" + other.commitment_hash[2:18]


def test_a_record_cannot_be_corrected_twice_or_by_itself() -> None:
    original = breach()
    correction = breach(corrects=original)
    superseded = corrected(original, by=correction)
    with pytest.raises(BreachStateError, match="already corrected"):
        corrected(superseded, by=breach(corrects=correction))
    with pytest.raises(BreachStateError, match="new, published record"):
        corrected(original, by=original)
    with pytest.raises(BreachStateError, match="new, published record"):
        corrected(original, by=repaired(correction, date(2026, 5, 1)))
