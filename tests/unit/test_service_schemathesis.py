"""Schemathesis against the service's own /openapi.json: every operation, in process.

The service runs over a real SQLite store holding anchored commitments (embedded chain) and
published breach records, with a registrar and a verifier token, so that authenticated
routes answer past their token checks. Every response must be a documented status with a
documented content type and a body that matches its schema; no 5xx, whatever is sent.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode, checks
from support.deployment import HRSS, Deployment
from support.service_keys import write_all_keys
from support.service_world import ServiceWorld, open_service

from api.demo import create_app as sample_app
from api.demo import running
from ledger import hex32

# Not positive_data_acceptance: a schema cannot say which signatures verify, so schema-valid
# documents are (rightly) refused with a 422 problem.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.missing_required_header,
]
EXAMPLES = 25  # per operation: enough to hit every documented answer, well under a minute


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    write_all_keys(tmp_path / "keys", embedded_deployment)  # department actions can act
    token_file = tmp_path / "sources.token"  # a run starts only with data sources
    token_file.write_text("schemathesis-sources\n")
    with running(sample_app("schemathesis-sources")) as url:
        opened = open_service(
            tmp_path, embedded_deployment, sources_url=url, sources_token_file=token_file
        )
        yield opened
        opened.context.close()


class Known:
    """Values that exist in the world: generated cases are also sent with these."""

    def __init__(self, world: ServiceWorld) -> None:
        anchored = [world.submit(world.signed()) for _ in range(3)]
        world.anchor()
        self.pending = hex32(world.submit(world.signed()))
        self.hashes = [hex32(h) for h in anchored]
        self.breaches = [world.add_breach().id, world.add_breach("北京乙商贸有限公司").id]

    def path_variants(self, case: Case) -> list[dict[str, Any]]:
        """The case's own path parameters, then each with a known value put in."""
        params = dict(case.path_parameters or {})
        variants = [params]
        if "hash" in params:
            variants += [{**params, "hash": h} for h in (self.hashes[0], self.pending)]
        if "record_id" in params:
            variants.append({**params, "record_id": self.breaches[0]})
        return variants


@pytest.fixture
def known(world: ServiceWorld) -> Known:
    return Known(world)


def _operations(world: ServiceWorld) -> list[APIOperation]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        api = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    return [result.ok() for result in api.get_all_operations()]


def _exercise(
    operation: APIOperation, mode: GenerationMode, world: ServiceWorld, known: Known
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        for path_parameters in known.path_variants(case):
            case.path_parameters = path_parameters
            for role in ("registrar", "verifier"):
                response = case.call_and_validate(headers=world.auth(HRSS, role), checks=CHECKS)
                # A route for the other role answers 403 wrong-role: ask again with that role.
                if response.status_code != 403 or "wrong-role" not in response.text:
                    break

    run()


def test_every_operation_answers_as_documented(world: ServiceWorld, known: Known) -> None:
    operations = _operations(world)
    assert len(operations) >= 10  # the document lists the routes
    failures = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _exercise(operation, mode, world, known)
            except Unsatisfiable:
                continue  # nothing in this operation can be made invalid
            except (
                Exception,
                BaseExceptionGroup,
            ) as exc:  # collected: one report for every operation that failed
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
