"""Issue #16: feed records in the national credit-commitment data elements, with Chinese
code-list values; the department registry; the record's JSON Schema; public text in Chinese;
version 1 records still read back."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import jsonschema_rs
import pytest
from sqlalchemy import select
from support.feed_world import DAY, HRSS, FeedWorld, feed_world
from support.verifier_world import SAMR

from ledger import Chain, InvalidDocumentError, SigningKey, Status, department_id
from verifier import (
    Comparison,
    add_months,
    breach_facts,
    claim_fact,
    credit_code_valid,
    default_catalog,
    default_departments,
    document_number,
    load_departments,
    severity_text,
)
from verifier.feed import (
    COMMITMENT_TYPES,
    COMMITTER_CATEGORIES,
    FULFILMENT_ZH,
    SCHEMA_FILE,
    SCOPE_ZH,
    FeedRecord,
    chain_facts,
    check_feed,
    committer_category,
    department_codes,
    record_schema,
    sign_record,
    verify_record,
)
from verifier.records import breach_records

if TYPE_CHECKING:
    from verifier.feed.records import ChainFacts

ASCII_LETTERS = re.compile("[A-Za-z]")


@pytest.fixture
def fw(tmp_path: Path, embedded_chain: Chain) -> Iterator[FeedWorld]:
    with feed_world(embedded_chain, tmp_path) as opened:
        yield opened


def served_bodies(fw: FeedWorld) -> list[dict[str, object]]:
    follower = fw.follower()
    follower.step()
    return [json.loads(body) for _, body in follower.feed.bodies()]


# ---------------------------------------------------------------------- the registry


def test_the_credit_code_check_character_is_gb_32100s() -> None:
    assert credit_code_valid("91350100M000100Y43")  # the standard's own example
    assert not credit_code_valid("91350100M000100Y44")  # check character off by one
    assert not credit_code_valid("91350100M000100Y4")  # 17 characters
    assert not credit_code_valid("91350100M000I00Y43")  # I is not in the alphabet
    assert not credit_code_valid("91350100m000100y43")  # lower case is not a code


def test_every_registered_department_has_a_valid_18_character_credit_code() -> None:
    registry = default_departments()
    assert registry.departments
    for department in registry.departments:
        assert len(department.credit_code) == 18 and credit_code_valid(department.credit_code)
        assert re.fullmatch("[0-9]{6}", department.region)
        assert department.short_name and not ASCII_LETTERS.search(department.short_name)
    # Every department the shipped catalog names is registered, under the catalog's name.
    for matter in default_catalog().matters:
        assert registry.department(matter.department).name == matter.department_name


def test_a_registry_with_a_wrong_check_character_names_the_file_and_the_code(
    tmp_path: Path,
) -> None:
    data = json.loads(default_departments().model_dump_json())
    good = data["departments"][0]["credit_code"]
    data["departments"][0]["credit_code"] = good[:17] + ("0" if good[17] != "0" else "1")
    path = tmp_path / "departments.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(
        InvalidDocumentError, match=r"departments\.json: department BJ-HRSS, credit_code: "
    ):
        load_departments(path)


def test_the_committer_category_has_four_values_individual_business_by_credit_code() -> None:
    assert committer_category("person", "110101199001011234") == "natural_person"
    assert committer_category("organisation", "91110000MA01ABCD12") == "legal_person"
    assert committer_category("organisation", "92110105MA01ABCD12") == "individual_business"
    assert committer_category("organisation", "31110000MA01ABCD12") == "other_organisation"
    assert set(COMMITTER_CATEGORIES.values()) == {"自然人", "法人", "个体工商户", "其他组织"}
    assert len(COMMITMENT_TYPES) == 7


# ---------------------------------------------------------------------- public text


def test_facts_severity_and_document_numbers_read_as_chinese() -> None:
    matter = default_catalog().matter("BJ-HRSS-0002")
    spec = next(s for s in matter.claims if s.key == "no_criminal_record")
    denied = Comparison(
        "no_criminal_record", "disagree", {"op": "==", "value": True}, False, "Recorded ..."
    )
    assert claim_fact(spec, denied) == "无犯罪记录：公安机关记录显示有犯罪记录，与承诺不符。"
    years = Comparison(
        "relevant_work_years", "disagree", {"op": ">=", "value": 2}, 1, "Recorded value 1"
    )
    facts = breach_facts([denied, years], matter)
    assert facts is not None and "相关工作经历年数：" in facts and "不少于2" in facts
    assert not ASCII_LETTERS.search(facts)  # not the English detail
    assert severity_text("general", 12) == "一般失信，公示12个月"
    assert document_number(HRSS, 2026, 273) == "京人社承诺〔2026〕000273号"


# ---------------------------------------------------------------------- records


def test_every_record_validates_against_the_served_schema(fw: FeedWorld) -> None:
    world = fw.world
    world.commit_kind("false")  # its breach expires
    corrected, _ = world.commit_kind("false")
    world.commit_kind("agree", "BJ-SAMR-0001")  # an organisation, of another department
    world.engine.run(DAY)
    world.new_engine(SAMR).run(DAY)  # needs a person: the food-safety rules are reviewed
    world.publish(DAY)  # proposed, then published (issue #14)
    breaches = {r.commitment_hash: r.id for r in world.engine.records.search_breaches(DAY).records}
    world.engine.annul(breaches["0x" + corrected.hex()], DAY, "mistaken identity")
    world.engine.expire(add_months(DAY, 13))
    bodies = served_bodies(fw)
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == record_schema()
    validator = jsonschema_rs.Draft202012Validator(record_schema())
    kinds = set()
    for body in bodies:
        errors = [e.message for e in validator.iter_errors(body)]
        assert errors == [], (body["kind"], errors)
        kinds.add(body["kind"])
    assert kinds == {
        "kept", "mismatch", "needs_manual", "proposed", "breach", "repair", "expiry",
        "correction", "withdrawal",
    }  # fmt: skip
    samr = [b for b in bodies if b["department_code"] == SAMR]
    assert samr and samr[0]["committer_category"] == "法人"
    assert samr[0]["accepting_unit"] == "北京市市场监督管理局"
    assert samr[0]["commitment_type"] == "审批替代型"
    # The schema refuses what the finding saw: an English code, a missing liability.
    breach = next(b for b in bodies if b["kind"] == "breach")
    assert not validator.is_valid({**breach, "fulfilment_status": "not_fulfilled"})
    assert not validator.is_valid({**breach, "committer_category": "natural_person"})
    assert not validator.is_valid({**breach, "liability": None})
    assert not validator.is_valid({**breach, "accepting_unit_code": "BJ-HRSS"})


def test_a_breach_record_carries_the_data_elements_with_chinese_values(fw: FeedWorld) -> None:
    bodies = served_bodies(fw)
    breach = next(b for b in bodies if b["kind"] == "breach")
    matter = default_catalog().matter(str(breach["matter_code"]))
    hrss = default_departments().department(HRSS)
    assert breach["version"] == 2
    assert breach["committer_category"] == "自然人"
    assert breach["commitment_type"] == "证明替代型"
    assert breach["fulfilment_status"] == "未履约" and breach["publication_scope"] == "公开"
    assert breach["liability"] == matter.notice.liability
    assert breach["accepting_unit"] == breach["determining_unit"] == hrss.name
    assert breach["accepting_unit_code"] == breach["determining_unit_code"] == hrss.credit_code
    assert breach["reason"] and matter.name in str(breach["reason"])
    # Valid until the breach's publication ends (the breach record's), not the deadline.
    with fw.world.store.engine.connect() as connection:
        [end] = connection.execute(select(breach_records.c.publication_end)).scalars().all()
    assert breach["valid_until"] == end == add_months(DAY, 12).isoformat()
    # Public text: Chinese facts from the comparison, Chinese severity.
    assert breach["unfulfilled"] == "无刑事犯罪记录：公安机关记录显示有犯罪记录，与承诺不符。"
    assert "一般失信，公示12个月" in str(breach["sanction"])
    assert "general" not in str(breach["sanction"])
    mismatch = next(b for b in bodies if b["kind"] == "mismatch")
    assert mismatch["fulfilment_status"] == "部分履约"
    assert not ASCII_LETTERS.search(str(mismatch["unfulfilled"]))
    kept = next(b for b in bodies if b["kind"] == "kept")
    assert kept["valid_until"] is None and kept["publication_scope"] == "有限公开"
    values = {FULFILMENT_ZH[k] for k in FULFILMENT_ZH} | {SCOPE_ZH[k] for k in SCOPE_ZH}
    for body in bodies:
        assert {body["fulfilment_status"], body["publication_scope"]} <= values


def test_a_version_1_record_reads_back_verifies_and_is_redacted_in_its_shape(
    fw: FeedWorld,
) -> None:
    follower = fw.follower()
    follower.step()
    key = SigningKey.generate("ed25519")
    [(_, body)] = [(s, b) for s, b in follower.feed.bodies() if json.loads(b)["kind"] == "kept"]
    record = FeedRecord.from_json_obj(json.loads(body))
    old = sign_record(
        replace(
            record,
            version=1,
            signature=None,
            details=replace(record.details, committer_category="natural_person"),
        ),
        key,
    )
    stored = json.loads(old.to_json())
    assert stored["version"] == 1 and stored["fulfilment_status"] == "fully_fulfilled"
    assert stored["department_name"] == "北京市人力资源和社会保障局"
    assert "determining_unit" not in stored and "liability" not in stored
    again = FeedRecord.from_json_obj(stored)
    assert again.version == 1 and again.facts == record.facts
    verify_record(again, key.public_key_b64())  # the old signature still verifies
    redacted = sign_record(
        replace(again, signature=None, details=replace(again.details, committer_name=None)), key
    )
    assert json.loads(redacted.to_json())["version"] == 1
    verify_record(FeedRecord.from_json_obj(json.loads(redacted.to_json())), key.public_key_b64())


def test_the_feed_check_still_agrees_with_the_chain(fw: FeedWorld) -> None:
    follower = fw.follower()
    follower.step()
    report = check_feed(follower.feed, fw.world.ledger, fw.world.catalog, fw.public_key)
    assert report.ok, report.problems


def test_the_version_1_records_of_the_store_vector_read_back_as_they_were_signed() -> None:
    vector = Path(__file__).parent.parent / "vectors" / "store-2026-12.json"
    stored = json.loads(vector.read_text(encoding="utf-8"))["feed"]["records"]
    assert stored
    for row in stored:
        body = json.loads(row["body"])
        record = FeedRecord.from_json_obj(body)
        assert record.version == 1
        # The bytes the department signed are rebuilt exactly: the signature still holds.
        assert record.body() == {k: v for k, v in body.items() if k != "signature"}
        verify_record(record, body["signature"]["public_key"])


def _outcome_facts(from_status: Status, to_status: Status) -> ChainFacts:
    return chain_facts(
        chain_id=31337,
        contract="0x" + "11" * 20,
        transaction="0x" + "22" * 32,
        block=7,
        log_index=0,
        block_timestamp=1_790_000_000,
        args={
            "commitment": "0x" + "33" * 32,
            "department": department_id(HRSS),
            "evidence": "0x" + "44" * 32,
            "from": int(from_status),
            "to": int(to_status),
        },
        departments=department_codes([HRSS]),
    )


def test_a_proposed_breach_is_a_record_nobody_but_the_platform_sees() -> None:
    """The contract's Proposed status (a breach told to the applicant, in its defence
    period) is a feed record of its own, not public; so is the correction of a proposal,
    which was never published. Without it the feed stopped at the first such event."""
    proposed = _outcome_facts(Status.MISMATCH, Status.PROPOSED)
    assert proposed.kind == "proposed" and proposed.publication_scope == "not_public"
    assert proposed.fulfilment_status == "undetermined"
    annulled = _outcome_facts(Status.PROPOSED, Status.CORRECTED)
    assert annulled.kind == "correction" and annulled.publication_scope == "not_public"
    published = _outcome_facts(Status.BREACHED, Status.CORRECTED)
    assert published.publication_scope == "public"  # a published breach's correction is
    assert _outcome_facts(Status.PROPOSED, Status.BREACHED).publication_scope == "public"
    assert "proposed" in record_schema()["properties"]["kind"]["enum"]


class _StoredBodies:
    def __init__(self, bodies: list[str]) -> None:
        self._bodies = bodies

    def bodies(self, scopes: object, since: str) -> Iterator[tuple[int, str]]:
        yield from enumerate(self._bodies, start=1)


def test_a_version_1_record_exports_with_chinese_values_too() -> None:
    from api.cli import feed as feed_cli

    vector = Path(__file__).parent.parent / "vectors" / "store-2026-12.json"
    bodies = [row["body"] for row in json.loads(vector.read_text("utf-8"))["feed"]["records"]]
    header = [*feed_cli.CSV_COLUMNS, *feed_cli.EVIDENCE_COLUMNS, "public_key", "signature"]
    target = io.StringIO()
    feed = _StoredBodies(bodies)
    shown = feed_cli.display_values("zh")
    count = feed_cli._write_export(feed, date(2000, 1, 1), "all", "csv", target, header, shown)  # type: ignore[arg-type]
    assert count == len(bodies)
    rows = list(csv.DictReader(io.StringIO(target.getvalue())))
    for row in rows:
        for column in ("kind", "committer_category", "commitment_type", "fulfilment_status",
                       "publication_scope", "personal_data_erased"):  # fmt: skip
            assert row[column] == "" or not ASCII_LETTERS.search(row[column]), (column, row)
        assert row["determining_unit"] == "北京市人力资源和社会保障局"  # v1's department_name
