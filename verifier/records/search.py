"""The public breach search: listed records by name, code, matter, department and decision
date, newest decision first, counted up to a bound; through the covering and name indexes
of `verifier.records.tables`."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    bindparam,
    column,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import BindParameter

from verifier.breaches import BreachRecord, mask_person_name
from verifier.errors import RecordsError
from verifier.records.tables import NAME_INDEX_DDL, breach_records

MAX_PAGE_SIZE = 100
# A search counts its matches up to here and pages no deeper: beyond, narrow the search.
MAX_RESULTS = 1_000
# Names this long or longer are found anywhere in the name (through the trigram index on
# SQLite); a shorter one is a whole name as shown, or a surname that persons' masked names
# start with ("张" finds "张*" and "张**"): a part that short would be a scan of every record.
TRIGRAM = 3
MASKED = 3  # a person's name shows the surname and a star for each other character
MASK = "*"
# A full ID or code is looked for by the applicant fingerprints of the types it may be.
FINGERPRINTS = 4


class BreachPage(NamedTuple):
    """One page of the public breach list and how many records match in all.

    `total` counts at most MAX_RESULTS; `total_capped` says more match than that.
    """

    records: list[BreachRecord]
    total: int
    page: int
    page_size: int
    total_capped: bool = False


class BreachJsonPage(NamedTuple):
    """A BreachPage whose records are their public JSON texts, as stored (no parsing)."""

    texts: list[str]
    total: int
    page: int
    page_size: int
    total_capped: bool = False


def _escape_like(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _without_nul(text: str | None) -> str | None:
    return None if text is None else text.replace("\x00", "") or None


def _has_case(text: str) -> bool:
    """Whether any character of `text` has another case (the trigram index folds it)."""
    return any(ch.lower() != ch or ch.upper() != ch for ch in text)


def _as_masked(name: str) -> bool:
    """Whether `name` reads as a person's masked name ("张**"): characters without case,
    then stars only. The names holding it are mostly its whole forms (`_whole_masks`)."""
    shown = name.rstrip(MASK)
    return bool(shown) and shown != name and MASK not in shown and not _has_case(name)


def _whole_masks(name: str) -> dict[str, str]:
    """The whole names that hold a masked `name`: it and it with up to MASKED more stars."""
    return {f"whole_{stars}": name + MASK * stars for stars in range(MASKED + 1)}


_NAMES_HOLDING = "SELECT count(*) FROM breach_names WHERE breach_names MATCH ?"
_WHOLE_NAMES = "SELECT count(*) FROM breach_records WHERE party_name IN ({})".format(  # noqa: S608 - marks
    ", ".join("?" * (MASKED + 1))
)


def _only_whole_masks(cursor: Any, phrase: str, wholes: dict[str, str]) -> bool:
    """SQLite: whether every record (listed or not) whose name holds the masked name is one
    of its whole forms: as many as the trigram index holds. Then the name's covering index
    finds the same records without reading a row of the table (a masked name is held by
    thousands of records, each read for its status and dates through the trigram index)."""
    holding = cursor.execute(_NAMES_HOLDING, [phrase]).fetchone()[0]
    whole = cursor.execute(_WHOLE_NAMES, list(wholes.values())).fetchone()[0]
    return bool(holding == whole)


class SearchStatements(NamedTuple):
    """A search's statements, by which filters it has (see `_search_statements`)."""

    counted: Select[int]  # matches, up to :bound
    page: Select[Any]  # the page's (id, public JSON), in list order
    first: Select[int]  # SQLite: the first :bound rowids in list order
    reach: Select[int]  # SQLite: the rowids in list order up to the page's end (:reach)


@functools.cache
def _search_statements(
    sqlite: bool, name: bool, trigram: bool, given: frozenset[str]
) -> SearchStatements:
    """The count (up to :bound), the page (id, public JSON), and the first :bound and :reach
    rowids in list order of a search, by which filters it has.

    Built once per shape, with bound parameters: building them anew was a third of the cost
    of a search. The trigram index (SQLite) gives the candidates for a name of 3 or more
    characters; LIKE decides when the name has letters with case (the index folds case
    beyond ASCII), else the index's match is the substring match already (Chinese names,
    masks: LIKE on every candidate's row was a quarter of such a search). A shorter name is one
    of :whole_0... (the name as shown, or masked names with that surname).
    """
    c = breach_records.c
    # Whole names go in by their index: a unary + keeps the status out of the planner's
    # choice (without statistics, SQLite would take the listing index and read every row).
    whole = sqlite and "whole_0" in given
    status = literal_column("+breach_records.status") if whole else c.status
    conditions: list[ColumnElement[bool]] = [
        status == "published",
        c.decision_date <= bindparam("decided_by"),
        c.publication_end >= bindparam("on"),
    ]
    if name:
        conditions.append(func.lower(c.party_name).like(bindparam("name_like"), escape="/"))
    if "whole_0" in given:
        whole_names: list[Any] = [bindparam(f"whole_{n}") for n in range(MASKED + 1)]
        conditions.append(c.party_name.in_(whole_names))
    if trigram:
        conditions.append(
            literal_column("breach_records.rowid").in_(
                text("SELECT rowid FROM breach_names WHERE breach_names MATCH :phrase").columns(
                    column("rowid", Integer)
                )
            )
        )
    if "fingerprint_0" in given:  # the code as shown, or the fingerprint of the full ID
        prints: list[Any] = [bindparam(f"fingerprint_{n}") for n in range(FINGERPRINTS)]
        conditions.append(
            or_(c.party_code == bindparam("credit_code"), c.applicant_fingerprint.in_(prints))
        )
        given = given - {"credit_code"}
    for key, field_ in (
        ("credit_code", c.party_code),
        ("matter", c.matter_code),
        ("department", c.department),
    ):
        if key in given:
            conditions.append(field_ == bindparam(key))
    if "decided_from" in given:
        conditions.append(c.decision_date >= bindparam("decided_from"))
    matching = select(c.id).where(*conditions)
    in_order = select(c.id).where(*conditions).order_by(c.decision_date.desc(), c.id)
    # The page's ids from the covering index, then only their rows: skipped rows are not read.
    ids = in_order.limit(bindparam("limit")).offset(bindparam("offset")).subquery()
    shown = breach_records.alias("shown")
    page = (
        select(shown.c.id, shown.c.public_json)
        .join_from(ids, shown, shown.c.id == ids.c.id)
        .order_by(shown.c.decision_date.desc(), shown.c.id)
    )
    bounded = matching.limit(bindparam("bound")).subquery()
    # SQLite: rowids (in every index entry) for the page's rows, found without the id index.
    rowids = (
        select(literal_column("breach_records.rowid", Integer))
        .where(*conditions)
        .order_by(c.decision_date.desc(), c.id)
    )
    return SearchStatements(
        select(func.count()).select_from(bounded),
        page,
        rowids.limit(bindparam("bound")),
        rowids.limit(bindparam("reach")),
    )


@functools.cache
def _listed_by_id() -> Select[Any]:
    """A record's public JSON text by id, if it is listed on :on (see `_listed_on`)."""
    c = breach_records.c
    on: BindParameter[str] = bindparam("on")
    return select(c.public_json).where(
        c.id == bindparam("record_id"),
        c.status == "published",
        c.decision_date <= on,
        c.publication_end >= on,
    )


@functools.cache
def _sqlite_text(statement: Select[int]) -> tuple[Any, tuple[str, ...]]:
    """A search statement compiled once for SQLite: the compiled form and its parameters'
    order."""
    compiled = statement.compile(dialect=sqlite_dialect())
    return compiled, tuple(compiled.positiontup or ())


def _run(cursor: Any, statement: Select[Any], params: dict[str, Any]) -> list[Any]:
    compiled, order = _sqlite_text(statement)
    values = compiled.construct_params(params)
    return cursor.execute(compiled.string, [values[n] for n in order]).fetchall()  # type: ignore[no-any-return]


@contextmanager
def driver_snapshot(engine: Engine) -> Iterator[Any]:
    """SQLite: the driver's cursor on a pooled connection, in a read transaction of its
    own, so every read through it sees one snapshot; rolled back as the connection goes
    back to the pool. Without SQLAlchemy's Connection: its begin, events and close cost
    as much as an indexed read (about 40 us a search)."""
    pooled = engine.raw_connection()
    try:
        cursor = pooled.cursor()
        try:
            cursor.execute("BEGIN")
            yield cursor
        finally:
            cursor.close()
    finally:
        pooled.close()  # the pool's reset rolls the read transaction back


def _sqlite_search(
    cursor: Any, statements: SearchStatements, trigram: bool, params: dict[str, Any]
) -> tuple[int, list[str]]:
    """SQLite: the count and the page's JSON texts, the page's rows read by rowid.

    By the name index: from one ordered read of the first :bound rowids (the candidates are
    gathered and sorted once, where a count and a page would do it twice). By a covering
    index: the rowids up to the page's end; when there are fewer, the list ends there and
    they are the total, else SQLite counts to :bound without handing a row to Python (a
    quarter of the cost of reading 1,000 rowids).

    Through the driver's own cursor (`driver_snapshot`): SQLAlchemy's rows cost more than
    SQLite's read of an index; one snapshot, so the ids, the count and the rows agree."""
    offset, limit = params["offset"], params["limit"]
    reach = offset + limit
    if trigram:
        found = _run(cursor, statements.first, params)
    else:
        found = _run(cursor, statements.reach, {**params, "reach": reach})
    total = len(found)
    if not trigram and total == reach:
        total = _run(cursor, statements.counted, params)[0][0]
    page = [row[0] for row in found[offset:reach]]
    if not page:
        return total, []
    marks = ", ".join("?" * len(page))
    rows = cursor.execute(
        f"SELECT rowid, public_json FROM breach_records WHERE rowid IN ({marks})",  # noqa: S608
        page,
    )
    texts = dict(rows.fetchall())
    return total, [texts[i] for i in page]


class BreachSearch:
    """The public search, a part of `verifier.records.facade.VerifierRecords`."""

    _engine: Engine
    _writer: Engine

    def search_breaches(
        self,
        on: date,
        *,
        name: str | None = None,
        credit_code: str | None = None,
        matter: str | None = None,
        department: str | None = None,
        decided_from: date | None = None,
        decided_to: date | None = None,
        page: int = 1,
        page_size: int = 20,
        fingerprints: tuple[bytes, ...] = (),
    ) -> BreachPage:
        """The public list on `on`: listed records only, newest decision first.

        `name` of TRIGRAM characters or more matches part of the name as shown (masked
        for persons, e.g. "张*"), ignoring case; a shorter one is a whole name as shown or
        the surname of masked names ("张" finds "张*" and "张**"). `credit_code` is the
        code or masked ID exactly as shown; with `fingerprints` (the applicant fingerprints
        of a full ID the searcher typed, one per type it may be) a record whose applicant has
        one of them matches too, and a person's full `name` matches its masked form.
        Pages reach MAX_RESULTS records deep; RecordsError beyond.
        """
        found = self.search_breach_json(
            on,
            name=name,
            credit_code=credit_code,
            matter=matter,
            department=department,
            decided_from=decided_from,
            decided_to=decided_to,
            page=page,
            page_size=page_size,
            fingerprints=fingerprints,
        )
        records = [BreachRecord.from_json(public_json) for public_json in found.texts]
        return BreachPage(records, found.total, page, page_size, found.total_capped)

    def search_breach_json(
        self,
        on: date,
        *,
        name: str | None = None,
        credit_code: str | None = None,
        matter: str | None = None,
        department: str | None = None,
        decided_from: date | None = None,
        decided_to: date | None = None,
        page: int = 1,
        page_size: int = 20,
        fingerprints: tuple[bytes, ...] = (),
    ) -> BreachJsonPage:
        """`search_breaches` with each record as its stored public JSON text (for serving).

        NUL characters are removed from the text filters: no published name or code holds
        one (intake refuses them) and SQLite's full-text query stops at one.
        """
        name, credit_code, matter, department = (
            _without_nul(text) for text in (name, credit_code, matter, department)
        )
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise RecordsError(f"page starts at 1 and page_size is 1 to {MAX_PAGE_SIZE}")
        if (page - 1) * page_size >= MAX_RESULTS:
            raise RecordsError(
                f"pages reach the first {MAX_RESULTS} records only: narrow the search"
            )
        # Listed on `on`, with one upper bound on the decision date: given two, the planner
        # may range over the wider one.
        decided_by = on if decided_to is None else min(on, decided_to)
        params: dict[str, Any] = {
            "on": on.isoformat(),
            "decided_by": decided_by.isoformat(),
            "bound": MAX_RESULTS + 1,
            "limit": page_size,
            "offset": (page - 1) * page_size,
        }
        if decided_from is not None and decided_to is not None and decided_from > decided_to:
            raise RecordsError("decided_from is after decided_to: no date is in that range")
        if len(fingerprints) > FINGERPRINTS:
            raise RecordsError(f"at most {FINGERPRINTS} fingerprints")
        trigram = False
        if name and fingerprints and credit_code:
            # A full name beside a full ID: the name as shown, or a person's masked name.
            masked = mask_person_name(name)
            params.update({f"whole_{n}": masked if n else name for n in range(MASKED + 1)})
        elif name and len(name) < TRIGRAM:
            params.update({f"whole_{stars}": name + "*" * stars for stars in range(MASKED + 1)})
        elif name:
            trigram = self._engine.dialect.name == "sqlite"
            if trigram:
                params["phrase"] = '"' + name.replace('"', '""') + '"'
            if not trigram or _has_case(name):
                params["name_like"] = "%" + _escape_like(name.lower()) + "%"
        for key, wanted in (
            ("credit_code", credit_code),
            ("matter", matter),
            ("department", department),
            ("decided_from", None if decided_from is None else decided_from.isoformat()),
        ):
            if wanted is not None:
                params[key] = wanted
        if fingerprints:
            params["credit_code"] = credit_code or ""
            params.update(
                {
                    f"fingerprint_{n}": fingerprints[n % len(fingerprints)]
                    for n in range(FINGERPRINTS)
                }
            )
        statements = _search_statements(
            self._engine.dialect.name == "sqlite", "name_like" in params, trigram, frozenset(params)
        )
        if self._engine.dialect.name == "sqlite":
            with driver_snapshot(self._engine) as cursor:
                wholes = _whole_masks(name) if trigram and name and _as_masked(name) else {}
                if wholes and _only_whole_masks(cursor, params["phrase"], wholes):
                    # The same records by their whole names, in one snapshot with the check.
                    params = {k: v for k, v in params.items() if k != "phrase"} | wholes
                    statements = _search_statements(True, False, False, frozenset(params))
                # By a name: the first :bound rowids in one ordered read, counted as read.
                total, shown = _sqlite_search(cursor, statements, trigram, params)
        else:
            with self._engine.connect() as connection:
                total = connection.execute(statements.counted, params).scalar_one()
                page_rows = connection.execute(statements.page, params)
                shown = [row.public_json for row in page_rows]
        capped = total > MAX_RESULTS
        return BreachJsonPage(shown, min(int(total), MAX_RESULTS), page, page_size, capped)

    def listed_breach_json(self, record_id: str, on: date) -> str | None:
        """The public JSON text of a record listed on `on`, or None (unknown or not listed).

        SQLite: one statement compiled once, on the driver's pooled connection."""
        c = breach_records.c
        if self._engine.dialect.name == "sqlite":
            compiled, order = _sqlite_text(_listed_by_id())
            values = compiled.construct_params({"record_id": record_id, "on": on.isoformat()})
            with driver_snapshot(self._engine) as cursor:
                row = cursor.execute(compiled.string, [values[n] for n in order]).fetchone()
            return None if row is None else str(row[0])
        with self._engine.connect() as connection:
            public_json: str | None = connection.execute(
                select(c.public_json).where(c.id == record_id, *self._listed_on(on))
            ).scalar_one_or_none()
        return public_json

    @staticmethod
    def _listed_on(on: date) -> list[ColumnElement[bool]]:
        # verifier.breaches.publicly_listed, as SQL
        c = breach_records.c
        day = on.isoformat()
        return [c.status == "published", c.decision_date <= day, c.publication_end >= day]

    def rebuild_name_index(self) -> None:
        """Rebuild the trigram name index from the table (SQLite; after a VACUUM, say)."""
        if self._engine.dialect.name == "sqlite":
            with self._writer.begin() as connection:
                connection.exec_driver_sql(NAME_INDEX_DDL[-1])
