"""`commitledger demo`: the whole story on the embedded chain, ending in the public breach list.

Applicants across the catalog's matters sign commitments; intake checks and seals them
into a temporary store under a fresh master key; the anchoring pipeline anchors one batch
per department; every proof is checked on chain and a tampered document is caught. Then
each department verifies against a sample data service on loopback (about 3% planted
mismatches, 1% false claims, 2% missing data; at any count at least two mismatches and
one false claim): one mismatch is rectified in time, the others become breaches once their
window has passed, one breach is repaired, and the public breach list closes the story.
Every breach is proposed first: its notice goes to the department's messaging gateway (a
stand-in here that takes every notice), and the lifecycle job publishes it when the
statement-and-defence period ended with no statement.
Chain, store and keys are ephemeral: nothing is kept.
"""

from __future__ import annotations

import secrets
import tempfile
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from api.cli import breach_row
from api.demo.sample_data import planted
from api.demo.sample_service import Signer, create_app, running
from api.demo.story_parts import (
    STATE_NAMES,
    Ledgerbook,
    Steps,
    documents_with_every_case,
    planted_cases,
    tamper_with,
)
from api.demo.story_print import print_summary, say
from api.errors import DemoError
from ledger import (
    REGISTRAR_ROLE,
    VERIFIER_ROLE,
    Acknowledgement,
    Anchorer,
    Chain,
    Hash32,
    Intake,
    LedgerContract,
    PipelineConfig,
    ProofBundle,
    SignatureError,
    SigningKey,
    Store,
    Vault,
    check_bundle,
    department_id,
    hex32,
    sign_commitment,
    stored_bundle,
    verify_signed,
)
from verifier import BreachRecord, default_catalog, earliest_repair, http_sources
from verifier.engine import (
    Department,
    EngineConfig,
    NoticeDeliverer,
    NoticeGateway,
    RunSummary,
    VerificationEngine,
    engine_for,
    run_lifecycle,
)
from verifier.records import MAX_PAGE_SIZE, NoticeRecords, Verification, VerifierRecords

# Sample records run to October 2026 and the samples are signed in early November 2026:
# verifying much later would compare with stale data.
VERIFY_ON = date(2026, 11, 27)
RECTIFIED_AFTER = timedelta(days=7)  # the transfer certificate arrives a week later
INTAKE_CHUNK = 250
ANCHOR_TIMEOUT_S = 300.0
# Scenario 1 of DOMAIN.md: points-based registration, a gap in social insurance, a
# transfer certificate supplied in time. The rectified mismatch is one of these if any.
RECTIFIED_MATTER = "BJ-HRSS-0001"
REPAIR_DECISION = "信用修复：当事人已纠正失信行为并作出信用承诺"  # credit repair granted
# Outcomes per transaction on the embedded chain (py-evm).
ENGINE_CONFIG = EngineConfig(outcomes_per_transaction=300)


@dataclass
class _Parties:
    """The governing office and, per department, a registrar and a verifier."""

    admin: LocalAccount
    registrars: dict[str, LocalAccount] = field(default_factory=dict)
    verifiers: dict[str, LocalAccount] = field(default_factory=dict)


def _deploy(chain: Chain, names: list[str]) -> tuple[LedgerContract, _Parties]:
    parties = _Parties(admin=Account.create())
    for name in names:
        parties.registrars[name] = Account.create()
        parties.verifiers[name] = Account.create()
    accounts = [parties.admin, *parties.registrars.values(), *parties.verifiers.values()]
    for account in accounts:
        chain.fund(account.address)
    ledger = LedgerContract.deploy(chain, parties.admin)
    for name in names:
        dept = department_id(name)
        admin = parties.admin
        ledger.grant_department_role(admin, REGISTRAR_ROLE, parties.registrars[name].address, dept)
        ledger.grant_department_role(admin, VERIFIER_ROLE, parties.verifiers[name].address, dept)
    return ledger, parties


def _bundle(store: Store, chain: Chain, ledger: LedgerContract, commitment: Hash32) -> ProofBundle:
    anchoring = store.anchoring_of(commitment)
    if anchoring is None:
        raise DemoError(f"{hex32(commitment)} was not anchored")
    return stored_bundle(commitment, anchoring, chain_id=chain.chain_id, contract=ledger.address)


def _add_runs(runs: list[RunSummary]) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    for run in runs:
        outcomes.update(run.outcomes)
    return {
        "examined": sum(r.examined for r in runs),
        "outcomes": dict(sorted(outcomes.items())),
        "recorded_on_chain": sum(r.recorded for r in runs),
        "breaches": [b for r in runs for b in r.breaches],
        "overdue_flagged": sum(r.overdue_flagged for r in runs),
    }


def _listed(records: VerifierRecords, on: date) -> set[str]:
    """The ids of the breach records on the public list on `on`."""
    ids: set[str] = set()
    page = 1
    while True:
        found = records.search_breaches(on, page=page, page_size=MAX_PAGE_SIZE)
        ids.update(record.id for record in found.records)
        if len(ids) >= found.total or not found.records:
            return ids
        page += 1


def _defend(
    engines: dict[str, VerificationEngine], store: Store, records: VerifierRecords, on: date
) -> tuple[int, list[str], date]:
    """The notices of the breaches proposed so far delivered on `on` (to a stand-in gateway
    that takes every one), then each department's lifecycle job the day after the last
    defence period ended: each is published, nobody having answered. How many were
    proposed, the records published, and that day."""
    notices = NoticeRecords(store)
    gateway = httpx.Client(transport=httpx.MockTransport(lambda _request: httpx.Response(202)))
    with gateway:
        deliverer = NoticeDeliverer(
            store,
            {name: NoticeGateway("https://gateway.invalid/notices") for name in engines},
            catalog=default_catalog(),
            calendar=next(iter(engines.values())).calendar,
            today=lambda: on,
            client=gateway,
        )
        deliverer.deliver()
    waiting = [n for name in engines for n in notices.listed(name, "open")]
    if not waiting:
        return 0, [], on
    last = max(notice.defence_by for notice in waiting)
    day = next(iter(engines.values())).calendar.add(last, 1).day  # the next working day
    before = _listed(records, day)
    for engine in engines.values():
        run_lifecycle(engine.actions, day)
    return len(waiting), sorted(_listed(records, day) - before), day


def _to_rectify(mismatches: list[Verification]) -> Verification | None:
    """The mismatch that is put right in time: scenario 1's if there is one."""
    if not mismatches:
        return None
    preferred = [v for v in mismatches if v.matter_code == RECTIFIED_MATTER]
    return (preferred or mismatches)[0]


def _to_repair(records: list[BreachRecord], today: date) -> tuple[BreachRecord, date] | None:
    """The breach repaired soonest (minor ones at once, others after their minimum period)."""
    candidates = sorted(
        (max(earliest_repair(record), record.decision_date, today), record.id, record)
        for record in records
    )
    if not candidates:
        return None
    repair_on, _, record = candidates[0]
    return record, repair_on


def run_demo(count: int, *, quiet: bool = False) -> dict[str, Any]:
    """Run the whole story and return its summary (also printed as tables unless `quiet`)."""
    catalog = default_catalog()
    names = catalog.departments()
    matters = catalog.intake_terms()
    steps = Steps(quiet)
    if not quiet:
        say(
            f"[bold]Commitment Ledger demo[/]: {count:,} applicants on the embedded chain, "
            "a temporary store under a fresh master key, a sample data service on loopback; "
            "all ephemeral, nothing is kept."
        )
    with ExitStack() as stack:
        stack.enter_context(steps.progress)
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="commitledger-demo-"))

        with steps.step("keys and deployment"):
            chain = Chain.embedded()
            book = Ledgerbook(chain)
            ledger, parties = _deploy(chain, names)
            book.close("setup")

        with steps.step("sign commitments", count) as advance:
            signed = []
            documents, forced = documents_with_every_case(count)
            for document in documents:
                signed.append(sign_commitment(document, SigningKey.generate("ed25519")))
                advance(1)

        with steps.step("intake: check, seal, store", count) as advance:
            store = Store(f"sqlite:///{workdir}/demo.db")
            stack.callback(store.close)
            # A fresh master key: the personal data die with this process.
            intake = Intake(store, Vault(secrets.token_bytes(32)), matters)
            hashes: list[Hash32] = []
            refused = 0
            for start in range(0, count, INTAKE_CHUNK):
                chunk = signed[start : start + INTAKE_CHUNK]
                for ack in intake.submit_many(chunk):
                    if isinstance(ack, Acknowledgement):
                        hashes.append(ack.hash)
                    else:
                        refused += 1
                advance(len(chunk))

        with steps.step("anchor one batch per department"):
            config = PipelineConfig(batch_size=count, max_age=0.0)
            if not Anchorer(store, ledger, parties.registrars, config).drain(ANCHOR_TIMEOUT_S):
                raise DemoError(f"the anchoring pipeline did not drain in {ANCHOR_TIMEOUT_S} s")
            book.close("anchoring")
            batches = store.batches_in("anchored")

        with steps.step("prove and check each", len(hashes)) as advance:
            bundles = []
            failures = 0
            for commitment in hashes:
                bundle = _bundle(store, chain, ledger, commitment)
                bundles.append(bundle)
                failures += not check_bundle(
                    bundle, chain, contract=ledger.address, chain_id=chain.chain_id
                ).ok
                advance(1)

        with steps.step("tamper with one document"):
            tampered = tamper_with(signed[0])
            try:
                verify_signed(tampered)
                signature_caught = False
            except SignatureError:
                signature_caught = True
            original = bundles[0]
            forged = ProofBundle(**{**original.__dict__, "commitment": tampered.hash()})
            tamper_report = check_bundle(
                forged, chain, contract=ledger.address, chain_id=chain.chain_id
            )

        with steps.step("verify against department data", len(hashes)) as advance:
            token = secrets.token_urlsafe(24)
            department_key = Signer()  # the sample department signs its answers
            url = stack.enter_context(running(create_app(token, signer=department_key)))
            engines: dict[str, VerificationEngine] = {}
            for name in names:
                accounts = Department(
                    name,
                    verifier=parties.verifiers[name],
                    report_key=SigningKey.generate("ed25519"),
                    registrar=parties.registrars[name],
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
                stack.callback(engine.close)
                engines[name] = engine
            first = [engine.run(VERIFY_ON, progress=advance) for engine in engines.values()]
            book.close("verification")
        records = next(iter(engines.values())).records
        first_states = records.states_of(hashes)

        with steps.step("rectify one mismatch in time"):
            mismatches = [v for n in names for v in records.open_mismatches_past(date.max, n)]
            rectified = _to_rectify(mismatches)
            rectification: dict[str, Any] | None = None
            if rectified is not None:
                assert rectified.rectify_by is not None
                rectified_on = min(VERIFY_ON + RECTIFIED_AFTER, rectified.rectify_by)
                engines[rectified.department].rectify(
                    rectified.commitment_hash,
                    rectified_on,
                    decided_by=f"{rectified.department} case officer",
                    note="transfer certificate supplied within the rectification window",
                )
                rectification = {
                    "commitment": hex32(rectified.commitment_hash),
                    "matter": rectified.matter_code,
                    "department": rectified.department,
                    "on": rectified_on.isoformat(),
                    "rectify_by": rectified.rectify_by.isoformat(),
                    "outcome": "kept",
                }
            book.close("rectification")

        with steps.step("notice and defence: false ones published"):
            proposed, published, today = _defend(engines, store, records, VERIFY_ON)
            published_on = today.isoformat()
            book.close("defence")

        with steps.step("overdue mismatches: breaches"):
            still_open = [v for n in names for v in records.open_mismatches_past(date.max, n)]
            overdue: dict[str, Any] | None = None
            if still_open:
                last = max(v.rectify_by or VERIFY_ON for v in still_open)
                today = engines[names[0]].calendar.add(last, 1).day  # the next working day
                later = [engine.run(today) for engine in engines.values()]
                overdue = {
                    "on": today.isoformat(),
                    "mismatches": len(still_open),
                    **_add_runs(later),
                }
                late_proposed, late_published, today = _defend(engines, store, records, today)
                overdue.update(
                    proposed=late_proposed, breaches=late_published, published_on=today.isoformat()
                )
            book.close("overdue breaches")

        with steps.step("repair one breach"):
            every = published + (overdue["breaches"] if overdue else [])
            breach_records = [r for r in map(records.breach, every) if r is not None]
            chosen = _to_repair(breach_records, today)
            repair: dict[str, Any] | None = None
            if chosen is not None:
                record, repair_on = chosen
                engines[record.department].repair(record.id, repair_on, REPAIR_DECISION)
                repair = {
                    "record": record.id,
                    "matter": record.matter_code,
                    "severity": record.severity,
                    "decided": record.decision_date.isoformat(),
                    "earliest_repair": earliest_repair(record).isoformat(),
                    "on": repair_on.isoformat(),
                }
                today = repair_on
            book.close("repair")

        listed: list[BreachRecord] = []
        page = 1
        while True:
            found = records.search_breaches(today, page=page, page_size=MAX_PAGE_SIZE)
            listed += found.records
            if len(listed) >= found.total or not found.records:
                break
            page += 1
        final_states = records.states_of(hashes)
        states = Counter(STATE_NAMES.get(state, state) for state in final_states.values())
        open_on_chain = ledger.open_breaches()

    verification = {"on": VERIFY_ON.isoformat(), **_add_runs(first)}
    verification.update(proposed=proposed, breaches=published, published_on=published_on)
    unsettled = states.get("mismatch", 0) + states.get("due", 0)
    summary: dict[str, Any] = {
        "ok": refused == 0
        and failures == 0
        and signature_caught
        and not tamper_report.ok
        and verification["examined"] == len(hashes)
        and not states.get("integrity_failure")
        and unsettled == 0
        and open_on_chain == len(listed),
        "ephemeral": True,
        "chain": {"kind": chain.kind, "chain_id": chain.chain_id, "contract": ledger.address},
        "commitments": count,
        "matters": dict(sorted(Counter(s.document.matter_code for s in signed).items())),
        "departments": dict(sorted(Counter(s.document.department for s in signed).items())),
        "planted": dict(
            sorted(Counter(planted(s.document.applicant.id_number) for s in signed).items())
        ),
        "planted_on_purpose": forced,
        "cases": planted_cases(signed, first_states, final_states),
        "intake": {"accepted": len(hashes), "refused": refused},
        "batches": [
            _batch_json(chain, batch.department, batch.size, batch.root, batch.tx_hash)
            for batch in batches
        ],
        "proofs_checked": len(bundles),
        "proofs_failed": failures,
        "tamper": {
            "signature_rejected": signature_caught,
            "anchor_check_failed": not tamper_report.ok,
            "failed_checks": [c.name for c in tamper_report.checks if not c.ok],
        },
        "verification": verification,
        "rectification": rectification,
        "overdue": overdue,
        "repair": repair,
        "outcomes": dict(sorted(states.items())),
        "transactions": book.totals(),
        "breaches": {
            "on": today.isoformat(),
            "listed": len(listed),
            "open_on_chain": open_on_chain,
            "records": [breach_row(record) for record in listed],
        },
        "seconds": {name: round(s, 3) for name, s in steps.seconds.items()},
    }
    if not quiet:
        print_summary(summary)
    return summary


def _batch_json(
    chain: Chain, department: str, size: int, root: Hash32, tx_hash: bytes | None
) -> dict[str, Any]:
    assert tx_hash is not None
    receipt = chain.receipt(tx_hash)
    assert receipt is not None
    gas = int(receipt["gasUsed"])
    return {
        "department": department,
        "size": size,
        "root": hex32(root),
        "transaction": hex32(tx_hash),
        "block": int(receipt["blockNumber"]),
        "gas_used": gas,
        "gas_per_commitment": round(gas / size, 1),
    }
