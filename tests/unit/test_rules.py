"""Claim rules: every type and op, the 84-month boundary and 14-month gap, garbage undecidable."""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import canonical_bytes
from verifier import BOOKING_LAG_MONTHS, Comparison, compare, normalise_text

AS_OF = date(2026, 5, 15)  # verification date; April 2026 is the latest month expected
MONTHS_KEY = "social_insurance_consecutive_months"


def months(first: str, last: str) -> list[str]:
    """Every month from `first` to `last` inclusive, as "YYYY-MM"."""
    year, month = int(first[:4]), int(first[5:])
    out: list[str] = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def full_width(text: str) -> str:
    """`text` with every printable ASCII character swapped for its full-width form."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def check(claim_type: str, op: str, claimed: object, observed: object) -> Comparison:
    return compare("claim", claim_type, op, claimed, observed, as_of=AS_OF)


def months_claim(observed: object, op: str = ">=", claimed: object = 84) -> Comparison:
    return compare(MONTHS_KEY, "consecutive_months", op, claimed, observed, as_of=AS_OF)


# --- numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "observed", "verdict"),
    [
        (">=", 84, "agree"),
        (">=", 83, "disagree"),
        ("<=", 84, "agree"),
        ("<=", 85, "disagree"),
        ("==", 84, "agree"),
        ("==", 84.0, "agree"),
        ("==", 84.5, "disagree"),
        ("!=", 85, "agree"),
        ("!=", 84, "disagree"),
        (">", 85, "agree"),
        (">", 84, "disagree"),
        ("<", 83, "agree"),
        ("<", 84, "disagree"),
        (">=", Decimal("84.00"), "agree"),  # PostgreSQL NUMERIC columns arrive as Decimal
    ],
)
def test_number_ops(op: str, observed: object, verdict: str) -> None:
    result = check("number", op, 84, observed)
    assert result.verdict == verdict
    assert result.claimed == {"op": op, "value": 84}


def test_number_result_names_the_values() -> None:
    result = check("number", ">=", 30, 25.5)
    assert result.observed == 25.5
    assert result.detail == "Recorded value 25.5 does not satisfy the claim >= 30."


@pytest.mark.parametrize(
    ("observed", "problem"),
    [
        ("84", "text, not a number"),
        (True, "a boolean, not a number"),
        ([84], "a list, not a number"),
        ({"value": 84}, "an object, not a number"),
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        (Decimal("NaN"), "not a finite number"),
    ],
)
def test_number_garbage_is_undecidable(observed: object, problem: str) -> None:
    result = check("number", ">=", 2, observed)
    assert result.verdict == "undecidable"
    assert problem in result.detail


def test_a_malformed_claimed_value_is_undecidable_too() -> None:
    result = check("number", ">=", "two", 5)
    assert result.verdict == "undecidable"
    assert "claimed value is text" in result.detail


# --- dates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "observed", "verdict"),
    [
        (">=", "2026-01-01", "agree"),
        (">=", "2025-12-31", "disagree"),
        ("<=", "2026-01-01", "agree"),
        ("<=", "2026-01-02", "disagree"),
        ("==", date(2026, 1, 1), "agree"),
        ("!=", "2026-01-01", "disagree"),
        (">", "2026-01-02", "agree"),
        (">", "2026-01-01", "disagree"),
        ("<", "2025-12-31", "agree"),
        ("<", "2026-01-01", "disagree"),
    ],
)
def test_date_ops(op: str, observed: object, verdict: str) -> None:
    assert check("date", op, "2026-01-01", observed).verdict == verdict


def test_date_observed_is_reported_as_iso_text() -> None:
    result = check("date", ">=", date(2026, 1, 1), date(2026, 6, 30))
    assert (result.verdict, result.observed) == ("agree", "2026-06-30")
    assert result.detail == "Recorded date 2026-06-30 satisfies the claim >= 2026-01-01."


@pytest.mark.parametrize(
    ("observed", "problem"),
    [
        ("2026-02-30", "not a real calendar date"),
        ("2026-13-01", "not a real calendar date"),
        ("20260630", "not in 'YYYY-MM-DD' form"),
        ("2026-W26-2", "not in 'YYYY-MM-DD' form"),  # fromisoformat alone would take it
        (full_width("2026-06-30"), "not in 'YYYY-MM-DD' form"),  # full-width digits
        ("30/06/2026", "not in 'YYYY-MM-DD' form"),
        (20260630, "a number, not a 'YYYY-MM-DD' date"),
        (datetime(2026, 6, 30, 23, 30), "a timestamp"),
    ],
)
def test_date_garbage_is_undecidable(observed: object, problem: str) -> None:
    result = check("date", ">=", "2026-01-01", observed)
    assert result.verdict == "undecidable"
    assert problem in result.detail


# --- strings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claimed", "observed"),
    [
        # full-width digits and letters
        ("91110105MA01ABCD3X", full_width("91110105MA01ABCD3X")),
        ("91110105MA01ABCD3X", "  91110105ma01abcd3x\t"),  # case, outer whitespace
        ("Beijing Roast  Duck Co.", "beijing\u3000roast duck   co."),  # ideographic space
        ("Straße", "STRASSE"),  # case folding, not just lower-casing
        ("北京烤鸭有限公司", " 北京烤鸭有限公司 "),
    ],
)
def test_strings_match_after_normalisation(claimed: str, observed: str) -> None:
    assert check("string", "==", claimed, observed).verdict == "agree"
    assert check("string", "!=", claimed, observed).verdict == "disagree"


def test_different_strings_disagree_and_the_detail_quotes_neither() -> None:
    result = check("string", "==", "张伟", "张为")
    assert result.verdict == "disagree"
    assert "张" not in result.detail
    assert result.observed == "张为"  # the evidence keeps the value as recorded
    assert check("string", "!=", "张伟", "张为").verdict == "agree"


def test_normalise_text() -> None:
    assert full_width("A1") == "\uff21\uff11"  # the helper really changes the text
    assert normalise_text(full_width("  ABC") + "\u3000" + full_width("123  def ")) == "abc 123 def"


@pytest.mark.parametrize(
    ("op", "observed", "problem"),
    [
        ("==", 91110105, "a number, not text"),
        ("==", "   ", "recorded text is empty"),
        (">=", "abc", "op '>=' is not defined for string claims"),
    ],
)
def test_string_garbage_is_undecidable(op: str, observed: object, problem: str) -> None:
    result = check("string", op, "abc", observed)
    assert result.verdict == "undecidable"
    assert problem in result.detail


# --- booleans --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "claimed", "observed", "verdict"),
    [
        ("==", True, True, "agree"),
        ("==", True, False, "disagree"),
        ("!=", True, False, "agree"),
        ("!=", False, False, "disagree"),
    ],
)
def test_boolean_ops(op: str, claimed: bool, observed: bool, verdict: str) -> None:
    assert check("boolean", op, claimed, observed).verdict == verdict


def test_boolean_detail_uses_json_words() -> None:
    result = check("boolean", "==", True, False)
    assert result.detail == "Recorded value false does not satisfy the claim == true."


@pytest.mark.parametrize(
    ("op", "observed"), [("==", 1), ("==", "true"), ("==", "是"), (">=", True)]
)
def test_boolean_garbage_is_undecidable(op: str, observed: object) -> None:
    assert check("boolean", op, True, observed).verdict == "undecidable"


# --- sets ------------------------------------------------------------------------------

DEGREES = ["bachelor", "master", "doctorate"]


@pytest.mark.parametrize(
    ("observed", "verdict"),
    [
        ("master", "agree"),
        ("  Master ", "agree"),  # normalised like strings
        (full_width("doctorate"), "agree"),
        ("associate", "disagree"),
        (["bachelor", "master"], "agree"),  # every element must be allowed
        (["bachelor", "associate"], "disagree"),
    ],
)
def test_set_membership(observed: object, verdict: str) -> None:
    assert check("set", "in", DEGREES, observed).verdict == verdict


def test_set_detail_counts_without_quoting() -> None:
    result = check("set", "in", DEGREES, ["bachelor", "associate", "diploma"])
    assert result.detail == "2 of the 3 recorded values are not among the 3 allowed values."


@pytest.mark.parametrize(
    ("op", "claimed", "observed", "problem"),
    [
        ("in", DEGREES, [], "empty list"),
        ("in", DEGREES, 3, "a number, not text"),
        ("in", DEGREES, ["master", None], "null, not text"),
        ("in", [], "master", "not a non-empty list"),
        ("in", "master", "master", "not a non-empty list"),
        ("==", DEGREES, "master", "op '==' is not defined for set claims"),
    ],
)
def test_set_garbage_is_undecidable(
    op: str, claimed: object, observed: object, problem: str
) -> None:
    result = check("set", op, claimed, observed)
    assert result.verdict == "undecidable"
    assert problem in result.detail


# --- consecutive months ----------------------------------------------------------------


def test_exactly_84_months_agree() -> None:
    result = months_claim(months("2019-05", "2026-04"))
    assert result.verdict == "agree"
    assert result.observed == {
        "consecutive_months": 84,
        "through": "2026-04",
        "records_from": "2019-05",
    }
    assert result.gaps == ()


def test_83_months_disagree() -> None:
    result = months_claim(months("2019-06", "2026-04"))
    assert result.verdict == "disagree"
    assert result.observed == {
        "consecutive_months": 83,
        "through": "2026-04",
        "records_from": "2019-06",
    }


def test_a_14_month_gap_breaks_the_run_and_is_reported() -> None:
    # DOMAIN scenario 1: ten years of records with March 2021 to April 2022 missing.
    gap = months("2021-03", "2022-04")
    assert len(gap) == 14
    records = [m for m in months("2016-01", "2026-04") if m not in gap]
    result = months_claim(records)
    assert result.verdict == "disagree"
    assert result.gaps == (("2021-03", "2022-04"),)
    assert result.observed == {
        "consecutive_months": 48,
        "through": "2026-04",
        "records_from": "2016-01",
    }
    assert result.detail == (
        "A run of 48 consecutive paid months through 2026-04 does not satisfy the claim >= 84; "
        "the records since 2016-01 show 1 gap: 2021-03 to 2022-04."
    )


def test_an_old_gap_is_reported_even_when_the_claim_holds() -> None:
    records = [m for m in months("2010-01", "2026-04") if m not in ("2012-07", "2012-08")]
    result = months_claim(records)
    assert result.verdict == "agree"
    assert result.gaps == (("2012-07", "2012-08"),)


def test_unpaid_months_count_as_gaps() -> None:
    records: list[object] = [{"month": m, "paid": True} for m in months("2018-01", "2026-04")]
    for index, record in enumerate(records):
        assert isinstance(record, dict)
        if record["month"] in ("2020-02", "2020-03", "2023-11"):
            records[index] = {**record, "paid": False}
    result = months_claim(records)
    assert result.gaps == (("2020-02", "2020-03"), ("2023-11", "2023-11"))
    assert result.verdict == "disagree"
    assert result.observed == {
        "consecutive_months": 29,  # 2023-12 to 2026-04
        "through": "2026-04",
        "records_from": "2018-01",
    }


def test_an_unpaid_latest_month_ends_the_run_at_zero() -> None:
    records: list[object] = [*months("2015-01", "2026-03"), {"month": "2026-04", "paid": False}]
    result = months_claim(records)
    assert result.verdict == "disagree"
    assert result.gaps == (("2026-04", "2026-04"),)
    assert result.observed == {
        "consecutive_months": 0,
        "through": "2026-04",
        "records_from": "2015-01",
    }


def test_duplicates_and_order_do_not_matter() -> None:
    records = months("2019-05", "2026-04")
    shuffled = records + records[:10] + [{"month": records[3], "paid": False}]
    random.Random(7).shuffle(shuffled)
    result = months_claim(shuffled)
    # A month recorded both paid and unpaid (say, two employers) is a paid month.
    assert result.verdict == "agree"
    assert result.observed == months_claim(records).observed


def test_months_after_as_of_are_ignored() -> None:
    records = [*months("2019-05", "2026-04"), "2026-09", "2027-01"]
    result = months_claim(records)
    assert result.verdict == "agree"
    assert result.observed == {
        "consecutive_months": 84,
        "through": "2026-04",
        "records_from": "2019-05",
    }


@pytest.mark.parametrize(
    ("latest", "verdict"),
    [
        ("2026-05", "agree"),  # the current month is already booked
        ("2026-04", "agree"),
        ("2026-03", "agree"),  # two months behind: still fresh
        ("2026-02", "undecidable"),  # three months behind: stale
    ],
)
def test_stale_data_are_undecidable(latest: str, verdict: str) -> None:
    assert BOOKING_LAG_MONTHS == 2
    result = months_claim(months("2010-01", latest))
    assert result.verdict == verdict
    if verdict == "undecidable":
        assert "the latest monthly record is 2026-02" in result.detail
        assert "stale" in result.detail


@pytest.mark.parametrize(
    ("op", "claimed", "verdict"),
    [
        (">=", 84, "agree"),
        ("<=", 84, "agree"),
        ("==", 84, "agree"),
        ("!=", 84, "disagree"),
        (">", 83, "agree"),
        ("<", 84, "disagree"),
    ],
)
def test_consecutive_month_ops(op: str, claimed: int, verdict: str) -> None:
    assert months_claim(months("2019-05", "2026-04"), op, claimed).verdict == verdict


@pytest.mark.parametrize(
    ("observed", "problem"),
    [
        (84, "a number, not a list of monthly records"),
        ("2019-05", "text, not a list of monthly records"),
        ([], "empty list of months"),
        (["2023-13"], "month 2023-13, which does not exist"),
        (["2023-00"], "month 2023-00, which does not exist"),
        (["2023-1"], "not in 'YYYY-MM' form"),
        (["2023/01"], "not in 'YYYY-MM' form"),
        ([full_width("2023-01")], "not in 'YYYY-MM' form"),
        (["2026-04", 202603], "monthly record 2 of 2 is a number"),
        ([{"month": "2026-04"}], "no true/false 'paid' field"),
        ([{"month": "2026-04", "paid": "yes"}], "no true/false 'paid' field"),
        ([{"month": 202604, "paid": True}], "a number where a 'YYYY-MM' month is expected"),
        ([{"paid": True}], "null where a 'YYYY-MM' month is expected"),
        (["2026-09"], "no monthly record is dated on or before 2026-05"),
    ],
)
def test_month_garbage_is_undecidable(observed: object, problem: str) -> None:
    result = months_claim(observed)
    assert result.verdict == "undecidable"
    assert problem in result.detail
    assert result.gaps == ()


@pytest.mark.parametrize(
    ("op", "claimed", "problem"),
    [
        (">=", 84.5, "not a whole number"),
        (">=", -1, "not a whole number"),
        (">=", "84", "claimed value is text"),
        ("in", 84, "op 'in' is not defined for consecutive_months claims"),
    ],
)
def test_a_malformed_month_claim_is_undecidable(op: str, claimed: object, problem: str) -> None:
    result = months_claim(months("2019-05", "2026-04"), op, claimed)
    assert result.verdict == "undecidable"
    assert problem in result.detail


# --- every type ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "claim_type", ["number", "date", "string", "boolean", "set", "consecutive_months"]
)
def test_no_record_is_undecidable(claim_type: str) -> None:
    result = check(claim_type, "==", 1, None)
    assert result == Comparison(
        key="claim",
        verdict="undecidable",
        claimed={"op": "==", "value": 1},
        observed=None,
        detail="Cannot decide: no record was found.",
    )


def test_an_unknown_claim_type_is_undecidable() -> None:
    result = check("colour", "==", "red", "red")
    assert result.verdict == "undecidable"
    assert "claim type 'colour' is not one the rules know" in result.detail


def test_to_json_obj() -> None:
    gap = months("2021-03", "2022-04")
    records = [m for m in months("2016-01", "2026-04") if m not in gap]
    obj = months_claim(records).to_json_obj()
    assert obj == {
        "key": MONTHS_KEY,
        "verdict": "disagree",
        "claimed": {"op": ">=", "value": 84},
        "observed": {"consecutive_months": 48, "through": "2026-04", "records_from": "2016-01"},
        "detail": obj["detail"],
        "gaps": [["2021-03", "2022-04"]],
    }
    canonical_bytes(obj)


def test_garbage_is_kept_as_hashable_evidence() -> None:
    looped: list[object] = [1]
    looped.append(looped)
    observed = [float("nan"), 2**60, Decimal("1.5"), b"raw", {1: date(2026, 1, 2)}, looped]
    result = check("number", ">=", 1, observed)
    assert result.verdict == "undecidable"
    obj = result.to_json_obj()
    assert obj["observed"][:5] == ["nan", str(2**60), "1.5", "<bytes>", {"1": "2026-01-02"}]  # type: ignore[index]
    canonical_bytes(obj)


# --- properties ------------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["2026-04", "2023-13", "2026-01-01", "2026-02-30", "master", ""])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(
            st.sampled_from(["month", "paid", "value", "x"]) | st.text(max_size=4),
            inner,
            max_size=4,
        )
    ),
    max_leaves=30,
)
CLAIMS = st.sampled_from(
    [
        ("number", ">=", 84),
        ("date", "<", "2026-01-01"),
        ("string", "==", "abc"),
        ("boolean", "==", True),
        ("set", "in", DEGREES),
        ("consecutive_months", ">=", 84),
        ("consecutive_months", "in", 84),
        ("nonsense", "~", None),
    ]
)


@pytest.mark.property
@settings(max_examples=500, deadline=None)
@given(claim=CLAIMS, observed=JSON_VALUES, as_of=st.dates())
def test_compare_never_raises_and_its_evidence_always_hashes(
    claim: tuple[str, str, object], observed: object, as_of: date
) -> None:
    claim_type, op, claimed = claim
    result = compare("claim", claim_type, op, claimed, observed, as_of=as_of)
    assert isinstance(result, Comparison)
    assert result.verdict in ("agree", "disagree", "undecidable")
    assert result.detail
    canonical_bytes(result.to_json_obj())


MONTH_RECORDS = st.lists(
    st.integers(min_value=0, max_value=150).map(lambda i: f"{2014 + i // 12:04d}-{i % 12 + 1:02d}")
    | st.builds(
        lambda i, paid: {"month": f"{2014 + i // 12:04d}-{i % 12 + 1:02d}", "paid": paid},
        st.integers(min_value=0, max_value=150),
        st.booleans(),
    ),
    min_size=1,
    max_size=160,
)


@pytest.mark.property
@settings(max_examples=300, deadline=None)
@given(records=MONTH_RECORDS, seed=st.integers())
def test_month_order_never_changes_the_result(records: list[object], seed: int) -> None:
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    result, again = months_claim(records), months_claim(shuffled)
    assert (again.verdict, again.detail, again.gaps) == (result.verdict, result.detail, result.gaps)
    if result.verdict != "undecidable":
        assert again.observed == result.observed  # undecidable keeps the raw records
        run = result.observed["consecutive_months"]  # type: ignore[index]
        assert result.verdict == ("agree" if run >= 84 else "disagree")
        # The run never overlaps a gap: the last gap ends before it starts.
        if result.gaps and run:
            assert result.gaps[-1][1] < result.observed["through"]  # type: ignore[index]
