"""The matter catalog (verifier/matters) and the sample commitments built from it."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from api.demo import DEMO_MATTERS, sample_commitments
from ledger import Commitment, InvalidDocumentError, keccak256
from verifier import MATTERS_DIR, Catalog, Matter, default_catalog, load_catalog

CJK = re.compile("[\u4e00-\u9fff]")

# (words in the English name, words in the Chinese name, department) of each matter
EXPECTED_MATTERS = [
    ("points-based household registration", "积分落户", "BJ-HRSS"),
    ("work permit for a foreigner", "外国人来华工作许可", "BJ-HRSS"),
    ("graduate", "毕业生", "BJ-HRSS"),
    ("social-security card application", "社会保障卡申领", "BJ-HRSS"),
    ("food business licence", "食品经营许可", "BJ-SAMR"),
    ("social-security card replacement", "社会保障卡补领", "BJ-HRSS"),
    ("social-security card cancellation", "社会保障卡注销", "BJ-HRSS"),
    ("labour dispatch", "劳务派遣", "BJ-HRSS"),
    ("teacher qualification", "教师资格", "BJ-EDU"),
    ("construction enterprise qualification", "建筑业企业资质", "BJ-HOUSING"),
    ("physician practice", "医师执业", "BJ-HEALTH"),
]


@pytest.fixture
def catalog() -> Catalog:
    return default_catalog()


def raw_catalog() -> dict[str, Any]:
    """The shipped departments' files as one catalog file (`load_catalog`'s form)."""
    matters: list[Any] = []
    for path in sorted(MATTERS_DIR.glob("*.json")):
        matters += json.loads(path.read_text(encoding="utf-8"))["matters"]
    return {"catalog_version": 1, "region": "110000", "matters": matters}


def with_conditions(matter: Matter, conditions: str) -> Matter:
    return matter.model_copy(
        update={"notice": matter.notice.model_copy(update={"conditions": conditions})}
    )


# ---------------------------------------------------------------------- the catalog


def test_catalog_has_twenty_matters_of_five_departments_hrss_the_most(catalog: Catalog) -> None:
    assert catalog.region == "110000"
    assert catalog.catalog_version >= 1
    assert len(catalog.matters) >= 20
    assert len({m.code for m in catalog.matters}) == len(catalog.matters)
    per_department = Counter(m.department for m in catalog.matters)
    assert len(per_department) >= 5
    [(largest, _)] = per_department.most_common(1)
    assert largest == "BJ-HRSS"
    assert per_department["BJ-HRSS"] > max(n for d, n in per_department.items() if d != largest)


def test_every_matter_is_written_out_whole(catalog: Catalog) -> None:
    for matter in catalog.matters:
        assert matter.code.startswith(matter.department + "-"), matter.code
        assert CJK.search(matter.notice.conditions) and CJK.search(matter.notice.liability)
        assert matter.legal_basis.startswith("《"), matter.code
        assert matter.verification_window_days > 0 and matter.rectification_window_days > 0
        assert matter.conditions and matter.unmapped_conditions() == ()
        for spec in matter.claims:
            assert spec.source and CJK.search(spec.description), (matter.code, spec.key)
        for condition in matter.conditions:
            assert condition.claims or condition.task is not None


def test_the_department_of_each_matter(catalog: Catalog) -> None:
    by_matter = catalog.matter_departments()
    assert by_matter == {m.code: m.department for m in catalog.matters}
    assert all(catalog.department_of(code) == d for code, d in by_matter.items())
    assert catalog.departments() == sorted(set(by_matter.values()))
    assert len(catalog.departments()) < len(by_matter)  # a department has several matters
    with pytest.raises(InvalidDocumentError, match="unknown matter 'BJ-NONE'"):
        catalog.department_of("BJ-NONE")


@pytest.mark.parametrize(("english", "chinese", "department"), EXPECTED_MATTERS)
def test_catalog_has_the_matter(
    catalog: Catalog, english: str, chinese: str, department: str
) -> None:
    found = [m for m in catalog.matters if english in m.name_en.lower()]
    assert len(found) == 1, [m.name_en for m in catalog.matters]
    matter = found[0]
    assert chinese in matter.name
    assert matter.department == department
    assert matter.code.startswith(department)
    assert matter.claims
    assert matter.notice.conditions
    assert matter.notice.liability
    assert matter.legal_basis
    assert matter.verification_window_days > 0


def test_each_matter_is_found_by_code(catalog: Catalog) -> None:
    for matter in catalog.matters:
        assert catalog.matter(matter.code) is matter


def test_unknown_matter_names_the_known_ones(catalog: Catalog) -> None:
    with pytest.raises(InvalidDocumentError) as caught:
        catalog.matter("BJ-HRSS-9999")
    message = str(caught.value)
    assert "BJ-HRSS-9999" in message
    for matter in catalog.matters:
        assert matter.code in message


def test_default_catalog_is_cached(catalog: Catalog) -> None:
    assert default_catalog() is catalog


def test_load_catalog_refuses_an_invalid_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(InvalidDocumentError, match=r"catalog broken\.json is invalid"):
        load_catalog(broken)
    data = raw_catalog()
    data["matters"][0]["unexpected"] = True
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InvalidDocumentError, match="unexpected"):
        load_catalog(extra)


# ---------------------------------------------------------------------- notice hashes


def test_notice_hash_is_keccak_of_the_canonical_notice(catalog: Catalog) -> None:
    raw = {m["code"]: m for m in raw_catalog()["matters"]}
    for matter in catalog.matters:
        notice = raw[matter.code]["notice"]
        # What the applicant was shown; the validity dates are the catalog's, not hashed.
        text = {key: notice[key] for key in ("version", "conditions", "liability")}
        shown = {"matter_code": matter.code, **text}
        assert matter.notice_hash() == keccak256(rfc8785.dumps(shown))


def test_notice_hash_is_stable(tmp_path: Path, catalog: Catalog) -> None:
    edited = tmp_path / "all.json"
    edited.write_text(json.dumps(raw_catalog(), ensure_ascii=False), encoding="utf-8")
    reloaded = load_catalog(edited)
    for matter in catalog.matters:
        assert len(matter.notice_hash()) == 32
        assert reloaded.matter(matter.code).notice_hash() == matter.notice_hash()


def test_notice_hashes_differ_between_matters(catalog: Catalog) -> None:
    assert len({m.notice_hash() for m in catalog.matters}) == len(catalog.matters)


def test_notice_hash_changes_when_the_notice_changes(catalog: Catalog) -> None:
    matter = catalog.matters[0]
    original = matter.notice_hash()
    assert with_conditions(matter, matter.notice.conditions + "。").notice_hash() != original
    assert with_conditions(matter, matter.notice.conditions).notice_hash() == original
    liability = matter.notice.model_copy(update={"liability": matter.notice.liability + " "})
    assert matter.model_copy(update={"notice": liability}).notice_hash() != original
    version = matter.notice.model_copy(update={"version": matter.notice.version + 1})
    assert matter.model_copy(update={"notice": version}).notice_hash() != original
    assert matter.model_copy(update={"code": matter.code + "X"}).notice_hash() != original


def test_notice_hash_changes_when_the_file_changes(tmp_path: Path, catalog: Catalog) -> None:
    data = raw_catalog()
    data["matters"][1]["notice"]["conditions"] += " (revised)"
    edited = tmp_path / "beijing.json"
    edited.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    changed = load_catalog(edited)
    for index, matter in enumerate(catalog.matters):
        same = changed.matter(matter.code).notice_hash() == matter.notice_hash()
        assert same == (index != 1)


def test_notice_hash_ignores_the_matter_fields_outside_the_notice(catalog: Catalog) -> None:
    matter = catalog.matters[0]
    renamed = matter.model_copy(update={"name_en": "renamed", "severity": "minor"})
    assert renamed.notice_hash() == matter.notice_hash()


# ---------------------------------------------------------------------- sample commitments


def test_samples_are_valid_documents_that_round_trip(catalog: Catalog) -> None:
    for document in sample_commitments(25):
        text = json.dumps(document.to_json_obj(), ensure_ascii=False)
        again = Commitment.from_json_obj(json.loads(text))
        assert again == document
        assert again.hash() == document.hash()
        assert again.canonical() == document.canonical()


def test_samples_have_distinct_salts_and_hashes() -> None:
    documents = list(sample_commitments(60))
    assert len({d.salt for d in documents}) == 60
    assert len({d.hash() for d in documents}) == 60
    assert len({d.code for d in documents}) == 60


@pytest.mark.parametrize("every", [False, True])
def test_samples_follow_their_matter(catalog: Catalog, every: bool) -> None:
    codes = [m.code for m in catalog.matters] if every else None
    documents = list(sample_commitments(len(catalog.matters) * 2, matters=codes))
    assert {d.matter_code for d in documents} == set(codes or DEMO_MATTERS)
    for document in documents:
        matter = catalog.matter(document.matter_code)
        assert document.department == matter.department
        assert document.notice_hash == "0x" + matter.notice_hash().hex()
        assert [c.key for c in document.claims] == [s.key for s in matter.claims]
        assert [c.op for c in document.claims] == [s.op for s in matter.claims]
        for claim, spec in zip(document.claims, matter.claims, strict=True):
            if spec.value is not None:
                assert claim.value == spec.value


def test_samples_of_one_department(catalog: Catalog) -> None:
    documents = list(sample_commitments(12, department="BJ-SAMR"))
    assert {d.department for d in documents} == {"BJ-SAMR"}
    assert all(d.applicant.kind == "organisation" for d in documents)
    hrss = list(sample_commitments(12, department="BJ-HRSS"))
    assert {d.department for d in hrss} == {"BJ-HRSS"}


def test_samples_are_reproducible_except_the_salt() -> None:
    first = list(sample_commitments(10, seed=11))
    second = list(sample_commitments(10, seed=11))
    assert [d.applicant for d in first] == [d.applicant for d in second]
    assert [d.model_copy(update={"salt": "0x" + "00" * 32}) for d in first] == [
        d.model_copy(update={"salt": "0x" + "00" * 32}) for d in second
    ]
    assert all(a.salt != b.salt for a, b in zip(first, second, strict=True))
