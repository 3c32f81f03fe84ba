"""Which of the markers `node`, `db`, `browser` a collected test earns, by fixture and folder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
# A test that uses one of these fixtures (directly or through others) starts an anvil node.
NODE_FIXTURES = frozenset({"anvil_binary", "anvil", "anvil_chain"})
# ...or PostgreSQL.
DB_FIXTURES = frozenset({"postgres_cluster", "postgres_url"})
# Parametrised fixtures whose one parameter needs a node or a database.
NODE_PARAMS = {"any_chain": "anvil"}
DB_PARAMS = {"store_url": "postgresql"}
# Folders whose every test needs a node or a browser (tests/unit needs neither).
FOLDER_MARKS = {"integration": "node", "e2e": "browser"}
# The older markers say the same as a folder would.
SYNONYMS = {"integration": "node", "e2e": "browser"}


def needs(item: pytest.Item) -> set[str]:
    """The markers `item` earns: `node`, `db`, `browser`."""
    callspec = getattr(item, "callspec", None)
    return needs_of(
        Path(str(item.path)),
        getattr(item, "fixturenames", ()),
        callspec.params if callspec is not None else {},
        [mark.name for mark in item.iter_markers()],
    )


def needs_of(
    path: Path, fixtures: Iterable[str], params: Mapping[str, object], marks: Iterable[str]
) -> set[str]:
    """The markers a test at `path` earns by the fixtures it uses (directly or through other
    fixtures), its parameters, its folder and the markers it already has."""
    earned: set[str] = set()
    used = set(fixtures)
    if used & NODE_FIXTURES or any(params.get(f) == p for f, p in NODE_PARAMS.items()):
        earned.add("node")
    if used & DB_FIXTURES or any(params.get(f) == p for f, p in DB_PARAMS.items()):
        earned.add("db")
    path = path.resolve()
    if path.is_relative_to(TESTS):
        folder = path.relative_to(TESTS).parts[0]
        if folder in FOLDER_MARKS:
            earned.add(FOLDER_MARKS[folder])
    earned.update(SYNONYMS[mark] for mark in marks if mark in SYNONYMS)
    return earned
