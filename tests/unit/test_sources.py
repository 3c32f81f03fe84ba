"""Data sources: HTTP against the sample service on loopback, SQL on SQLite, CSV files."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, create_engine, insert

from api.demo import Faults, create_app, planted, records, running
from ledger import make_resident_id
from verifier import (
    CsvSource,
    DataSource,
    HttpSource,
    SourceError,
    SourceGarbage,
    SourceRegistry,
    SourceUnavailable,
    SqlSource,
    Subject,
    UnknownSourceError,
    sql_source_table,
)

TOKEN = "department-token-for-tests"
INSURANCE = "hrss_social_insurance"
INSURANCE_FIELDS = ("social_insurance_months", "insured_in_beijing")
# Retries quickly, for the failure tests.
FAST: dict[str, Any] = {"timeout": 2.0, "retries": 2, "backoff": 0.01}


def subject_planted(kind: str, skip: int = 0) -> Subject:
    """The first sample resident whose planted outcome is `kind` (after `skip` of them)."""
    for sequence in range(100_000):
        birth = date(1990, 3, 7) + timedelta(days=sequence // 1000)
        number = make_resident_id("110105", birth, sequence % 1000)
        if planted(number) == kind:
            if skip == 0:
                return Subject("resident_id", number)
            skip -= 1
    raise AssertionError(f"no sample subject planted {kind!r}")


AGREE = subject_planted("agree")
MISSING = subject_planted("missing")


@dataclass
class Service:
    url: str
    faults: Faults


@pytest.fixture(scope="module")
def shared_service() -> Iterator[Service]:
    faults = Faults()
    with running(create_app(TOKEN, faults)) as url:
        yield Service(url, faults)


@pytest.fixture
def service(shared_service: Service) -> Service:
    shared_service.faults.reset()
    return shared_service


def http_lookup(
    url: str,
    subject: Subject,
    fields: Sequence[str] = INSURANCE_FIELDS,
    *,
    source: str = INSURANCE,
    token: str = TOKEN,
    **options: Any,
) -> Mapping[str, object] | None:
    async def go() -> Mapping[str, object] | None:
        http = HttpSource(source, url, token, **options)
        try:
            return await http.lookup(subject, fields)
        finally:
            await http.aclose()

    return asyncio.run(go())


def expected(subject: Subject, source: str, fields: Sequence[str]) -> dict[str, object]:
    record = records(subject, source)
    assert record is not None
    return {field: record[field] for field in fields if field in record}


# --- HTTP ----------------------------------------------------------------------------------


def test_http_found_returns_only_the_requested_fields_of_the_record(service: Service) -> None:
    got = http_lookup(service.url, AGREE, ["insured_in_beijing", "social_insurance_months", "x"])
    assert got == expected(AGREE, INSURANCE, INSURANCE_FIELDS)
    assert set(got or {}) == {"insured_in_beijing", "social_insurance_months"}


def test_http_no_record_is_none(service: Service) -> None:
    assert http_lookup(service.url, MISSING) is None
    assert service.faults.attempts[INSURANCE] == 1


def test_http_wrong_token_fails_at_once_naming_the_source(service: Service) -> None:
    with pytest.raises(SourceUnavailable, match=r"'hrss_social_insurance'.*HTTP 401.*token"):
        http_lookup(service.url, AGREE, token="wrong-token", **FAST)


@pytest.mark.parametrize("status", [400, 403, 422])
def test_http_client_errors_are_not_retried(service: Service, status: int) -> None:
    service.faults.fail(INSURANCE, status=status)
    with pytest.raises(SourceUnavailable, match=f"HTTP {status}"):
        http_lookup(service.url, AGREE, **FAST)
    assert service.faults.attempts[INSURANCE] == 1


def test_http_timeout_is_retried_then_unavailable(service: Service) -> None:
    service.faults.slow(INSURANCE, 0.6)
    with pytest.raises(SourceUnavailable, match=r"after 3 attempts \(last: ReadTimeout\)"):
        http_lookup(service.url, AGREE, timeout=0.15, retries=2, backoff=0.01)
    assert service.faults.attempts[INSURANCE] == 3


def test_http_500_then_ok_is_a_retried_success(service: Service) -> None:
    service.faults.fail(INSURANCE, times=1)
    assert http_lookup(service.url, AGREE, **FAST) == expected(AGREE, INSURANCE, INSURANCE_FIELDS)
    assert service.faults.attempts[INSURANCE] == 2


def test_http_429_is_retried(service: Service) -> None:
    service.faults.fail(INSURANCE, times=2, status=429)
    assert http_lookup(service.url, AGREE, **FAST) == expected(AGREE, INSURANCE, INSURANCE_FIELDS)
    assert service.faults.attempts[INSURANCE] == 3


def test_http_500_every_time_is_unavailable_after_the_retries(service: Service) -> None:
    service.faults.fail(INSURANCE)
    with pytest.raises(SourceUnavailable, match=r"after 4 attempts \(last: HTTP 500\)"):
        http_lookup(service.url, AGREE, timeout=2.0, retries=3, backoff=0.01)
    assert service.faults.attempts[INSURANCE] == 4


def test_http_connection_refused_is_unavailable() -> None:
    with socket.socket() as sock:  # a port just freed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(SourceUnavailable, match=r"after 2 attempts \(last: ConnectError\)"):
        http_lookup(url, AGREE, timeout=1.0, retries=1, backoff=0.0)


def test_http_unknown_source_at_the_service_fails_at_once(service: Service) -> None:
    with pytest.raises(SourceUnavailable, match=r"'land_registry'.*HTTP 404.*base URL"):
        http_lookup(service.url, AGREE, source="land_registry", **FAST)


GARBAGE = [
    b'{"found": tru',
    b"",
    b"<html>bad gateway</html>",
    b"\xff\xfe\x00",
    b"[]",
    b"null",
    b'{"found": "yes", "fields": {}}',
    b'{"found": 1, "fields": {}}',
    b'{"found": true}',
    b'{"found": true, "fields": []}',
    b'{"found": true, "fields": null}',
    b'{"found": true, "fields": {}, "more": 1}',
    b'{"found": false, "fields": {"insured_in_beijing": true}}',
]


@pytest.mark.parametrize("body", GARBAGE)
def test_http_malformed_answer_is_garbage_and_not_retried(service: Service, body: bytes) -> None:
    service.faults.corrupt(INSURANCE, body)
    with pytest.raises(SourceGarbage, match=r"'hrss_social_insurance': malformed response"):
        http_lookup(service.url, AGREE, **FAST)
    assert service.faults.attempts[INSURANCE] == 1


def test_http_concurrency_is_bounded_by_the_semaphore(service: Service) -> None:
    source = "police_residence"
    service.faults.slow(source, 0.1)  # long enough for every allowed request to overlap

    async def go() -> list[Mapping[str, object] | None]:
        # An injected client with the default pool of 100: only the semaphore bounds it.
        async with httpx.AsyncClient() as client:
            http = HttpSource(source, service.url, TOKEN, max_concurrency=3, client=client)
            subjects = [subject_planted("agree", skip) for skip in range(12)]
            fields = ["holds_residence_permit"]
            return await asyncio.gather(*(http.lookup(s, fields) for s in subjects))

    answers = asyncio.run(go())
    assert answers == [{"holds_residence_permit": True}] * 12
    assert service.faults.attempts[source] == 12
    assert service.faults.max_in_flight[source] == 3


def test_http_no_subject_data_in_errors_or_logs(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = AGREE.id_number
    errors: list[SourceError] = []
    service.faults.fail("police_criminal")
    service.faults.corrupt("police_residence", f'{{"found": "{secret}"}}'.encode())
    service.faults.slow("hrss_cards", 0.4)
    cases = [
        (INSURANCE, "wrong-token", FAST),
        ("police_criminal", TOKEN, FAST),
        ("police_residence", TOKEN, FAST),
        ("hrss_cards", TOKEN, {"timeout": 0.1, "retries": 1, "backoff": 0.0}),
    ]
    for source, token, options in cases:
        with pytest.raises(SourceError) as caught:
            http_lookup(service.url, AGREE, ["x"], source=source, token=token, **options)
        errors.append(caught.value)
    assert len(errors) == 4
    for error in errors:
        assert secret not in str(error)
        assert secret not in repr(error)
        assert error.__cause__ is None
    assert any(r.name == "verifier.sources" for r in caplog.records)  # retries were logged
    for record in caplog.records:
        assert secret not in record.getMessage()
    assert secret not in repr(AGREE)


def test_http_aclose_leaves_an_injected_client_open(service: Service) -> None:
    async def go() -> bool:
        async with httpx.AsyncClient() as client:
            http = HttpSource(INSURANCE, service.url, TOKEN, client=client)
            await http.aclose()
            assert await http.lookup(AGREE, ["insured_in_beijing"]) is not None
            return client.is_closed

    assert asyncio.run(go()) is False


def test_http_aclose_closes_its_own_client(service: Service) -> None:
    async def go() -> None:
        http = HttpSource(INSURANCE, service.url, TOKEN)
        await http.aclose()
        await http.lookup(AGREE, ["insured_in_beijing"])

    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(go())


@pytest.mark.parametrize(
    ("name", "token", "options"),
    [
        ("../admin", TOKEN, {}),
        ("Hrss", TOKEN, {}),
        (INSURANCE, "", {}),
        (INSURANCE, TOKEN, {"timeout": 0}),
        (INSURANCE, TOKEN, {"retries": -1}),
        (INSURANCE, TOKEN, {"backoff": -0.1}),
        (INSURANCE, TOKEN, {"max_concurrency": 0}),
    ],
)
def test_http_bad_configuration_is_refused(name: str, token: str, options: Any) -> None:
    with pytest.raises(ValueError, match=r"source|timeout|token"):
        HttpSource(name, "http://127.0.0.1:1", token, **options)


# --- SQL -----------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'department.db'}"
    engine = create_engine(url)
    table = sql_source_table("insurance_records", MetaData())
    table.metadata.create_all(engine)
    rows = [
        {"id_type": s.id_type, "id_number": s.id_number, "field": f, "value_json": json.dumps(v)}
        for s in (AGREE, subject_planted("mismatch"))
        for f, v in (records(s, INSURANCE) or {}).items()
    ]
    with engine.begin() as connection:
        connection.execute(insert(table), rows)
    engine.dispose()
    return url


def sql_lookup(source: SqlSource, subject: Subject, fields: Sequence[str]) -> Any:
    async def go() -> Mapping[str, object] | None:
        try:
            return await source.lookup(subject, fields)
        finally:
            await source.aclose()

    return asyncio.run(go())


def test_sql_found_returns_the_requested_fields(sqlite_url: str) -> None:
    source = SqlSource(INSURANCE, sqlite_url, "insurance_records")
    got = sql_lookup(source, AGREE, ["insured_in_beijing", "social_insurance_months", "x"])
    assert got == expected(AGREE, INSURANCE, INSURANCE_FIELDS)


def test_sql_subject_without_rows_is_none_with_rows_but_no_such_field_is_empty(
    sqlite_url: str,
) -> None:
    source = SqlSource(INSURANCE, sqlite_url, "insurance_records")
    assert sql_lookup(source, MISSING, INSURANCE_FIELDS) is None
    source = SqlSource(INSURANCE, sqlite_url, "insurance_records")
    assert sql_lookup(source, AGREE, ["holds_residence_permit"]) == {}


def test_sql_with_a_given_engine_and_table_answers_concurrent_lookups(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    source = SqlSource(INSURANCE, engine, sql_source_table("insurance_records"))

    async def go() -> list[Mapping[str, object] | None]:
        subjects = [AGREE, MISSING, subject_planted("mismatch")] * 4
        return await asyncio.gather(*(source.lookup(s, ["insured_in_beijing"]) for s in subjects))

    answers = asyncio.run(go())
    engine.dispose()
    assert answers == [{"insured_in_beijing": True}, None, {"insured_in_beijing": True}] * 4


def test_sql_value_that_is_not_json_is_garbage(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    table = sql_source_table("insurance_records")
    with engine.begin() as connection:
        connection.execute(
            table.update()
            .where(table.c.field == "insured_in_beijing")
            .values(value_json="{not json")
        )
    source = SqlSource(INSURANCE, engine, table)
    with pytest.raises(SourceGarbage, match=r"'hrss_social_insurance'.*'insured_in_beijing'"):
        sql_lookup(source, AGREE, ["insured_in_beijing"])
    engine.dispose()


def test_sql_failure_is_unavailable_without_the_subject(sqlite_url: str) -> None:
    source = SqlSource(INSURANCE, sqlite_url, "no_such_table")
    with pytest.raises(SourceUnavailable, match=r"'no_such_table'.*OperationalError") as caught:
        sql_lookup(source, AGREE, ["insured_in_beijing"])
    assert AGREE.id_number not in str(caught.value)
    assert caught.value.__suppress_context__
    # The engine it built hides bound parameters even in the suppressed database error.
    assert AGREE.id_number not in str(caught.value.__context__)


# --- CSV -----------------------------------------------------------------------------------

GOOD_CSV = (
    "id_type,id_number,months,insured,area,cards,level,code,digits,graduated,note\n"
    f'resident_id,{AGREE.id_number},"[""2026-09"",""2026-10""]",true,35.5,0,bachelor,'
    '911101050000000012,"""0123""",2026-07-01,\n'
    "passport,E12345678,[],false,-2e1,3,master,91110105MA01X2Y3Z4,,2026-01-01,null\n"
)


def csv_lookup(path: Path, subject: Subject, fields: Sequence[str]) -> Any:
    return asyncio.run(CsvSource("employer_records", path).lookup(subject, fields))


def test_csv_values_are_json_when_they_look_like_json(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(GOOD_CSV, encoding="utf-8-sig")  # with a BOM, as spreadsheets write it
    fields = ["months", "insured", "area", "cards", "level", "code", "digits", "graduated"]
    assert csv_lookup(path, AGREE, [*fields, "note", "absent"]) == {
        "months": ["2026-09", "2026-10"],
        "insured": True,
        "area": 35.5,
        "cards": 0,
        "level": "bachelor",
        "code": "911101050000000012",  # beyond 2**53: a code, not a number
        "digits": "0123",
        "graduated": "2026-07-01",
    }
    other = Subject("passport", "E12345678")
    assert csv_lookup(path, other, ["months", "area", "note", "digits"]) == {
        "months": [],
        "area": -20.0,
        "note": None,
    }


def test_csv_unknown_subject_is_none_and_results_are_copies(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(GOOD_CSV, encoding="utf-8")
    source = CsvSource("employer_records", path)
    assert asyncio.run(source.lookup(MISSING, ["months"])) is None
    first = asyncio.run(source.lookup(AGREE, ["months"]))
    assert isinstance(first, dict)
    first["months"].append("2027-01")
    assert asyncio.run(source.lookup(AGREE, ["months"])) == {"months": ["2026-09", "2026-10"]}


MALFORMED_CSV = {
    "empty file": ("", "line 1: the header"),
    "wrong header": ("id,number,x\nresident_id,{id},1\n", "line 1: the header"),
    "no fields": ("id_type,id_number\nresident_id,{id}\n", "line 1: the header"),
    "repeated field": ("id_type,id_number,a,a\n", "repeated"),
    "reserved field": ("id_type,id_number,id_number\n", "reserved"),
    "ragged row": ("id_type,id_number,a\nresident_id,{id},1,2\n", "line 2: 4 cells"),
    "empty id": ("id_type,id_number,a\nresident_id,,1\n", "line 2: id_type and id_number"),
    "repeated subject": (
        "id_type,id_number,a\nresident_id,{id},1\nresident_id,{id},2\n",
        "line 3: repeats the subject of line 2",
    ),
    "broken list": ('id_type,id_number,a\nresident_id,{id},"[1, 2"\n', "line 2: field 'a'"),
    "NaN in a list": ("id_type,id_number,a\nresident_id,{id},[NaN]\n", "line 2: field 'a'"),
    "broken quoting": ('id_type,id_number,a\nresident_id,{id},"1"x\n', "not valid CSV"),
}


@pytest.mark.parametrize("case", MALFORMED_CSV)
def test_csv_malformed_file_is_garbage_at_load(tmp_path: Path, case: str) -> None:
    text, message = MALFORMED_CSV[case]
    path = tmp_path / "export.csv"
    path.write_text(text.format(id=AGREE.id_number), encoding="utf-8")
    with pytest.raises(SourceGarbage, match="'employer_records'") as caught:
        CsvSource("employer_records", path)
    assert message in str(caught.value)
    assert AGREE.id_number not in str(caught.value)


def test_csv_not_utf8_is_garbage_and_a_missing_file_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("id_type,id_number,名称\n".encode("gb18030"))
    with pytest.raises(SourceGarbage, match="not UTF-8"):
        CsvSource("employer_records", path)
    with pytest.raises(SourceUnavailable, match="cannot read"):
        CsvSource("employer_records", tmp_path / "absent.csv")


# --- registry and subject ------------------------------------------------------------------


def test_registry_finds_by_name_and_suggests_for_unknown_names(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(GOOD_CSV, encoding="utf-8")
    csv_source = CsvSource("employer_records", path)
    http_source = HttpSource(INSURANCE, "http://127.0.0.1:1", TOKEN)
    sql_source = SqlSource("hrss_cards", "sqlite://", "cards")
    registry = SourceRegistry([csv_source, http_source])
    registry.add(sql_source)
    assert registry.get("hrss_cards") is sql_source
    assert registry.names == ("employer_records", "hrss_cards", INSURANCE)
    assert INSURANCE in registry
    assert len(registry) == 3
    assert all(isinstance(s, DataSource) for s in (csv_source, http_source, sql_source))
    with pytest.raises(UnknownSourceError, match="did you mean 'hrss_cards'") as caught:
        registry.get("hrss_card")
    assert isinstance(caught.value, LookupError)
    with pytest.raises(ValueError, match="already registered"):
        registry.add(HttpSource(INSURANCE, "http://127.0.0.1:1", TOKEN))
    asyncio.run(http_source.aclose())


def test_subject_repr_hides_the_id_number() -> None:
    assert AGREE.id_number not in repr(AGREE)
    assert "resident_id" in repr(AGREE)
