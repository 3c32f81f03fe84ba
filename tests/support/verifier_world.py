"""A fixture world for the verification engine: store, vault, intake, a deployed ledger,
anchored sample commitments picked by their planted outcome, the sample data service on
loopback, and a VerificationEngine for BJ-HRSS."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from api.demo import SOURCES, Faults, Planted, create_app, planted, running, sample_commitments
from ledger import (
    Acknowledgement,
    Anchorer,
    Chain,
    Commitment,
    Hash32,
    Intake,
    LedgerContract,
    SignedCommitment,
    SigningKey,
    Status,
    Store,
    Vault,
    department_id,
    new_salt,
    sign_commitment,
)
from support.deployment import Deployment, deploy
from verifier import Catalog, HttpSource, default_catalog
from verifier.engine import (
    Department,
    DepartmentActions,
    EngineConfig,
    RunSummary,
    VerificationEngine,
    confirm_breach,
    engine_for,
)
from verifier.records import NoticeRecords

HRSS = "BJ-HRSS"
SAMR = "BJ-SAMR"
POINTS = "BJ-HRSS-0001"  # points-based household registration: general severity
TOKEN = "verifier-test-token"
# Social-insurance records run to 2026-10: a later verification day finds them stale.
DAY = date(2026, 11, 27)
ANCHOR_TIMEOUT = 120.0


def matters(catalog: Catalog) -> dict[str, str]:
    """Matter code -> responsible department."""
    return {matter.code: matter.department for matter in catalog.matters}


@dataclass
class World:
    """Everything one engine test needs; `engine` verifies for BJ-HRSS."""

    tmp_path: Path
    store: Store
    vault: Vault
    intake: Intake
    deployment: Deployment
    catalog: Catalog
    faults: Faults
    url: str
    applicant_key: SigningKey
    engine: VerificationEngine = field(init=False)
    _engines: list[VerificationEngine] = field(default_factory=list)
    _samples: dict[str, Iterator[Commitment]] = field(default_factory=dict)
    _used: set[str] = field(default_factory=set)
    _stores: list[Store] = field(default_factory=list)
    signed: dict[bytes, SignedCommitment] = field(default_factory=dict)

    @property
    def ledger(self) -> LedgerContract:
        return self.deployment.ledger

    @property
    def chain(self) -> Chain:
        return self.deployment.chain

    @property
    def db_path(self) -> Path:
        return self.tmp_path / "ledger.db"

    # ------------------------------------------------------------------ engines

    def sources(
        self, *, timeout: float = 10.0, retries: int = 0, backoff: float = 0.0
    ) -> dict[str, HttpSource]:
        """One HttpSource per sample source (an engine owns its sources: one event loop)."""
        return {
            name: HttpSource(
                name,
                self.url,
                TOKEN,
                timeout=timeout,
                retries=retries,
                backoff=backoff,
                max_concurrency=16,
            )
            for name in SOURCES
        }

    def new_engine(
        self,
        department: str = HRSS,
        *,
        sources: dict[str, HttpSource] | None = None,
        config: EngineConfig | None = None,
        ledger: LedgerContract | None = None,
        store: Store | None = None,
        workers: int = 0,
    ) -> VerificationEngine:
        """An engine for `department` with that department's accounts; closed at teardown."""
        hrss = department == HRSS
        d = self.deployment
        store = store or self.store
        accounts = Department(
            department,
            verifier=d.verifier if hrss else d.other_verifier,
            report_key=SigningKey.generate("ed25519"),
            registrar=d.registrar if hrss else d.other_registrar,
        )
        engine = engine_for(
            accounts,
            store=store,
            intake=self.intake
            if store is self.store
            else Intake(store, self.vault, matters(self.catalog)),
            ledger=ledger or self.ledger,
            catalog=self.catalog,
            sources=sources if sources is not None else self.sources(),
            config=config,
            workers=workers,
        )
        self._engines.append(engine)
        return engine

    def publish(
        self,
        on: date,
        summary: RunSummary | None = None,
        actions: DepartmentActions | None = None,
    ) -> list[str]:
        """Every proposed breach of the engine's department (or of `actions`'s) published on
        `on` by an officer's confirmation, as after its defence period: the breach records
        (added to `summary.breaches` too)."""
        acting = actions if actions is not None else self.engine.actions
        published: list[str] = []
        for notice in NoticeRecords(acting.store).listed(acting.code, "open"):
            published += confirm_breach(
                acting, notice.commitment_hash, on, "test officer", "confirmed", summary
            )
        return published

    def restarted(self, config: EngineConfig | None = None) -> VerificationEngine:
        """A fresh engine as after a process restart: new store handle, chain client, nonces."""
        chain = Chain(self.chain.w3, self.chain.kind, url=self.chain.url)
        ledger = LedgerContract(chain, self.ledger.address)
        store = Store(f"sqlite:///{self.db_path}")
        self._stores.append(store)
        return self.new_engine(config=config, ledger=ledger, store=store)

    def close(self) -> None:
        for engine in self._engines:
            engine.close()
        self._engines.clear()
        for store in self._stores:
            store.close()
        self._stores.clear()

    # ------------------------------------------------------------------ applicants

    def pick(self, kind: Planted, matter: str = POINTS) -> Commitment:
        """A fresh sample commitment to `matter` whose applicant's records are planted `kind`."""
        department = self.catalog.matter(matter).department
        samples = self._samples.get(department)
        if samples is None:
            samples = sample_commitments(10**6, seed=7, department=department)
            self._samples[department] = samples
        # Skipped samples are dropped: they were not wanted now and each applicant is used once.
        for commitment in samples:
            number = commitment.applicant.id_number
            if commitment.matter_code != matter or number in self._used:
                continue
            if planted(number) == kind:
                self._used.add(number)
                return commitment
        raise AssertionError(f"no sample applicant planted {kind} for {matter}")

    def again(self, commitment: Commitment) -> Commitment:
        """A new commitment by the same applicant to the same matter (fresh salt and code)."""
        serial = int(commitment.code[-6:]) + 500_000
        code = f"{commitment.code[:-6]}{serial % 1_000_000:06d}"
        return commitment.model_copy(update={"salt": new_salt(), "code": code})

    def sign(self, commitment: Commitment) -> SignedCommitment:
        signed = sign_commitment(commitment, self.applicant_key)
        self.signed[bytes(signed.hash())] = signed
        return signed

    def submit(self, commitments: Sequence[Commitment]) -> list[Hash32]:
        """Submit through intake (each must be acknowledged as new); their hashes."""
        documents = [self.sign(c).to_json_obj() for c in commitments]
        hashes = []
        for start in range(0, len(documents), 1000):
            for result in self.intake.submit_many(documents[start : start + 1000]):
                assert isinstance(result, Acknowledgement), result
                assert result.new
                hashes.append(result.hash)
        return hashes

    def anchor(self) -> None:
        """Anchor everything pending, each department with its own registrar."""
        registrars = {HRSS: self.deployment.registrar, SAMR: self.deployment.other_registrar}
        assert Anchorer(self.store, self.ledger, registrars).drain(ANCHOR_TIMEOUT)

    def commit(self, *commitments: Commitment) -> list[Hash32]:
        """Submit and anchor; their hashes."""
        hashes = self.submit(commitments)
        self.anchor()
        return hashes

    def commit_kind(self, kind: Planted, matter: str = POINTS) -> tuple[Hash32, Commitment]:
        """One anchored commitment of a fresh applicant planted `kind`."""
        commitment = self.pick(kind, matter)
        return self.commit(commitment)[0], commitment

    def fingerprint(self, commitment: Commitment) -> bytes:
        applicant = commitment.applicant
        return self.vault.fingerprint(applicant.id_type, applicant.id_number)

    # ------------------------------------------------------------------ the chain

    def status(self, commitment: Hash32) -> Status:
        stored = self.store.get(commitment)
        assert stored is not None, "not a commitment of this store"
        return self.ledger.status_of(department_id(stored.department), commitment).status

    def events_of(self, name: str) -> Counter[bytes]:
        """How many events `name` each commitment has on chain."""
        return Counter(bytes(e["args"]["commitment"]) for e in self.ledger.events(name))

    def outcome_events(self, commitment: Hash32) -> list[tuple[Status, Status]]:
        """(from, to) of every OutcomeRecorded event of `commitment`, in chain order."""
        return [
            (Status(e["args"]["from"]), Status(e["args"]["to"]))
            for e in self.ledger.events("OutcomeRecorded")
            if bytes(e["args"]["commitment"]) == commitment
        ]


@contextmanager
def open_world(chain: Chain, tmp_path: Path, **engine_options: Any) -> Iterator[World]:
    """A world on `chain`; the sample service runs until the block ends, engines are closed."""
    catalog = default_catalog()
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    vault = Vault(os.urandom(32))
    intake = Intake(store, vault, matters(catalog))
    deployment = deploy(chain)
    faults = Faults()
    with ExitStack() as stack:
        url = stack.enter_context(running(create_app(TOKEN, faults)))
        world = World(
            tmp_path=tmp_path,
            store=store,
            vault=vault,
            intake=intake,
            deployment=deployment,
            catalog=catalog,
            faults=faults,
            url=url,
            applicant_key=SigningKey.generate("ed25519"),
        )
        stack.callback(store.close)
        stack.callback(world.close)
        world.engine = world.new_engine(**engine_options)
        yield world
