"""The newer matters end to end: sample applicants verified by the engine against the sample
department data service, as the demo verifies the first five."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.verifier_world import DAY, HRSS, SAMR, World, open_world

from api.demo import DEMO_MATTERS, Planted, planted, sample_commitments
from ledger import Chain, Commitment, Status
from verifier import default_catalog

# The engines a test deployment has roles for: BJ-HRSS's and BJ-SAMR's.
NEWER = [
    m.code
    for m in default_catalog().matters
    if m.department in (HRSS, SAMR) and m.code not in DEMO_MATTERS
]


@pytest.fixture
def world(tmp_path: Path, embedded_chain: Chain) -> Iterator[World]:
    with open_world(embedded_chain, tmp_path) as opened:
        yield opened


def applicant(code: str, kind: Planted, day: int) -> Commitment:
    """A sample commitment to `code` whose applicant's records are planted `kind`; signed on
    its own day, so that its code is not another matter's."""
    start = datetime(2026, 11, 2, 9, tzinfo=UTC) + timedelta(days=day)
    for document in sample_commitments(5_000, seed=29, start=start, matters=[code]):
        if planted(document.applicant.id_number) == kind:
            return document
    raise AssertionError(f"no sample applicant planted {kind} for {code}")


def test_the_newer_matters_are_decided_from_the_sample_data(world: World) -> None:
    assert len(NEWER) >= 8
    catalog = default_catalog()
    agreeing = {code: applicant(code, "agree", day) for day, code in enumerate(NEWER)}
    short = {code: applicant(code, "mismatch", day) for day, code in enumerate(NEWER)}
    hashes = world.commit(*agreeing.values(), *short.values())
    kept_hashes, short_hashes = hashes[: len(NEWER)], hashes[len(NEWER) :]
    world.engine.run(DAY)
    world.new_engine(SAMR).run(DAY)
    for code, digest in zip(NEWER, kept_hashes, strict=True):
        # Agreeing data keeps a matter no person needs to look at; a task (a review of the
        # rules, an inspection) leaves it to a person.
        wanted = Status.NEEDS_MANUAL if catalog.matter(code).tasks else Status.KEPT
        assert world.status(digest) == wanted, code
    for code, digest in zip(NEWER, short_hashes, strict=True):
        assert world.status(digest) in (Status.MISMATCH, Status.PROPOSED), code
