"""Sample department data: planted outcomes, records per source, and the service around them."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from functools import cache

import httpx
import pytest

from api.demo import (
    LAST_PAID_MONTH,
    MAIN_SOURCES,
    MAX_BODY_BYTES,
    SOURCES,
    create_app,
    employer_uscc_for,
    planted,
    records,
    running,
    running_apart,
)
from api.service import PROBLEM_BASE
from ledger import make_resident_id, validate_id_number
from verifier import ClaimSpec, Subject, UnknownSourceError, default_catalog

TOKEN = "sample-service-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOOKUP = "/v1/sources/police_criminal/lookup"


@cache
def sample_ids() -> tuple[str, ...]:
    """10,000 distinct well-formed resident IDs."""
    return tuple(
        make_resident_id(region, date(1980, 1, 1) + timedelta(days=day * 37), sequence)
        for region in ("110101", "130102", "370102", "410105")
        for day in range(50)
        for sequence in range(0, 1000, 20)
    )


def ids_planted(kind: str) -> list[str]:
    return [number for number in sample_ids() if planted(number) == kind]


def month_index(text: str) -> int:
    return int(text[:4]) * 12 + int(text[5:]) - 1


def run_lengths(months: list[str]) -> list[int]:
    """Lengths of the runs of consecutive months, oldest first."""
    indexes = [month_index(m) for m in months]
    lengths: list[int] = []
    for position, index in enumerate(indexes):
        if position and index == indexes[position - 1] + 1:
            lengths[-1] += 1
        else:
            lengths.append(1)
    return lengths


# --- planted outcomes ----------------------------------------------------------------------


def test_planted_shares_are_about_3_1_2_percent() -> None:
    ids = sample_ids()
    assert len(set(ids)) == 10_000
    shares = Counter(planted(number) for number in ids)
    # Fixed IDs and a fixed key: deterministic, so these bounds (about 5 sigma) cannot flake.
    assert 215 <= shares["mismatch"] <= 385
    assert 50 <= shares["false"] <= 150
    assert 130 <= shares["missing"] <= 270
    assert shares["agree"] == 10_000 - shares["mismatch"] - shares["false"] - shares["missing"]


def test_planted_and_records_are_deterministic_and_fixed_by_the_id() -> None:
    # Pinned, so a changed derivation (and so changed sample outcomes) is noticed.
    pinned = {kind: ids_planted(kind)[0] for kind in ("agree", "mismatch", "false", "missing")}
    assert pinned == {
        "agree": "110101198001010002",
        "mismatch": "110101198001012008",
        "false": "110101198003159601",
        "missing": "110101198001011005",
    }
    for number in list(pinned.values()) + list(sample_ids()[:200]):
        subject = Subject("resident_id", number)
        for source in SOURCES:
            assert records(subject, source) == records(Subject("resident_id", number), source)
    employers = {employer_uscc_for(number) for number in sample_ids()[:200]}
    assert len(employers) == 200


def test_mismatch_has_a_14_month_gap_inside_the_last_84_months() -> None:
    last = month_index(LAST_PAID_MONTH)
    for number in ids_planted("mismatch"):
        record = records(Subject("resident_id", number), "hrss_social_insurance")
        assert record is not None
        months = record["social_insurance_months"]
        assert isinstance(months, list)
        assert months == sorted(months)
        assert months[-1] == LAST_PAID_MONTH
        before, after = run_lengths(months)  # exactly one gap
        gap_start = month_index(months[before - 1]) + 1
        gap_end = month_index(months[before]) - 1
        assert gap_end - gap_start + 1 == 14
        assert last - 83 <= gap_start
        assert gap_end < last
        assert before < 84
        assert after < 84
        assert len(months) >= 84  # though 84 months were paid: a transfer could explain it


def test_agree_pays_84_or_more_consecutive_months_through_the_last_paid_month() -> None:
    for number in ids_planted("agree")[:500]:
        record = records(Subject("resident_id", number), "hrss_social_insurance")
        assert record is not None
        months = record["social_insurance_months"]
        assert isinstance(months, list)
        assert months[-1] == LAST_PAID_MONTH
        assert run_lengths(months) == [len(months)]
        assert len(months) >= 84


def _holds(spec: ClaimSpec, observed: object, number: str) -> bool:
    claimed = employer_uscc_for(number) if spec.value is None else spec.value
    if spec.type == "consecutive_months":
        assert isinstance(observed, list)
        observed = run_lengths(observed)[-1]
    if spec.op == "in":
        assert isinstance(claimed, list)
        return observed in claimed
    if spec.op == "==":
        return observed == claimed
    assert spec.op == ">="
    assert isinstance(observed, (int, float, str))
    assert isinstance(claimed, (int, str))
    return observed >= claimed  # type: ignore[operator]  # same type by the catalog


@pytest.mark.parametrize("kind", ["agree", "mismatch", "false", "missing"])
def test_each_matter_gets_the_planted_outcome_from_records_named_like_its_claims(
    kind: str,
) -> None:
    catalog = default_catalog()
    for number in ids_planted(kind)[:40]:
        subject = Subject("resident_id", number)
        for matter in catalog.matters:
            verdicts: list[bool | None] = []
            for spec in matter.claims:
                record = records(subject, spec.source)
                if record is None:
                    verdicts.append(None)
                    continue
                assert spec.source_field in record, (matter.code, spec.key)
                verdicts.append(_holds(spec, record[spec.source_field], number))
            if kind == "agree":
                assert verdicts == [True] * len(verdicts), matter.code
            elif kind == "missing":  # no record in the main sources, agreeing ones elsewhere
                assert verdicts[0] is None, matter.code
                for spec, verdict in zip(matter.claims, verdicts, strict=True):
                    assert verdict is (None if spec.source in MAIN_SOURCES else True), spec.key
            else:
                assert False in verdicts, matter.code
                assert None not in verdicts, matter.code


def test_false_is_a_criminal_record_and_missing_only_empties_the_main_sources() -> None:
    for number in ids_planted("false")[:20]:
        record = records(Subject("resident_id", number), "police_criminal")
        assert record == {"no_criminal_record": False}
    for number in ids_planted("missing")[:20]:
        subject = Subject("resident_id", number)
        assert {s for s in SOURCES if records(subject, s) is None} == MAIN_SOURCES


def test_agree_graduates_this_year_and_works_for_the_stated_employer() -> None:
    for number in ids_planted("agree")[:200]:
        degree = records(Subject("resident_id", number), "education_degrees")
        employment = records(Subject("resident_id", number), "employer_records")
        assert degree is not None
        assert employment is not None
        assert str(degree["graduation_date"]) >= "2026-01-01"
        assert employment["employer_uscc"] == employer_uscc_for(number)
        validate_id_number("uscc", employer_uscc_for(number))


def test_records_of_an_unknown_source_name_the_known_ones() -> None:
    with pytest.raises(UnknownSourceError, match="did you mean 'hrss_cards'"):
        records(Subject("resident_id", sample_ids()[0]), "hrss_card")


# --- the service ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """A client of the service running on loopback, as departments' clients reach it."""
    with running(create_app(TOKEN)) as url, httpx.Client(base_url=url) as http:
        yield http


def body(number: str, fields: list[str] | None = None) -> dict[str, object]:
    return {"id_type": "resident_id", "id_number": number, "fields": fields or ["x"]}


def test_service_answers_found_and_not_found(client: httpx.Client) -> None:
    agree, missing = ids_planted("agree")[0], ids_planted("missing")[0]
    answer = client.post(LOOKUP, json=body(agree, ["no_criminal_record", "x"]), headers=AUTH)
    assert answer.status_code == 200
    found = answer.json()
    assert (found["found"], found["fields"]) == (True, {"no_criminal_record": True})
    url = "/v1/sources/education_degrees/lookup"
    answer = client.post(url, json=body(missing, ["degree_level"]), headers=AUTH)
    assert {k: answer.json()[k] for k in ("found", "fields")} == {"found": False, "fields": {}}
    assert {"answered_at", "signature", "key_id"} <= set(answer.json())  # signed, found or not
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
def test_service_refuses_a_missing_or_wrong_token(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    answer = client.post(LOOKUP, json=body(sample_ids()[0]), headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    # Authentication comes first: strangers learn nothing of which sources exist.
    assert client.post("/v1/sources/x/lookup", json={}, headers=headers).status_code == 401


def test_service_unknown_source_is_404(client: httpx.Client) -> None:
    answer = client.post(
        "/v1/sources/land_registry/lookup", json=body(sample_ids()[0]), headers=AUTH
    )
    assert answer.status_code == 404


def test_service_bounds_the_body_declared_or_streamed(client: httpx.Client) -> None:
    huge = body(sample_ids()[0], ["x" * 60] * (MAX_BODY_BYTES // 60 + 10))
    assert client.post(LOOKUP, json=huge, headers=AUTH).status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b'{"id_type": "resident_id", "fields": ["x"], "id_number": "'
        for _ in range(MAX_BODY_BYTES // 1000 + 1):
            yield b"1" * 1000
        yield b'"}'

    streamed = client.post(LOOKUP, content=chunks(), headers=AUTH)
    assert streamed.status_code == 413
    small = client.post(LOOKUP, json=body(sample_ids()[0]), headers=AUTH)
    assert small.status_code == 200


def test_service_refuses_bodies_with_the_services_own_problems(client: httpx.Client) -> None:
    # The sample service runs the service's body limit, not a copy of it.
    huge = client.post(LOOKUP, content=b"1" * (MAX_BODY_BYTES + 1), headers=AUTH)
    assert huge.status_code == 413
    assert huge.headers["content-type"] == "application/problem+json"
    assert huge.json()["type"] == f"{PROBLEM_BASE}payload-too-large"
    assert huge.json()["max_bytes"] == MAX_BODY_BYTES


@pytest.mark.parametrize(
    "request_body",
    [
        {"id_type": "resident_id", "id_number": "11010119800101000x", "fields": ["x"]},
        {"id_type": "drivers_licence", "id_number": "110101198001010003", "fields": ["x"]},
        {"id_type": "resident_id", "id_number": "110101198001010003", "fields": "x"},
        {"id_type": "resident_id", "id_number": "110101198001010003", "fields": ["x"], "y": 1},
        {"id_type": "resident_id", "id_number": "110101198001010003", "fields": ["X-Y"]},
        {"id_type": "resident_id", "id_number": "110101198001010003", "fields": ["x"] * 33},
    ],
)
def test_service_rejects_bad_requests_without_echoing_the_id(
    client: httpx.Client, request_body: dict[str, object]
) -> None:
    answer = client.post(LOOKUP, json=request_body, headers=AUTH)
    assert answer.status_code == 422
    assert str(request_body["id_number"]) not in answer.text


def test_service_needs_a_token() -> None:
    with pytest.raises(ValueError, match="token"):
        create_app("")


def test_running_apart_serves_from_another_process_and_stops() -> None:
    subject = {"id_type": "resident_id", "id_number": sample_ids()[0]}
    body = {"subjects": [subject], "fields": ["has_criminal_record"]}
    with running_apart(TOKEN) as url:
        assert url.startswith("http://127.0.0.1:")
        batch = f"{url}/v1/sources/police_criminal/lookup-batch"
        assert httpx.post(batch, json=body, headers=AUTH).status_code == 200
        assert httpx.post(batch, json=body).status_code == 401
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


def test_running_serves_on_loopback_and_stops() -> None:
    with running(create_app(TOKEN)) as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
