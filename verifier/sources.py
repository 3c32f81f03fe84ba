"""Department data behind one protocol: HTTP, SQL and CSV sources, and a registry by name.

Over 400 lines: the DataSource protocol with its three implementations (HTTP, SQL, CSV)
and the registry that names them; each implementation is small and they share the errors and
the subject's shape.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import json
import logging
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, ConfigDict, JsonValue, StrictBool, ValidationError
from sqlalchemy import Column, MetaData, String, Table, Text, case, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from verifier.catalog import Catalog
from verifier.errors import SourceError, SourceGarbage, SourceUnavailable, UnknownSourceError

__all__ = [
    "CsvSource",
    "DataSource",
    "HttpSource",
    "SourceError",
    "SourceGarbage",
    "SourceRegistry",
    "SourceUnavailable",
    "SqlSource",
    "Subject",
    "UnknownSourceError",
    "catalog_sources",
    "http_sources",
    "sql_source_table",
]

_log = logging.getLogger(__name__)

_SOURCE_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_JSON_SAFE_INT = 2**53 - 1


# --- the subject and the errors ------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """Whose record is looked up. Personal data: never logged, never in an error message."""

    id_type: str
    id_number: str

    def __repr__(self) -> str:
        # A stray f"{subject!r}" in a log line must not leak the ID number.
        return f"Subject(id_type={self.id_type!r}, id_number=<hidden>)"


def _checked_name(name: str) -> str:
    # The name goes into a URL path and into messages: keep it a plain identifier.
    if not _SOURCE_NAME.fullmatch(name):
        raise ValueError(f"a source name is a snake_case identifier, got {name!r}")
    return name


# --- the protocol --------------------------------------------------------------------------


@runtime_checkable
class DataSource(Protocol):
    """A department's data, looked up by subject."""

    name: str

    async def lookup(self, subject: Subject, fields: Sequence[str]) -> Mapping[str, object] | None:
        """The requested fields the subject's record holds; None if there is no record.

        Raises SourceUnavailable or SourceGarbage.
        """
        ...


async def lookup_many(
    source: DataSource, subjects: Sequence[Subject], fields: Sequence[str]
) -> list[Mapping[str, object] | None]:
    """Many subjects' records: in batches where the source offers them, else one by one."""
    batched = getattr(source, "lookup_many", None)
    if batched is not None:
        result: list[Mapping[str, object] | None] = await batched(subjects, fields)
        return result
    return list(await asyncio.gather(*(source.lookup(s, fields) for s in subjects)))


# --- HTTP ----------------------------------------------------------------------------------


class _LookupResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    found: StrictBool
    fields: dict[str, JsonValue]


class _BatchResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    results: list[_LookupResponse]


class HttpSource:
    """A department's lookup API: ``POST {base_url}/v1/sources/{name}/lookup``.

    The ID travels in the JSON body, never in the URL, so it cannot land in access logs.
    Timeouts, connection errors, 429 and 5xx are retried ``retries`` times with jittered
    exponential backoff; other refusals fail at once. At most ``max_concurrency`` requests
    are in flight; the rest wait their turn instead of timing out in the connection pool.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        token: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_concurrency: int = 16,
        batch_size: int = 250,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not token:
            raise ValueError(f"data source {name!r} needs a bearer token")
        if timeout <= 0 or retries < 0 or backoff < 0 or max_concurrency < 1:
            raise ValueError(
                "timeout must be > 0, retries >= 0, backoff >= 0, max_concurrency >= 1"
            )
        self.name = _checked_name(name)
        self.url = f"{base_url.rstrip('/')}/v1/sources/{name}/lookup"
        self.batch_url = f"{self.url}-batch"
        self.batch_size = batch_size
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout
        self._attempts = retries + 1
        self._backoff = backoff
        self._slots = asyncio.Semaphore(max_concurrency)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            limits=httpx.Limits(max_connections=max_concurrency)
        )

    async def lookup(self, subject: Subject, fields: Sequence[str]) -> Mapping[str, object] | None:
        """The requested fields of the subject's record, None if the source has none."""
        body: dict[str, object] = {
            "id_type": subject.id_type,
            "id_number": subject.id_number,
            "fields": list(fields),
        }
        return self._fields(await self._post(self.url, body), fields)

    async def lookup_many(
        self, subjects: Sequence[Subject], fields: Sequence[str]
    ) -> list[Mapping[str, object] | None]:
        """Many subjects' records in requests of `batch_size`: one round trip per batch."""
        parts = [
            subjects[start : start + self.batch_size]
            for start in range(0, len(subjects), self.batch_size)
        ]
        answers = await asyncio.gather(*(self._lookup_batch(part, fields) for part in parts))
        return [record for answer in answers for record in answer]

    async def _lookup_batch(
        self, subjects: Sequence[Subject], fields: Sequence[str]
    ) -> list[Mapping[str, object] | None]:
        body: dict[str, object] = {
            "subjects": [{"id_type": s.id_type, "id_number": s.id_number} for s in subjects],
            "fields": list(fields),
        }
        response = await self._post(self.batch_url, body)
        try:
            # Parsed and checked in one pass (in pydantic's Rust core): the monthly records
            # of 250 subjects took several times longer through json.loads and back.
            results = _BatchResponse.model_validate_json(response.content).results
        except ValueError as exc:
            raise SourceGarbage(self.name, f"malformed response: {_shape_error(exc)}") from None
        if len(results) != len(subjects):
            raise SourceGarbage(self.name, "malformed response: not one result per subject")
        return [self._record(answer, fields) for answer in results]

    async def _post(self, url: str, body: dict[str, object]) -> httpx.Response:
        reason = ""
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._delay(attempt))
            try:
                # The slot is held per attempt, not across backoff, so waiting callers proceed.
                async with self._slots:
                    response = await self._client.post(
                        url, json=body, headers=self._headers, timeout=self._timeout
                    )
            except httpx.TransportError as exc:
                reason = type(exc).__name__
            else:
                status = response.status_code
                if status == httpx.codes.OK:
                    return response
                if status != httpx.codes.TOO_MANY_REQUESTS and status < 500:
                    raise self._refusal(status)
                reason = f"HTTP {status}"
            _log.warning(
                "data source %s: attempt %d of %d failed (%s)",
                self.name,
                attempt + 1,
                self._attempts,
                reason,
            )
        raise SourceUnavailable(
            self.name, f"no answer after {self._attempts} attempts (last: {reason}); try later"
        )

    async def aclose(self) -> None:
        """Close the HTTP client if this source created it."""
        if self._owns_client:
            await self._client.aclose()

    def _delay(self, attempt: int) -> float:
        # Jitter spreads retries so that many lookups failing together do not return together.
        jitter = random.uniform(0.5, 1.0)  # noqa: S311 - spreading retries, not a secret
        return float(self._backoff * 2 ** (attempt - 1) * jitter)

    def _refusal(self, status: int) -> SourceUnavailable:
        if status in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
            detail = f"refused the credentials (HTTP {status}); check the token configured for it"
        elif status == httpx.codes.NOT_FOUND:
            detail = f"not served at {self.url} (HTTP 404); check the base URL and source name"
        else:
            detail = f"rejected the request (HTTP {status}); not retried"
        return SourceUnavailable(self.name, detail)

    def _fields(self, response: httpx.Response, fields: Sequence[str]) -> dict[str, object] | None:
        try:
            answer = _LookupResponse.model_validate_json(response.content)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, ValidationError
            raise SourceGarbage(self.name, f"malformed response: {_shape_error(exc)}") from None
        return self._record(answer, fields)

    def _record(self, answer: _LookupResponse, fields: Sequence[str]) -> dict[str, object] | None:
        if not answer.found:
            if answer.fields:
                raise SourceGarbage(self.name, "malformed response: fields without a record")
            return None
        return {field: answer.fields[field] for field in fields if field in answer.fields}


def _shape_error(exc: ValueError) -> str:
    # Only where and what, never the input: a broken answer may echo the subject back.
    if isinstance(exc, ValidationError):
        error = exc.errors(include_url=False, include_input=False)[0]
        if error["type"] == "json_invalid":
            return "not JSON"
        where = ".".join(str(part) for part in error["loc"]) or "body"
        return f"{where}: {error['msg']}; expected {{found: bool, fields: object}}"
    return "not JSON"


# --- SQL -----------------------------------------------------------------------------------


def sql_source_table(name: str, metadata: MetaData | None = None) -> Table:
    """The table a SqlSource reads: one row per (subject, field), the value as JSON text."""
    return Table(
        name,
        metadata if metadata is not None else MetaData(),
        Column("id_type", String(40), primary_key=True),
        Column("id_number", String(40), primary_key=True),
        Column("field", String(100), primary_key=True),
        Column("value_json", Text, nullable=False),
    )


class SqlSource:
    """A department table read with SQLAlchemy Core, the blocking query in a worker thread."""

    def __init__(self, name: str, engine_or_url: Engine | str, table: str | Table) -> None:
        self.name = _checked_name(name)
        self._owns_engine = isinstance(engine_or_url, str)
        # hide_parameters: SQLAlchemy otherwise prints bound values (the ID) in its errors.
        self._engine = (
            create_engine(engine_or_url, hide_parameters=True)
            if isinstance(engine_or_url, str)
            else engine_or_url
        )
        self.table = table if isinstance(table, Table) else sql_source_table(table)

    async def lookup(self, subject: Subject, fields: Sequence[str]) -> Mapping[str, object] | None:
        """The requested fields of the subject's rows, None if the subject has no rows."""
        rows = await asyncio.to_thread(self._query, subject, fields)
        if not rows:
            return None
        record: dict[str, object] = {}
        for field, value_json in rows:
            if value_json is None:  # a field of the subject's that was not requested
                continue
            try:
                record[field] = json.loads(value_json)
            except ValueError:
                raise SourceGarbage(self.name, f"value of field {field!r} is not JSON") from None
        return record

    async def aclose(self) -> None:
        """Dispose of the engine if this source created it."""
        if self._owns_engine:
            await asyncio.to_thread(self._engine.dispose)

    def _query(self, subject: Subject, fields: Sequence[str]) -> list[tuple[str, str | None]]:
        table = self.table
        # Every field name of the subject (so "no rows" means no record) but only the
        # requested values, in one round trip.
        wanted = case((table.c.field.in_(list(fields)), table.c.value_json), else_=None)
        query = select(table.c.field, wanted).where(
            table.c.id_type == subject.id_type, table.c.id_number == subject.id_number
        )
        try:
            with self._engine.connect() as connection:
                return [(row[0], row[1]) for row in connection.execute(query)]
        except SQLAlchemyError as exc:
            # The exception's text carries the statement and possibly its parameters.
            raise SourceUnavailable(
                self.name,
                f"query on table {table.name!r} failed ({type(exc).__name__}); "
                "check the database URL and that the table exists",
            ) from None


# --- CSV -----------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_JSON_LITERALS: dict[str, object] = {"true": True, "false": False, "null": None}


class CsvSource:
    """A CSV export ``id_type,id_number,<field>...``, loaded once into an index.

    A cell is JSON if it looks like JSON: a number, true, false, null, or text starting
    with ``[``, ``{`` or ``"`` (so digits meant as text are written as the JSON string
    ``"123"``, in CSV ``\"\"\"123\"\"\"``). Integers beyond 2**53 - 1 stay strings:
    such digits are codes, not quantities. Other cells are strings; an empty cell means
    the record lacks that field.
    """

    def __init__(self, name: str, path: Path | str) -> None:
        self.name = _checked_name(name)
        self.path = Path(path)
        self._index = self._load()

    async def lookup(self, subject: Subject, fields: Sequence[str]) -> Mapping[str, object] | None:
        """The requested fields of the subject's row, None if there is no row."""
        record = self._index.get((subject.id_type, subject.id_number))
        if record is None:
            return None
        # Copies, so a caller editing a list cannot change what the next caller sees.
        return {field: copy.deepcopy(record[field]) for field in fields if field in record}

    def _load(self) -> dict[tuple[str, str], dict[str, object]]:
        try:
            text = self.path.read_text(encoding="utf-8-sig")  # -sig: spreadsheet exports
        except UnicodeDecodeError:
            raise SourceGarbage(self.name, f"{self.path} is not UTF-8") from None
        except OSError as exc:
            raise SourceUnavailable(self.name, f"cannot read {self.path}: {exc.strerror}") from None
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            header = next(reader, [])
            fields = self._fields(header)
            index: dict[tuple[str, str], dict[str, object]] = {}
            first_line: dict[tuple[str, str], int] = {}
            for row in reader:
                if row:
                    self._add_row(row, fields, reader.line_num, index, first_line)
        except csv.Error as exc:
            raise self._garbage(reader.line_num, f"not valid CSV ({exc})") from None
        return index

    def _fields(self, header: list[str]) -> list[str]:
        if header[:2] != ["id_type", "id_number"] or len(header) < 3:
            raise self._garbage(1, "the header must be id_type,id_number,<field>...")
        fields = header[2:]
        bad = [f for f in fields if not f or f in ("id_type", "id_number")]
        repeated = sorted({f for f in fields if fields.count(f) > 1})
        if bad or repeated:
            raise self._garbage(1, f"empty, reserved or repeated field names: {bad + repeated}")
        return fields

    def _add_row(
        self,
        row: list[str],
        fields: list[str],
        line: int,
        index: dict[tuple[str, str], dict[str, object]],
        first_line: dict[tuple[str, str], int],
    ) -> None:
        if len(row) != len(fields) + 2:
            raise self._garbage(line, f"{len(row)} cells where the header has {len(fields) + 2}")
        id_type, id_number, *cells = row
        if not id_type or not id_number:
            raise self._garbage(line, "id_type and id_number must not be empty")
        key = (id_type, id_number)
        if key in first_line:
            raise self._garbage(line, f"repeats the subject of line {first_line[key]}")
        first_line[key] = line
        record: dict[str, object] = {}
        for field, cell in zip(fields, cells, strict=True):
            if cell:
                try:
                    record[field] = _cell_value(cell)
                except ValueError:
                    detail = f"field {field!r} looks like JSON but is not"
                    raise self._garbage(line, detail) from None
        index[key] = record

    def _garbage(self, line: int, detail: str) -> SourceGarbage:
        return SourceGarbage(self.name, f"{self.path}, line {line}: {detail}")


def _cell_value(cell: str) -> object:
    if cell in _JSON_LITERALS:
        return _JSON_LITERALS[cell]
    if _NUMBER.fullmatch(cell):
        number = json.loads(cell)
        if isinstance(number, int) and abs(number) > _JSON_SAFE_INT:
            return cell
        if isinstance(number, float) and not math.isfinite(number):
            return cell
        return number
    if cell[0] in '[{"':
        return json.loads(cell, parse_constant=_reject_constant)
    return cell


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --- the registry --------------------------------------------------------------------------


class SourceRegistry:
    """The configured data sources, by name."""

    def __init__(self, sources: Iterable[DataSource] = ()) -> None:
        self._sources: dict[str, DataSource] = {}
        for source in sources:
            self.add(source)

    def add(self, source: DataSource) -> None:
        """Register `source`; ValueError if its name is taken."""
        if source.name in self._sources:
            raise ValueError(f"data source {source.name!r} is already registered")
        self._sources[source.name] = source

    def get(self, name: str) -> DataSource:
        """The source called `name`; UnknownSourceError listing the known ones otherwise."""
        try:
            return self._sources[name]
        except KeyError:
            raise UnknownSourceError(name, self._sources) from None

    @property
    def names(self) -> tuple[str, ...]:
        """The registered names, sorted."""
        return tuple(sorted(self._sources))

    def __contains__(self, name: object) -> bool:
        return name in self._sources

    def __len__(self) -> int:
        return len(self._sources)


# The departments' data service, as the command line and the service reach it.
SOURCE_TIMEOUT_S = 5.0
SOURCE_RETRIES = 3
SOURCE_CONCURRENCY = 32


def catalog_sources(catalog: Catalog) -> list[str]:
    """The data sources the catalog's claims are checked against, sorted."""
    return sorted({spec.source for matter in catalog.matters for spec in matter.claims})


def http_sources(
    catalog: Catalog, base_url: str, token: str, *, retries: int = SOURCE_RETRIES
) -> dict[str, DataSource]:
    """One HTTP connector per catalog source, all served under `base_url` with one token."""
    return {
        name: HttpSource(
            name,
            base_url,
            token,
            timeout=SOURCE_TIMEOUT_S,
            retries=retries,
            max_concurrency=SOURCE_CONCURRENCY,
        )
        for name in catalog_sources(catalog)
    }
