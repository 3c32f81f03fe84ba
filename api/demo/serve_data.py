"""`commitledger serve --demo`: a data directory filled so a newcomer sees the service at once.

On an empty data directory: a master key and every catalog department's keys are created,
(the managed chain deploys and grants roles with them), a few hundred sample commitments
are signed, taken in and anchored, and each department verifies them against the sample
data service on the demo's verification day; the false ones, proposed and notified, are
published as breaches by the demo's case officer's confirmation.
The data stay: a later `serve --demo` finds them, and the demo's two tokens too: they are
kept (0600) in the data directory's demo-tokens.json and printed again while they are valid,
so a restart neither changes them nor leaves a trail of live ones behind.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from api.demo.sample_service import Signer, create_app, running
from api.demo.samples import sample_commitments
from api.demo.story import ANCHOR_TIMEOUT_S, ENGINE_CONFIG, VERIFY_ON
from api.errors import DemoError
from api.files import read_deployment
from api.keyfiles import load_master_key, new_key
from api.managed_chain import STATE_FILE
from api.service import ADMIN_KEY_FILE, DepartmentKeys, Settings, TokenStore, key_unlock
from ledger import (
    Acknowledgement,
    Anchorer,
    Chain,
    Intake,
    LedgerContract,
    PipelineConfig,
    SigningKey,
    Store,
    sign_commitment,
)
from verifier import default_catalog, http_sources
from verifier.engine import Department, VerificationEngine, confirm_breach, engine_for
from verifier.records import NoticeRecords

DEMO_COMMITMENTS = 400  # the sample data plant 5 false commitments among these
DEMO_DEPARTMENT = "BJ-HRSS"  # the tokens printed are this department's
MASTER_KEY_FILE = "master.key"
DEMO_TOKENS_FILE = "demo-tokens.json"
_DEMO_ROLES = ("registrar", "verifier")


@dataclass(frozen=True)
class DemoFacts:
    """What the demo loaded (zero when the data were there already) and the tokens issued."""

    commitments: int
    breaches: int
    department: str
    registrar_token: str
    verifier_token: str
    tokens_kept: bool = False  # the tokens of an earlier start, still valid


def demo_refusal(settings: Settings) -> str | None:
    """Why `serve --demo` must not use this data directory (made by something else), with
    what to do; None when it is empty or the demo's own."""
    folder = settings.data_dir
    other = f"run the demo in a directory of its own (`--data-dir demo-data`) or move {folder} away"
    deployment = settings.resolved_deployment_file
    if settings.chain == "anvil" and deployment.exists():
        if not (settings.resolved_keys_dir / ADMIN_KEY_FILE).is_file():
            return (
                f"{deployment} was not written by the demo's managed chain (by `commitledger "
                "deploy`?): the anvil the demo starts would not hold its contract; " + other
            )
        if not (folder / STATE_FILE).is_file():
            return (
                f"the managed chain's state ({folder / STATE_FILE}) is gone, so its contract "
                f"in {deployment} is too; " + other
            )
    master = settings.master_key_file or folder / MASTER_KEY_FILE
    store = settings.resolved_store_url
    has_store = store.startswith("sqlite:///") and Path(store.removeprefix("sqlite:///")).exists()
    if settings.master_key is None and not master.exists() and has_store:
        return (
            f"the store {store.split('://')[0]} of {folder} was made with a master key that is "
            f"not there ({master}): a new one could not read it; give it with "
            "--master-key-file, or " + other
        )
    return None


def prepare_keys(settings: Settings) -> Settings:
    """The master key and every catalog department's keys, created where missing; the
    settings with the master key file set. DemoError, before anything is written, when
    the data directory was made by something else."""
    refusal = demo_refusal(settings)
    if refusal is not None:
        raise DemoError(f"serve --demo: {refusal}")
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    master = settings.master_key_file or settings.data_dir / MASTER_KEY_FILE
    if not master.exists() and settings.master_key is None:
        new_key("master", master, key_unlock(settings))  # clear without a passphrase
    keys = DepartmentKeys.from_settings(settings, default_catalog().departments())
    for department in sorted(keys.departments):
        keys.create(department)
    if settings.master_key is not None:
        return settings
    return settings.model_copy(update={"master_key_file": master})


def load_demo(settings: Settings, chain: Chain | None, count: int = DEMO_COMMITMENTS) -> DemoFacts:
    """Fill an empty store (sign, take in, anchor, verify); issue one department's tokens."""
    store = Store(settings.resolved_store_url)
    try:
        loaded = breaches = 0
        held = store.status()  # counts every commitment: asked once
        if held.pending + held.anchored + held.in_flight == 0:
            loaded, breaches = _fill(settings, store, chain, count)
        tokens, kept = demo_tokens(settings.data_dir / DEMO_TOKENS_FILE, TokenStore(store))
    finally:
        store.close()
    return DemoFacts(loaded, breaches, DEMO_DEPARTMENT, *tokens, tokens_kept=kept)


def demo_tokens(path: Path, tokens: TokenStore) -> tuple[tuple[str, str], bool]:
    """The demo's registrar and verifier tokens: those of `path` while the store still
    accepts them; else new ones, saved there (0600) and the old ones revoked."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        saved = {}
    saved = saved if isinstance(saved, dict) else {}
    found = {role: tokens.lookup(str(saved.get(role, ""))) for role in _DEMO_ROLES}
    if all(p is not None and p.role == role for role, p in found.items()):
        return (saved["registrar"], saved["verifier"]), True
    for role in _DEMO_ROLES:
        if isinstance(saved.get(role), str):
            tokens.revoke(saved[role])  # one of the pair is gone: the pair is replaced
    fresh = {role: tokens.issue(DEMO_DEPARTMENT, role).token for role in _DEMO_ROLES}
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(fresh, indent=2) + "\n")
    return (fresh["registrar"], fresh["verifier"]), False


def _fill(settings: Settings, store: Store, chain: Chain | None, count: int) -> tuple[int, int]:
    catalog = default_catalog()
    record = read_deployment(settings.resolved_deployment_file)
    chain = chain or Chain.connect(settings.chain_rpc_url or str(record["rpc"]), kind="anvil")
    ledger = LedgerContract(chain, str(record["contract"]))
    keys = DepartmentKeys.from_settings(settings, catalog.departments())
    assert settings.master_key_file is not None
    vault = load_master_key(settings.master_key_file, key_unlock(settings))
    intake = Intake(store, vault, catalog.intake_terms())
    try:
        signed = [
            sign_commitment(document, SigningKey.generate("ed25519"))
            for document in sample_commitments(count)
        ]
        accepted = [a for a in intake.submit_many(signed) if isinstance(a, Acknowledgement)]
        config = PipelineConfig(batch_size=count, max_age=0.0)
        if not Anchorer(store, ledger, keys.registrars(), config).drain(ANCHOR_TIMEOUT_S):
            raise DemoError(f"the demo's commitments were not anchored in {ANCHOR_TIMEOUT_S} s")
        token = secrets.token_urlsafe(24)
        breaches = 0
        department_key = Signer()  # the sample department signs its answers
        with running(create_app(token, signer=department_key)) as url:
            for department in sorted(keys.departments):
                accounts = Department(
                    department,
                    verifier=keys.account(department, "verifier"),
                    report_key=keys.report_key(department),
                    registrar=keys.account(department, "registrar"),
                )
                engine = engine_for(
                    accounts,
                    store=store,
                    intake=intake,
                    ledger=ledger,
                    catalog=catalog,
                    sources=http_sources(catalog, url, token, key=department_key.public),
                    config=ENGINE_CONFIG,
                )
                try:
                    engine.run(VERIFY_ON)
                    breaches += _confirm_proposed(engine, store, department)
                finally:
                    engine.close()
    finally:
        intake.close()
    return len(accepted), breaches


def _confirm_proposed(engine: VerificationEngine, store: Store, department: str) -> int:
    """The breaches the run proposed (each applicant notified), published by the demo's case
    officer's confirmation (issue #14: nothing is published by the engine alone)."""
    published = 0
    for notice in NoticeRecords(store).listed(department, "open"):
        published += len(
            confirm_breach(
                engine.actions,
                notice.commitment_hash,
                VERIFY_ON,
                f"{department} case officer (demo)",
                "demo data: the finding stands",
            )
        )
    return published
