"""Breach records and their parties for the records and search tests: numbered, repeatable."""

from __future__ import annotations

from datetime import date

from ledger import Applicant, Hash32, hex32, keccak256, make_resident_id, make_uscc
from verifier import BreachEvidence, BreachRecord, Matter, default_catalog, make_breach_record

HRSS = "BJ-HRSS"
SAMR = "BJ-SAMR"
POINTS = default_catalog().matter("BJ-HRSS-0001")  # general severity
CARD = default_catalog().matter("BJ-HRSS-0004")  # minor
FOOD = default_catalog().matter("BJ-SAMR-0001")  # serious
DECIDED = date(2026, 1, 15)
ON = date(2026, 3, 1)  # the day the search tests search on
# Chinese punctuation, as real decisions are written (ruff takes it for ASCII look-alikes).
FACTS = "申请人承诺连续缴纳社会保险84个月，经核查中断14个月，逾期未补正。"
DECISION = "撤销审批决定，记入失信记录"


def commitment(n: int) -> Hash32:
    """The n-th commitment hash."""
    return keccak256(f"commitment {n}".encode())


def fingerprint(n: int) -> bytes:
    """The n-th applicant's fingerprint."""
    return keccak256(f"applicant {n}".encode())


def person(n: int, name: str = "张三") -> Applicant:
    """The n-th person, with a well-formed resident ID."""
    number = make_resident_id("110105", date(1990, 1, 1 + n % 28), n)
    return Applicant(kind="person", name=name, id_type="resident_id", id_number=number)


def company(name: str = "北京示例餐饮有限公司") -> Applicant:
    """An organisation with a well-formed credit code."""
    return Applicant(
        kind="organisation", name=name, id_type="uscc", id_number=make_uscc("110108", "MA01ABCD")
    )


def breach(
    n: int,
    applicant: Applicant | None = None,
    of: Matter = POINTS,
    decided: date = DECIDED,
    corrects: BreachRecord | None = None,
) -> BreachRecord:
    """The n-th breach record (of the n-th person unless `applicant` is given)."""
    subject = hex32(commitment(n))
    return make_breach_record(
        person(n) if applicant is None else applicant,
        of,
        subject,
        facts=FACTS,
        decision=DECISION,
        document_number=f"京人社承诺〔2026〕{n}号",
        decision_date=decided,
        evidence=BreachEvidence(
            chain_id=31337,
            contract="0x" + "ab" * 20,
            transaction=hex32(keccak256(f"tx {n}".encode())),
            block=100 + n,
            commitment_hash=subject,
        ),
        corrects=corrects,
    )
