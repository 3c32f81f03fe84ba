"""The markers conftest puts on tests: node, db, browser, by fixture, parameter and folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.markers import TESTS, needs_of

UNIT = TESTS / "unit" / "test_x.py"


@pytest.mark.parametrize("fixture", ["anvil", "anvil_chain", "anvil_binary"])
def test_an_anvil_fixture_earns_node(fixture: str) -> None:
    assert needs_of(UNIT, ["tmp_path", fixture], {}, []) == {"node"}


def test_the_anvil_half_of_any_chain_earns_node_and_the_embedded_half_nothing() -> None:
    fixtures = ["deployment", "any_chain"]
    assert needs_of(UNIT, fixtures, {"any_chain": "anvil"}, []) == {"node"}
    assert needs_of(UNIT, fixtures, {"any_chain": "embedded"}, []) == set()


@pytest.mark.parametrize("fixture", ["postgres_url", "postgres_cluster"])
def test_a_postgres_fixture_earns_db(fixture: str) -> None:
    assert needs_of(UNIT, [fixture], {}, []) == {"db"}


def test_the_postgresql_half_of_store_earns_db_and_the_sqlite_half_nothing() -> None:
    fixtures = ["store", "store_url"]
    assert needs_of(UNIT, fixtures, {"store_url": "postgresql"}, []) == {"db"}
    assert needs_of(UNIT, fixtures, {"store_url": "sqlite"}, []) == set()


def test_folders_and_the_older_markers() -> None:
    assert needs_of(TESTS / "integration" / "test_x.py", [], {}, []) == {"node"}
    assert needs_of(TESTS / "e2e" / "test_x.py", [], {}, []) == {"browser"}
    assert needs_of(UNIT, [], {}, ["integration", "property"]) == {"node"}
    assert needs_of(UNIT, [], {}, ["e2e"]) == {"browser"}
    assert needs_of(Path("/elsewhere/test_x.py"), [], {}, []) == set()


def test_conftest_marks_collected_tests(request: pytest.FixtureRequest) -> None:
    # A test that needs nothing earns none of the markers.
    names = {mark.name for mark in request.node.iter_markers()}
    assert not names & {"node", "db", "browser"}


def test_a_test_using_the_postgres_store_is_marked_db(
    request: pytest.FixtureRequest, store_url: str
) -> None:
    names = {mark.name for mark in request.node.iter_markers()}
    assert ("db" in names) == store_url.startswith("postgresql")
