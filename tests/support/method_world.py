"""A verifier test world (support.verifier_world) on a catalog with a matter for every
verification method beyond a comparison (issue 16): tasks, sampling, assistance, any-of,
exemption, future obligations and a decision time limit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from eth_utils import keccak

from api.demo import Faults, Planted, create_app, planted, running, sample_commitments
from ledger import Chain, Commitment, Hash32, Intake, SigningKey, Store, Vault
from support.deployment import deploy
from support.verifier_world import HRSS, SAMR, TOKEN, World, matters
from verifier import Catalog, SignedReport, default_catalog
from verifier.engine import VerificationEngine

RESIDENCE = {
    "key": "holds_residence_permit",
    "type": "boolean",
    "op": "==",
    "value": True,
    "description": "permit",
    "source": "police_residence",
}
CRIMINAL = {
    "key": "no_criminal_record",
    "type": "boolean",
    "op": "==",
    "value": True,
    "description": "no criminal record",
    "source": "police_criminal",
    "on_disagree": "false",
    "required": False,
    # legal persons are exempt from a claim only a natural person can make
    "exempt_when": {"applicant_kinds": ["organisation"]},
}
PREMISES = {
    "key": "premises_area_sqm",
    "type": "number",
    "op": ">=",
    "value": 30,
    "description": "premises",
    "source": "housing_registry",
}


def _work_years(years: int) -> dict[str, Any]:
    return {
        "key": f"work_years_{years}",
        "type": "number",
        "op": ">=",
        "value": years,
        "description": f"{years} years of work",
        "source": "employer_records",
        "field": "relevant_work_years",
    }


ANNUAL = {
    "key": "annual_report_filed",
    "type": "boolean",
    "op": "==",
    "value": True,
    "description": "annual report filed within a year",
    # the sample data service has no annual reports: a boolean it holds stands in for one
    "source": "police_criminal",
    "field": "no_criminal_record",
    "due_after_days": 365,
}
ON_SITE = {
    "key": "site_visit",
    "kind": "on_site_check",
    "description": "inspect the premises",
    "on_fail": "mismatch",
}
REVIEW = {"key": "papers", "kind": "document_review", "description": "read the contract"}
ASSIST = {
    "key": "ask_market",
    "kind": "assistance_request",
    "description": "does the market bureau know the firm?",
    "assist_department": SAMR,
}

SAMPLED = "T-HRSS-SAMPLED"
TASKS = "T-HRSS-TASKS"
ASSISTED = "T-HRSS-ASSIST"
EITHER = "T-HRSS-EITHER"
ANNUAL_REPORT = "T-HRSS-ANNUAL"
EXEMPT_ORG = "T-SAMR-EXEMPT"
EXEMPT_PERSON = "T-HRSS-EXEMPT"
LIMITED = "T-HRSS-LIMIT"
RATE = 0.5
SEED = "methods-test-v1"


def matter_of(
    code: str, department: str, claims: list[dict[str, Any]], conditions: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "code": code,
        "name": code,
        "name_en": code,
        "department": department,
        "department_name": department,
        "legal_basis": "test",
        "notice": {"version": 1, "conditions": "c", "liability": "l"},
        "claims": claims,
        "conditions": conditions,
        "verification_window_days": 60,
        "rectification_window_days": 20,
        "severity": "general",
    }


def catalog_json() -> dict[str, Any]:
    resident = {"text": "permit", "claims": ["holds_residence_permit"]}
    methods = [
        {
            **matter_of(SAMPLED, HRSS, [RESIDENCE], [resident, {"text": "site", "task": ON_SITE}]),
            "sampling_rate": RATE,
            "sampling_seed": SEED,
        },
        matter_of(
            TASKS,
            HRSS,
            [RESIDENCE],
            [resident, {"text": "site", "task": ON_SITE}, {"text": "papers", "task": REVIEW}],
        ),
        matter_of(ASSISTED, HRSS, [RESIDENCE], [resident, {"text": "ask", "task": ASSIST}]),
        matter_of(
            EITHER,
            HRSS,
            [_work_years(2), _work_years(100)],
            [{"text": "either", "claims": ["work_years_2", "work_years_100"], "any_of": True}],
        ),
        matter_of(
            ANNUAL_REPORT,
            HRSS,
            [RESIDENCE, ANNUAL],
            [resident, {"text": "annual", "claims": ["annual_report_filed"]}],
        ),
        matter_of(
            EXEMPT_ORG,
            SAMR,
            [PREMISES, CRIMINAL],
            [
                {"text": "premises", "claims": ["premises_area_sqm"]},
                {"text": "record", "claims": ["no_criminal_record"]},
            ],
        ),
        matter_of(
            EXEMPT_PERSON,
            HRSS,
            [RESIDENCE, CRIMINAL],
            [resident, {"text": "record", "claims": ["no_criminal_record"]}],
        ),
        {**matter_of(LIMITED, HRSS, [RESIDENCE], [resident]), "decision_limit_working_days": 0.5},
    ]
    shipped = default_catalog().model_dump(mode="json")
    return {**shipped, "matters": [*shipped["matters"], *methods]}


def method_catalog() -> Catalog:
    return Catalog.model_validate(catalog_json())


@contextmanager
def open_method_world(chain: Chain, tmp_path: Path) -> Iterator[World]:
    """The verifier test world on `chain` with the method catalog; closed after the block."""
    catalog = method_catalog()
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    vault = Vault(os.urandom(32))
    faults = Faults()
    with ExitStack() as stack:
        url = stack.enter_context(running(create_app(TOKEN, faults)))
        opened = World(
            tmp_path=tmp_path,
            store=store,
            vault=vault,
            intake=Intake(store, vault, matters(catalog)),
            deployment=deploy(chain),
            catalog=catalog,
            faults=faults,
            url=url,
            applicant_key=SigningKey.generate("ed25519"),
        )
        stack.callback(store.close)
        stack.callback(opened.close)
        opened.engine = opened.new_engine()
        _samples.clear()
        yield opened


_STARTS = {code: index for index, code in enumerate(m["code"] for m in catalog_json()["matters"])}
_samples: dict[tuple[int, str], Iterator[Commitment]] = {}


def pick(world: World, kind: Planted, matter: str) -> Commitment:
    """A fresh sample commitment to `matter` of an applicant planted `kind` (distinct codes:
    each matter's commitments are dated a day of their own)."""
    key = (id(world), matter)
    if key not in _samples:
        start = date(2026, 10, 1) + timedelta(days=_STARTS[matter])
        alone = Catalog(catalog_version=1, region="110000", matters=(world.catalog.matter(matter),))
        _samples[key] = sample_commitments(10**6, seed=11, catalog=alone, start=world_start(start))
    for commitment in _samples[key]:
        number = commitment.applicant.id_number
        if number not in world._used and planted(number) == kind:
            world._used.add(number)
            return commitment
    raise AssertionError(f"no sample planted {kind} for {matter}")


def world_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)


def report_of(engine: VerificationEngine, commitment: Hash32) -> SignedReport:
    verification = engine.records.verification(commitment)
    assert verification is not None and verification.report is not None
    return SignedReport.from_json_obj(verification.report)


def independent_selection(commitment: Hash32, code: str, seed: str, rate: float) -> bool:
    """The sampling rule recomputed with another keccak implementation."""
    draw = int.from_bytes(keccak(bytes(commitment) + code.encode() + seed.encode()), "big")
    return draw < int(rate * 2**256)
