"""A service world for the service tests: a service on a store in tmp_path and a ledger
deployed on the embedded chain, department tokens, signed documents, breaches."""

from __future__ import annotations

import itertools
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import MetaData, select
from starlette.exceptions import StarletteDeprecationWarning

from api.demo import sample_commitments
from api.service import ServiceContext, Settings, create_app
from ledger import (
    Anchorer,
    Applicant,
    Hash32,
    SignedCommitment,
    SigningKey,
    Store,
    Vault,
    hex32,
    make_uscc,
    sign_commitment,
)
from support.deployment import HRSS, MARKET, Deployment
from verifier import BreachEvidence, BreachRecord, default_catalog, make_breach_record

with warnings.catch_warnings():
    # Starlette 1.x warns that its TestClient will move from httpx to httpx2.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

DAY = date(2026, 11, 27)
PROBLEM_TYPE = "application/problem+json"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
_serials = itertools.count(1)


def write_deployment_file(
    path: Path, deployment: Deployment, rpc: str = "http://127.0.0.1:1"
) -> Path:
    """A deployment file as `commitledger deploy` writes it."""
    record = {
        "rpc": rpc,
        "chain_id": deployment.chain.chain_id,
        "contract": deployment.ledger.address,
        "department": HRSS,
    }
    path.write_text(json.dumps(record) + "\n")
    return path


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem of this status and type; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_TYPE)
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://commitledger.example/problems/{slug}"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == f"urn:uuid:{response.headers['x-request-id']}"
    assert "Traceback" not in response.text
    return body


@dataclass
class ServiceWorld:
    """A running app (through TestClient) over a real store and the embedded chain."""

    tmp_path: Path
    deployment: Deployment
    settings: Settings
    context: ServiceContext
    client: TestClient
    vault: Vault
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    applicant_key: SigningKey = field(default_factory=lambda: SigningKey.generate("ed25519"))

    @property
    def store(self) -> Store:
        return self.context.store

    def auth(self, department: str = HRSS, role: str = "registrar") -> dict[str, str]:
        """The Authorization header of a token for `role` in `department`."""
        return {"Authorization": f"Bearer {self.tokens[department, role]}"}

    def signed(self, department: str = HRSS, seed: int = 5) -> SignedCommitment:
        """A fresh signed commitment of `department` (fresh salt, distinct serial)."""
        serial = next(_serials)
        commitment = list(sample_commitments(serial, seed=seed, department=department))[-1]
        return sign_commitment(commitment, self.applicant_key)

    def body(self, signed: SignedCommitment) -> bytes:
        return json.dumps(signed.to_json_obj(), ensure_ascii=False).encode()

    def submit(self, signed: SignedCommitment) -> Hash32:
        """Store a commitment through intake directly (not over HTTP)."""
        assert self.context.intake is not None
        return self.context.intake.submit(signed).hash

    def anchor(self) -> None:
        """Anchor everything pending, each department with its registrar."""
        d = self.deployment
        registrars = {HRSS: d.registrar, MARKET: d.other_registrar}
        assert Anchorer(self.store, d.ledger, registrars).drain(60.0)

    def add_breach(
        self,
        name: str = "北京示例科技有限公司",
        decision_date: date = date(2026, 11, 20),
        matter_code: str = "BJ-HRSS-0001",
        commitment: Hash32 | None = None,
    ) -> BreachRecord:
        """A published breach record of an organisation, with evidence on this chain."""
        serial = next(_serials)
        applicant = Applicant(
            kind="organisation",
            name=name,
            id_type="uscc",
            id_number=make_uscc("110105", f"{serial:08d}"),
        )
        digest = commitment or Hash32(os.urandom(32))
        evidence = BreachEvidence(
            chain_id=self.deployment.chain.chain_id,
            contract=self.deployment.ledger.address,
            transaction=hex32(os.urandom(32)),
            block=7,
            commitment_hash=hex32(digest),
        )
        record = make_breach_record(
            applicant,
            default_catalog().matter(matter_code),
            digest,
            facts="承诺内容与核查数据不符",
            decision="撤销审批决定，记入失信记录",
            document_number=f"京BJ-HRSS承诺〔2026〕{serial:06d}号",
            decision_date=decision_date,
            evidence=evidence,
        )
        assert self.context.records.add_breach(record, os.urandom(32))
        return record


def open_service(
    tmp_path: Path,
    deployment: Deployment,
    *,
    today: date = DAY,
    with_vault: bool = True,
    with_deployment: bool = True,
    rpc: str | None = None,
    **settings: Any,
) -> ServiceWorld:
    """A service over a new store in `tmp_path`, with tokens for both departments' roles.

    The service uses the embedded chain handed to it, unless `rpc` names a node to connect
    to (as the deployment file's URL).
    """
    deployment_file = tmp_path / "deployment.json"
    if with_deployment:
        write_deployment_file(deployment_file, deployment, rpc or "http://127.0.0.1:1")
    config = Settings(
        data_dir=tmp_path,
        store_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        deployment_file=deployment_file,
        **{"rate_limit_burst": 10_000, "rate_limit_per_second": 1_000.0, **settings},
    )
    vault = Vault(os.urandom(32))
    context = ServiceContext.open(
        config,
        chain=None if rpc else deployment.chain,
        vault=vault if with_vault else None,
        today=lambda: today,
    )
    client = TestClient(create_app(config, context=context), raise_server_exceptions=False)
    world = ServiceWorld(tmp_path, deployment, config, context, client, vault)
    for department in (HRSS, MARKET):
        for role in ("registrar", "verifier"):
            issued = context.tokens.issue(department, role)
            world.tokens[department, role] = issued.token
    return world


def anchored(world: ServiceWorld, count: int = 1) -> list[tuple[Hash32, SignedCommitment]]:
    """`count` fresh commitments submitted and anchored: (hash, signed document) each."""
    documents = [world.signed() for _ in range(count)]
    hashes = [world.submit(signed) for signed in documents]
    world.anchor()
    return list(zip(hashes, documents, strict=True))


def post_signed(world: ServiceWorld, signed: SignedCommitment, **headers: str) -> httpx.Response:
    """POST a signed commitment to /v1/commitments with `headers`."""
    return world.client.post("/v1/commitments", content=world.body(signed), headers=headers)


def snapshot(world: ServiceWorld) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the store's database."""
    tables = MetaData()
    tables.reflect(world.store.engine)
    with world.store.engine.connect() as connection:
        return {
            name: sorted(tuple(row) for row in connection.execute(select(table)))
            for name, table in tables.tables.items()
        }


@contextmanager
def service_with_sources(tmp_path: Path, deployment: Deployment) -> Iterator[ServiceWorld]:
    """A service holding every department's keys whose department data come from the sample
    data service (running here, with a token of its own)."""
    import secrets

    from api.demo import create_app as sample_app
    from api.demo import running
    from support.service_keys import write_all_keys

    token = secrets.token_urlsafe(16)
    token_file = tmp_path / "sources.token"
    token_file.write_text(token + "\n")
    write_all_keys(tmp_path / "keys", deployment)
    with running(sample_app(token)) as url:
        opened = open_service(tmp_path, deployment, sources_url=url, sources_token_file=token_file)
        try:
            yield opened
        finally:
            opened.context.close()


def agreeing_food_licence(world: ServiceWorld) -> Hash32:
    """An anchored food-licence commitment (BJ-SAMR-0001: its food-safety rules are reviewed
    by a person) whose department data all agree."""
    from api.demo import planted

    signed = world.signed(MARKET)
    while (
        signed.document.matter_code != "BJ-SAMR-0001"
        or planted(signed.document.applicant.id_number) != "agree"
    ):
        signed = world.signed(MARKET)
    digest = world.submit(signed)
    world.anchor()
    return digest
