"""Department data behind one protocol: HTTP, SQL and CSV sources, and a registry by name.

Over 400 lines: the DataSource protocol with its three implementations (HTTP, SQL, CSV)
and the registry that names them; each implementation is small and they share the errors and
the subject's shape.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import csv
import hashlib
import io
import json
import logging
import math
import random
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool, ValidationError
from sqlalchemy import Column, MetaData, String, Table, Text, case, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ledger import InvalidDocumentError, canonical_bytes
from verifier.catalog import Catalog
from verifier.errors import SourceError, SourceGarbage, SourceUnavailable, UnknownSourceError

__all__ = [
    "Answer",
    "CsvSource",
    "DataSource",
    "HttpSource",
    "SourceError",
    "SourceGarbage",
    "SourceKey",
    "SourceRegistry",
    "SourceUnavailable",
    "SqlSource",
    "Subject",
    "UnknownSourceError",
    "answer_bytes",
    "catalog_sources",
    "http_sources",
    "lookup_answers",
    "sql_source_table",
    "subject_digest",
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


# --- signed answers ------------------------------------------------------------------------

# A signed answer's time may differ from ours by this much (clocks, a slow batch), no more:
# an older answer replayed would attribute stale data to the department.
MAX_ANSWER_SKEW_S = 600


def subject_digest(subject: Subject) -> str:
    """Whose record a signed answer is, without naming them: the hex SHA-256 of the RFC 8785
    bytes of ``{"id_number": ..., "id_type": ...}``. The department (and the applicant) can
    recompute it; the signature never carries the ID in clear."""
    body = {"id_type": subject.id_type, "id_number": subject.id_number}
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


def answer_bytes(
    source: str, subject: Subject, record: Mapping[str, object] | None, answered_at: int
) -> bytes:
    """What a department signs for one subject's answer: the RFC 8785 bytes of
    ``{"answered_at": <UTC seconds>, "record": <the fields returned, or null when there is
    no record>, "source": <source name>, "subject": subject_digest(subject)}``.

    InvalidDocumentError when the record is not JSON RFC 8785 can encode."""
    plain = None if record is None else dict(record)
    body = {
        "source": source,
        "subject": subject_digest(subject),
        "record": plain,
        "answered_at": answered_at,
    }
    return canonical_bytes(body)


@dataclass(frozen=True)
class SourceKey:
    """A department's Ed25519 key for signing its sources' answers, public part only.

    `key_id` is the first 16 hex digits of the SHA-256 of the raw 32-byte public key."""

    public_key: bytes = dataclass_field(repr=False)

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 raw bytes")

    @property
    def key_id(self) -> str:
        """The key's id, as the department's answers name it."""
        return hashlib.sha256(self.public_key).hexdigest()[:16]

    @classmethod
    def from_text(cls, text: str) -> SourceKey:
        """A key as a PEM public key, or the base64 of its raw 32 bytes (as the sample
        service's ``GET /keys`` lists it); ValueError otherwise."""
        text = text.strip()
        if text.startswith("-----BEGIN"):
            loaded = load_pem_public_key(text.encode())
            if not isinstance(loaded, Ed25519PublicKey):
                raise ValueError("the data source key is not an Ed25519 public key")
            return cls(loaded.public_bytes(Encoding.Raw, PublicFormat.Raw))
        try:
            return cls(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            raise ValueError(
                "the data source key is neither PEM nor the base64 of 32 raw bytes"
            ) from None

    @classmethod
    def from_file(cls, path: Path | str) -> SourceKey:
        """`from_text` of a file's content; ValueError naming the file otherwise."""
        try:
            return cls.from_text(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None

    def verifies(self, signature_b64: str, data: bytes) -> bool:
        """Whether the base64 signature verifies over `data` with this key."""
        try:
            signature = base64.b64decode(signature_b64, validate=True)
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, data)
        except (binascii.Error, ValueError, InvalidSignature):
            return False
        return True


@dataclass(frozen=True)
class Answer:
    """One subject's answer: the record (None: no record), and for a signed answer the time
    the department signed it, its base64 Ed25519 signature over `answer_bytes` and the
    key's id. Unsigned answers (or sources configured without a key) carry no signature."""

    record: Mapping[str, object] | None
    answered_at: int | None = None
    signature: str | None = None
    key_id: str | None = None


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


async def lookup_answers(
    source: DataSource, subjects: Sequence[Subject], fields: Sequence[str]
) -> list[Answer | SourceError]:
    """`lookup_many` with each answer's signature where the source checks one; a signed
    answer that failed its check is its subject's SourceError, the others still stand."""
    answers = getattr(source, "answers", None)
    if answers is not None:
        result: list[Answer | SourceError] = await answers(subjects, fields)
        return result
    return [Answer(record) for record in await lookup_many(source, subjects, fields)]


# --- HTTP ----------------------------------------------------------------------------------


class _LookupResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    found: StrictBool
    fields: dict[str, JsonValue]
    # A signed answer's (all three or none): see `answer_bytes`.
    answered_at: int | None = None
    signature: str | None = Field(default=None, max_length=200)
    key_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")


class _BatchResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    results: list[_LookupResponse]


class HttpSource:
    """A department's lookup API: ``POST {base_url}/v1/sources/{name}/lookup``.

    The ID travels in the JSON body, never in the URL, so it cannot land in access logs.
    Timeouts, connection errors, 429 and 5xx are retried ``retries`` times with jittered
    exponential backoff; other refusals fail at once. At most ``max_concurrency`` requests
    are in flight; the rest wait their turn instead of timing out in the connection pool.

    With the department's `key`, every answer must be signed by it (`answer_bytes`): an
    answer unsigned, signed by another key, stale or whose signature fails is refused as
    SourceGarbage for its subject (undecidable, never a breach); a verified answer keeps
    its signature and key id for the report. Without a key, signatures are not passed on.
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
        key: SourceKey | None = None,
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
        self.key = key
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
        answer = self._fields(subject, await self._post(self.url, body), fields)
        if isinstance(answer, SourceError):
            raise answer
        return answer.record

    async def lookup_many(
        self, subjects: Sequence[Subject], fields: Sequence[str]
    ) -> list[Mapping[str, object] | None]:
        """Many subjects' records in requests of `batch_size`: one round trip per batch."""
        records: list[Mapping[str, object] | None] = []
        for answer in await self.answers(subjects, fields):
            if isinstance(answer, SourceError):
                raise answer
            records.append(answer.record)
        return records

    async def answers(
        self, subjects: Sequence[Subject], fields: Sequence[str]
    ) -> list[Answer | SourceError]:
        """`lookup_many` with the signatures checked, one answer (or refusal) per subject."""
        parts = [
            subjects[start : start + self.batch_size]
            for start in range(0, len(subjects), self.batch_size)
        ]
        answers = await asyncio.gather(*(self._lookup_batch(part, fields) for part in parts))
        return [one for answer in answers for one in answer]

    async def _lookup_batch(
        self, subjects: Sequence[Subject], fields: Sequence[str]
    ) -> list[Answer | SourceError]:
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
        return [
            self._answer(subject, answer, fields)
            for subject, answer in zip(subjects, results, strict=True)
        ]

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

    def _fields(
        self, subject: Subject, response: httpx.Response, fields: Sequence[str]
    ) -> Answer | SourceError:
        try:
            answer = _LookupResponse.model_validate_json(response.content)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, ValidationError
            raise SourceGarbage(self.name, f"malformed response: {_shape_error(exc)}") from None
        return self._answer(subject, answer, fields)

    def _answer(
        self, subject: Subject, answer: _LookupResponse, fields: Sequence[str]
    ) -> Answer | SourceError:
        record = self._record(answer, fields)
        if self.key is None:
            return Answer(record)
        problem = self._signature_problem(subject, answer, fields)
        if problem:
            # The source and the key only: the subject stays out of the log.
            _log.warning("data source %s: answer refused: %s", self.name, problem)
            return SourceGarbage(self.name, f"answer refused: {problem}")
        return Answer(record, answer.answered_at, answer.signature, answer.key_id)

    def _signature_problem(
        self, subject: Subject, answer: _LookupResponse, fields: Sequence[str]
    ) -> str:
        """Why a signed answer cannot be taken as the department's, or "" if it can."""
        assert self.key is not None
        if answer.signature is None or answer.key_id is None or answer.answered_at is None:
            return "not signed, and the source is configured with the department's key"
        if answer.key_id != self.key.key_id:
            return f"signed with key {answer.key_id}, not the configured {self.key.key_id}"
        if abs(answer.answered_at - time.time()) > MAX_ANSWER_SKEW_S:
            return "signed at a time too far from now (a replayed or stale answer)"
        if set(answer.fields) - set(fields):
            return "signed fields that were not asked for"
        signed = dict(answer.fields) if answer.found else None
        try:
            data = answer_bytes(self.name, subject, signed, answer.answered_at)
        except InvalidDocumentError:
            return "a record RFC 8785 cannot encode"
        if not self.key.verifies(answer.signature, data):
            return f"the signature does not verify with key {self.key.key_id}"
        return ""

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
    catalog: Catalog,
    base_url: str,
    token: str,
    *,
    retries: int = SOURCE_RETRIES,
    key: SourceKey | None = None,
) -> dict[str, DataSource]:
    """One HTTP connector per catalog source, all served under `base_url` with one token
    (and, given the department's `key`, each answer's signature checked with it)."""
    return {
        name: HttpSource(
            name,
            base_url,
            token,
            timeout=SOURCE_TIMEOUT_S,
            retries=retries,
            max_concurrency=SOURCE_CONCURRENCY,
            key=key,
        )
        for name in catalog_sources(catalog)
    }
