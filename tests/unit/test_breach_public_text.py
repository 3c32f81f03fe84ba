"""A breach the engine publishes reads in Chinese: its facts come from the claim templates
(not the comparison's English detail) and its document number from the department's short
name in the registry (京人社承诺〔2026〕000001号, not 京BJ-HRSS承诺...)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.verifier_world import DAY, World, open_world

from ledger import Chain

ASCII_WORD = re.compile(r"[A-Za-z]{2,}")


@pytest.fixture
def world(tmp_path: Path, embedded_chain: Chain) -> Iterator[World]:
    with open_world(embedded_chain, tmp_path) as opened:
        yield opened


def test_an_engine_breach_has_chinese_facts_and_document_number(world: World) -> None:
    world.commit_kind("false")
    world.engine.run(DAY)
    world.publish(DAY)
    [breach] = world.engine.records.search_breaches(DAY).records
    assert breach.facts and not ASCII_WORD.search(breach.facts), breach.facts
    assert "无刑事犯罪记录" in breach.facts
    assert re.fullmatch(r"京人社承诺〔2026〕\d{6}号", breach.document_number), (
        breach.document_number
    )
