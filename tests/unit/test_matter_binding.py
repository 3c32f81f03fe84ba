"""Matter binding at intake: a commitment names a notice version in force when it was
signed and states every required claim at least as strongly as the matter's condition
(issue 12, finding 1); a refusal names the problem and stores nothing."""

from __future__ import annotations

import json
import pickle
import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from support.cli import write_json
from support.deployment import Deployment
from support.service_world import assert_problem, open_service, post_signed, snapshot
from typer.testing import CliRunner

from api.cli import app
from api.demo import DEMO_MATTERS, sample_commitments
from ledger import (
    Checker,
    ClaimTerm,
    Commitment,
    Intake,
    InvalidDocumentError,
    MatterTerms,
    NewCommitment,
    SignedCommitment,
    SigningKey,
    Store,
    Vault,
    check_terms,
    hex32,
    sign_commitment,
)
from verifier import Catalog, Notice, default_catalog, load_catalog

KEY = SigningKey.generate("ed25519")
CATALOG = default_catalog()
TERMS = CATALOG.intake_terms()
POINTS = "BJ-HRSS-0001"
SIGNED_AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def commitment(matter_code: str = POINTS, *, seed: int = 41, **fields: Any) -> Commitment:
    """A sample commitment to `matter_code` built from the catalog, with `fields` replaced;
    its code's serial is `seed`, so seeds give distinct codes."""
    if matter_code in DEMO_MATTERS:  # the samples cycle through DEMO_MATTERS by default
        count = len(DEMO_MATTERS) + DEMO_MATTERS.index(matter_code)  # serial % 5: this one
        document = list(sample_commitments(count, seed=seed, start=SIGNED_AT))[-1]
    else:
        only = [matter_code]
        document = next(sample_commitments(1, seed=seed, start=SIGNED_AT, matters=only))
    assert document.matter_code == matter_code
    code = f"110105{SIGNED_AT:%Y%m%d}{seed:06d}"
    return Commitment.from_json_obj({**document.to_json_obj(), "code": code, **fields})


def with_claims(document: Commitment, **claims: tuple[str, object] | None) -> Commitment:
    """`document` with claims replaced (key=(op, value)), added, or left out (key=None)."""
    obj = document.to_json_obj()
    kept = {c["key"]: c for c in obj["claims"]}
    for key, claim in claims.items():
        if claim is None:
            kept.pop(key)
        else:
            kept[key] = {"key": key, "op": claim[0], "value": claim[1]}
    return Commitment.from_json_obj({**obj, "claims": list(kept.values())})


def refusal(document: Commitment, terms: dict[str, MatterTerms] = TERMS) -> str:
    checker = Checker(Vault(secrets.token_bytes(32)), terms)
    with pytest.raises(InvalidDocumentError) as caught:
        checker.check(sign_commitment(document, KEY))
    return str(caught.value)


# ---------------------------------------------------------------------- the cases


def test_a_weaker_social_insurance_claim_is_refused_naming_claim_and_condition() -> None:
    weaker = with_claims(commitment(), social_insurance_consecutive_months=(">=", 1))
    assert (
        "claim social_insurance_consecutive_months >= 1 is weaker than the matter's "
        "condition >= 84" in refusal(weaker)
    )


def test_leaving_out_no_criminal_record_is_refused() -> None:
    message = refusal(with_claims(commitment(), no_criminal_record=None))
    assert "required claim no_criminal_record is missing" in message
    assert "no_criminal_record == true" in message


def test_an_unknown_notice_hash_is_refused() -> None:
    message = refusal(commitment(notice_hash="0x" + "ab" * 32))
    assert f"is not a version of the notice of matter {POINTS}" in message


def test_another_matters_notice_is_refused() -> None:
    other = CATALOG.matter("BJ-HRSS-0002").notice_hash()
    assert "is not a version" in refusal(commitment(notice_hash=hex32(other)))


def test_a_notice_version_out_of_its_validity_is_refused() -> None:
    matter = CATALOG.matter(POINTS)
    retired = Notice(
        version=0,
        conditions="持有本市居住证。",
        liability="承诺内容不实的，撤销资格。",
        valid_from=date(2025, 1, 1),
        valid_to=date(2025, 12, 31),
    )
    catalog = CATALOG.model_copy(
        update={
            "matters": tuple(
                m.model_copy(update={"earlier_notices": (retired,)}) if m is matter else m
                for m in CATALOG.matters
            )
        }
    )
    old_hash = catalog.matter(POINTS).notices()[1][0]
    message = refusal(commitment(notice_hash=hex32(old_hash)), catalog.intake_terms())
    assert "version 0 of the notice" in message
    assert "in force from 2025-01-01 to 2025-12-31, not on 2026-11-02" in message


def test_validity_is_judged_on_the_beijing_date_of_signing() -> None:
    # The shipped notices are in force from 2026-01-01, a Beijing date: 16:00 UTC on
    # 31 December is already 1 January in Beijing, 15:59:59 is not.
    late = commitment(code="11000020251231000041", signed_at="2025-12-31T15:59:59Z", seed=42)
    assert "not on 2025-12-31 (Beijing date of signed_at)" in refusal(late)
    new_year = commitment(code="11000020251231000042", signed_at="2025-12-31T16:00:00Z")
    checker = Checker(Vault(secrets.token_bytes(32)), TERMS)
    assert isinstance(checker.check(sign_commitment(new_year, KEY)), NewCommitment)


def test_a_claim_the_matter_does_not_know_is_refused() -> None:
    message = refusal(with_claims(commitment(), owns_a_car=("==", True)))
    assert f"matter {POINTS} has no claim owns_a_car" in message


@pytest.mark.parametrize("matter", [m.code for m in CATALOG.matters])
def test_the_catalogs_own_commitments_are_accepted(matter: str) -> None:
    checker = Checker(Vault(secrets.token_bytes(32)), TERMS)
    document = commitment(matter)
    assert checker.check(sign_commitment(document, KEY)).hash == document.hash()


def test_a_stronger_claim_is_accepted() -> None:
    stronger = with_claims(commitment(), social_insurance_consecutive_months=("==", 120))
    checker = Checker(Vault(secrets.token_bytes(32)), TERMS)
    assert checker.check(sign_commitment(stronger, KEY)).hash == stronger.hash()


# ---------------------------------------------------------------------- implication rules

NUMBER = ClaimTerm("n", "number", ">=", 84)


def _claim_doc(op: str, value: object) -> Commitment:
    return with_claims(commitment(), social_insurance_consecutive_months=(op, value))


def _term(op: str, value: object, claim_type: str = "number") -> MatterTerms:
    base = TERMS[POINTS]
    term = ClaimTerm("social_insurance_consecutive_months", claim_type, op, value)
    rest = tuple(t for t in base.claims if t.key != term.key)
    return replace(base, claims=(*rest, term))


@pytest.mark.parametrize(
    ("spec", "claim", "holds"),
    [
        ((">=", 84), (">=", 84), True),
        ((">=", 84), (">", 84), True),
        ((">=", 84), ("==", 90), True),
        ((">=", 84), (">=", 83), False),
        ((">=", 84), ("==", 83), False),
        ((">=", 84), ("<=", 100), False),
        ((">=", 84), ("!=", 0), False),
        (("<=", 10), ("<=", 10), True),
        (("<=", 10), ("<", 10), True),
        (("<=", 10), ("==", 3), True),
        (("<=", 10), ("<", 11), False),
        ((">", 5), (">", 5), True),
        ((">", 5), (">=", 6), True),
        ((">", 5), ("==", 6), True),
        ((">", 5), (">=", 5), False),
        ((">", 5), ("==", 5), False),
        (("<", 5), ("<", 5), True),
        (("<", 5), ("<=", 4), True),
        (("<", 5), ("<=", 5), False),
        (("==", 0), ("==", 0), True),
        (("==", 0), ("==", 1), False),
        (("==", 0), ("<=", 0), False),
        (("!=", 3), ("!=", 3), True),
        (("!=", 3), ("==", 4), True),
        (("!=", 3), ("==", 3), False),
        (("!=", 3), ("!=", 4), False),
    ],
)
def test_numbers(spec: tuple[str, int], claim: tuple[str, int], holds: bool) -> None:
    terms = _term(*spec)
    document = _claim_doc(*claim)
    if holds:
        check_terms(document, terms)
    else:
        with pytest.raises(InvalidDocumentError, match="weaker than the matter's condition"):
            check_terms(document, terms)


@pytest.mark.parametrize(
    ("spec", "claim", "holds"),
    [
        (("in", ("a", "b", "c")), ("in", ["a", "b"]), True),
        (("in", ("a", "b", "c")), ("==", "b"), True),
        (("in", ("a", "b", "c")), ("in", ["a", "z"]), False),
        (("in", ("a", "b", "c")), ("==", "z"), False),
        (("in", ("a", "b", "c")), ("!=", "z"), False),
        ((">=", "2026-01-01"), (">=", "2026-06-01"), True),
        ((">=", "2026-01-01"), ("==", "2026-01-01"), True),
        ((">=", "2026-01-01"), (">=", "2025-12-31"), False),
        (("==", True), ("==", True), True),
        (("==", True), ("==", False), False),
    ],
)
def test_sets_dates_booleans(
    spec: tuple[str, object], claim: tuple[str, object], holds: bool
) -> None:
    claim_type = {tuple: "set", str: "date", bool: "boolean"}[type(spec[1])]
    terms = _term(*spec, claim_type=claim_type)
    document = _claim_doc(*claim)
    if holds:
        check_terms(document, terms)
    else:
        with pytest.raises(InvalidDocumentError, match="weaker than the matter's condition"):
            check_terms(document, terms)


@pytest.mark.parametrize(
    ("spec", "claim"),
    [
        ((">=", 84), (">=", "2026-01-01")),  # a date against a number
        (("==", True), ("==", 1)),  # 1 is not true
        (("==", 0), ("==", False)),  # false is not 0
        ((">=", "2026-01-01"), (">=", 20260101)),
        (("==", "x"), ("in", ["x"])),
    ],
)
def test_values_never_compare_across_types(
    spec: tuple[str, object], claim: tuple[str, object]
) -> None:
    with pytest.raises(InvalidDocumentError, match="does not compare"):
        check_terms(_claim_doc(*claim), _term(*spec))


def test_a_stated_value_needs_the_matters_op_and_type() -> None:
    graduate = commitment("BJ-HRSS-0003")
    terms = TERMS["BJ-HRSS-0003"]
    check_terms(graduate, terms)
    other_op = with_claims(graduate, employer_uscc=("!=", "911101051234567883"))
    with pytest.raises(InvalidDocumentError, match="must use op '=='"):
        check_terms(other_op, terms)
    as_number = with_claims(graduate, employer_uscc=("==", 7))
    with pytest.raises(InvalidDocumentError, match="employer_uscc must state a string"):
        check_terms(as_number, terms)


def test_an_optional_claim_may_be_left_out_but_not_stated_weaker() -> None:
    base = TERMS[POINTS]
    optional = tuple(
        replace(t, required=False) if t.key == "no_criminal_record" else t for t in base.claims
    )
    terms = replace(base, claims=optional)
    check_terms(with_claims(commitment(), no_criminal_record=None), terms)
    with pytest.raises(InvalidDocumentError, match="no_criminal_record == false is weaker"):
        check_terms(with_claims(commitment(), no_criminal_record=("==", False)), terms)


def test_another_department_is_refused() -> None:
    message = refusal(commitment(department="BJ-SAMR"))
    assert f"matter {POINTS} belongs to BJ-HRSS, not BJ-SAMR" in message


# ---------------------------------------------------------------------- the catalog


def test_every_condition_of_every_shipped_matter_is_checked() -> None:
    assert CATALOG.unmapped_conditions() == {}
    for matter in CATALOG.matters:
        assert matter.unmapped_conditions() == ()
    covered = {c.text: c for m in CATALOG.matters for c in m.conditions}
    assert covered["不超过法定退休年龄"].claims == ("below_retirement_age",)
    assert covered["年满18周岁"].claims == ("age_years",)
    assert covered["有确定的聘用单位"].claims == ("employer_uscc",)
    assert covered["取得毕业证和学位证"].claims == ("diploma_and_degree_held",)
    review = covered["有保证食品安全的规章制度"].task
    assert review is not None
    assert review.kind == "document_review"


def test_a_catalog_without_conditions_loads_but_is_not_fit_for_service(tmp_path: Path) -> None:
    hrss = Path(__file__).parents[2] / "verifier/matters/BJ-HRSS.json"
    raw = json.loads(hrss.read_text(encoding="utf-8"))
    raw.pop("department")  # one department's file, as a whole catalog
    for matter in raw["matters"]:
        matter.pop("conditions")
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    bare: Catalog = load_catalog(path)
    assert "不超过法定退休年龄" in bare.unmapped_conditions()[POINTS]
    with pytest.raises(InvalidDocumentError, match="no claim or task checks"):
        bare.check_conditions_mapped()


def test_terms_carry_every_notice_version_and_claim_and_pickle() -> None:
    terms = TERMS[POINTS]
    matter = CATALOG.matter(POINTS)
    assert terms.department == matter.department
    assert [n.hash for n in terms.notices] == [h for h, _ in matter.notices()]
    assert terms.notices[0].valid_from == date(2026, 1, 1)
    assert [t.key for t in terms.claims] == [s.key for s in matter.claims]
    assert pickle.loads(pickle.dumps(TERMS)) == TERMS  # intake's worker processes get them


# ---------------------------------------------------------------------- through intake


def test_the_worker_pool_binds_too_and_stores_nothing_refused(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    intake = Intake(store, Vault(secrets.token_bytes(32)), TERMS, workers=2)
    try:
        good = [commitment(seed=50 + i) for i in range(4)]
        bad = [
            with_claims(good[0], social_insurance_consecutive_months=(">=", 1)),
            with_claims(good[1], no_criminal_record=None),
        ]
        documents = [sign_commitment(d, KEY) for d in (*bad, *good[2:])] * 2
        results = intake.submit_many(documents)
    finally:
        intake.close()
    assert [type(r).__name__ for r in results[:4]] == [
        "InvalidDocumentError",
        "InvalidDocumentError",
        "Acknowledgement",
        "Acknowledgement",
    ]
    assert "social_insurance_consecutive_months >= 1 is weaker" in str(results[0])
    assert store.sealed(bad[0].hash()) is None
    assert store.sealed(bad[1].hash()) is None
    store.close()


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[Any]:
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


def test_http_refuses_with_invalid_document_naming_the_claim(world: Any) -> None:
    headers = world.auth()
    before = snapshot(world)
    weaker = with_claims(commitment(seed=61), social_insurance_consecutive_months=(">=", 1))
    answer = post_signed(world, sign_commitment(weaker, KEY), **headers)
    # The service's invalid-document problem (422, as for every document it refuses).
    detail = assert_problem(answer, 422, "invalid-document")["detail"]
    assert "claim social_insurance_consecutive_months >= 1 is weaker" in detail
    missing = with_claims(commitment(seed=62), no_criminal_record=None)
    answer = post_signed(world, sign_commitment(missing, KEY), **headers)
    assert "no_criminal_record" in assert_problem(answer, 422, "invalid-document")["detail"]
    assert snapshot(world) == before
    good: SignedCommitment = sign_commitment(commitment(seed=63), KEY)
    assert post_signed(world, good, **headers).status_code in (200, 201, 202)


def test_the_cli_submit_refuses_with_exit_2_and_stores_nothing(tmp_path: Path) -> None:
    runner = CliRunner()
    master_key = tmp_path / "master.key"
    made = runner.invoke(app, ["keys", "new", "--kind", "master", "--out", str(master_key)])
    assert made.exit_code == 0, made.output
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    weaker = with_claims(commitment(seed=71), social_insurance_consecutive_months=(">=", 1))
    files = [
        write_json(tmp_path / "weaker.json", sign_commitment(weaker, KEY).to_json_obj()),
        write_json(
            tmp_path / "foreign-notice.json",
            sign_commitment(commitment(seed=72, notice_hash="0x" + "cd" * 32), KEY).to_json_obj(),
        ),
    ]
    env = {"COLUMNS": "1000", "COMMITLEDGER_MASTER_KEY": None, "COMMITLEDGER_STORE": None}
    args = ["submit", *map(str, files), "--store", url, "--master-key-file", str(master_key)]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2, result.output
    assert "claim social_insurance_consecutive_months >= 1 is weaker" in result.stderr
    assert "is not a version of the notice" in result.stderr
    status = runner.invoke(app, ["status", "--store", url, "--json"], env=env)
    assert json.loads(status.stdout)["pending"] == 0


def test_commitledger_new_writes_every_claim_intake_requires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    applicant = tmp_path / "applicant.json"
    person = {
        "kind": "person",
        "name": "王伟",
        "id_type": "resident_id",
        "id_number": "110101199005171238",
    }
    applicant.write_text(json.dumps({"applicant": person}, ensure_ascii=False))
    checker = Checker(Vault(secrets.token_bytes(32)), TERMS)
    for matter in CATALOG.matters:
        args = ["new", "--matter", matter.code, "--applicant", str(applicant)]
        args += ["--out", f"{matter.code}.json", "--claim", "employer_uscc=911101051234567883"]
        if matter.department == "BJ-SAMR":
            args += ["--kind", "organisation", "--id-type", "uscc"]
            args += ["--id-number", "911101051234567883"]
        stated = [
            spec.key for spec in matter.claims if spec.value is None and spec.key != "employer_uscc"
        ]
        assert stated == []  # the only claim an applicant states is the employer
        if "employer_uscc" not in {spec.key for spec in matter.claims}:
            args = args[: args.index("--claim")] + args[args.index("--claim") + 2 :]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        document = Commitment.from_json_obj(
            json.loads(Path(f"{matter.code}.json").read_text(encoding="utf-8"))
        )
        assert {c.key for c in document.claims} == {s.key for s in matter.claims}
        assert checker.check(sign_commitment(document, KEY)).hash == document.hash()
