"""Intake's batched statements straight to the database driver, without per-row preparing.

SQLAlchemy Core prepares each row of an executemany (a parameter dict, every bytes value
through its type's bind processor, a memoryview for sqlite3) and each value of an IN list:
for the thousand commitments of an intake chunk that was half the store's CPU time. These
helpers give the driver plain tuples in its own placeholder style (sqlite3's qmark,
psycopg's format) inside the caller's transaction. Table and column names come from
`ledger.tables`, never from input.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table

from ledger.errors import StoreError

__all__ = [
    "IN_LIMIT",
    "insert_returning",
    "insert_rows",
    "rows_among",
    "select_among",
    "stored_among",
    "update_among",
    "update_rows",
]

_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
IN_LIMIT = 4096  # values of one IN list: SQLite allows 32,766 parameters a statement


def _placeholder(connection: Connection) -> str:
    style = str(connection.dialect.paramstyle)
    mark = _PLACEHOLDERS.get(style)
    if mark is None:
        raise StoreError(
            f"the store speaks to sqlite3 and psycopg, not to a driver of paramstyle {style!r}"
        )
    return mark


def _column(table: Table, name: str) -> str:
    return str(table.c[name].name)  # KeyError for a name the table does not have


@cache
def _insert_sql(table: Table, columns: tuple[str, ...], mark: str) -> str:
    names = ", ".join(_column(table, name) for name in columns)
    marks = ", ".join([mark] * len(columns))
    return f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608  # names: tables.py


def insert_rows(
    connection: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert `rows` (each its values in the order of `columns`) in one executemany."""
    if rows:
        sql = _insert_sql(table, columns, _placeholder(connection))
        connection.exec_driver_sql(sql, list(rows))


def stored_among(
    connection: Connection, table: Table, column: str, values: Collection[bytes]
) -> set[bytes]:
    """Those of `values` that `column` of `table` holds, IN_LIMIT values a query."""
    name = _column(table, column)
    head = f"SELECT {name} FROM {table.name} WHERE {name}"  # noqa: S608  # names: tables.py
    return {bytes(value) for (value,) in select_among(connection, head, values)}


@cache
def _update_sql(table: Table, key: str, columns: tuple[str, ...], mark: str) -> str:
    sets = ", ".join(f"{_column(table, name)} = {mark}" for name in columns)
    where = f"{_column(table, key)} = {mark}"
    return f"UPDATE {table.name} SET {sets} WHERE {where}"  # noqa: S608  # names: tables.py


def update_rows(
    connection: Connection,
    table: Table,
    key: str,
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Update the rows whose `key` is each row's last value, setting `columns` to its first
    values (in that order), in one executemany."""
    if rows:
        sql = _update_sql(table, key, columns, _placeholder(connection))
        connection.exec_driver_sql(sql, list(rows))


def rows_among(
    connection: Connection,
    table: Table,
    key: str,
    columns: tuple[str, ...],
    values: Collection[bytes],
) -> list[tuple[Any, ...]]:
    """`columns` of the rows whose `key` is one of `values`, IN_LIMIT values a query."""
    names = ", ".join(_column(table, column) for column in columns)
    head = f"SELECT {names} FROM {table.name} WHERE {_column(table, key)}"  # noqa: S608
    return select_among(connection, head, values)


def select_among(
    connection: Connection, head: str, values: Collection[Any], tail: str = ""
) -> list[tuple[Any, ...]]:
    """The rows of `head IN (values) tail`, IN_LIMIT values a query. `head` ends with the
    column the values are of; `head` and `tail` are built from `ledger.tables` names only
    and hold no placeholder."""
    found: list[tuple[Any, ...]] = []
    for marks, chunk in _in_lists(connection, values):
        found.extend(
            tuple(row) for row in connection.exec_driver_sql(f"{head} IN ({marks}){tail}", chunk)
        )
    return found


def _in_lists(
    connection: Connection, values: Collection[Any]
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """`values` in chunks of IN_LIMIT, each with its placeholders joined for an IN list."""
    wanted = list(values)
    mark = _placeholder(connection)
    for start in range(0, len(wanted), IN_LIMIT):
        chunk = tuple(wanted[start : start + IN_LIMIT])
        yield ", ".join([mark] * len(chunk)), chunk


def update_among(
    connection: Connection,
    table: Table,
    key: str,
    columns: tuple[str, ...],
    values: tuple[Any, ...],
    keys: Collection[Any],
) -> None:
    """Set `columns` to `values` in every row whose `key` is one of `keys`, IN_LIMIT keys a
    statement."""
    mark = _placeholder(connection)
    sets = ", ".join(f"{_column(table, name)} = {mark}" for name in columns)
    where = _column(table, key)
    for marks, chunk in _in_lists(connection, keys):
        sql = f"UPDATE {table.name} SET {sets} WHERE {where} IN ({marks})"  # noqa: S608  # names
        connection.exec_driver_sql(sql, (*values, *chunk))


_PARAMETERS = 30_000  # of one statement: SQLite allows 32,766


def insert_returning(
    connection: Connection,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    returning: tuple[str, ...],
) -> list[tuple[Any, ...]]:
    """Insert `rows` (each its values in the order of `columns`) with multi-row VALUES
    statements, as many rows a statement as the parameter limit allows, and return
    `returning` of each inserted row, in no promised order."""
    if not rows:
        return []
    mark = _placeholder(connection)
    names = ", ".join(_column(table, name) for name in columns)
    back = ", ".join(_column(table, name) for name in returning)
    one = f"({', '.join([mark] * len(columns))})"
    step = max(1, _PARAMETERS // len(columns))
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        marks = ", ".join([one] * len(chunk))
        sql = f"INSERT INTO {table.name} ({names}) VALUES {marks} RETURNING {back}"  # noqa: S608
        flat = tuple(value for row in chunk for value in row)
        found.extend(tuple(row) for row in connection.exec_driver_sql(sql, flat))
    return found
