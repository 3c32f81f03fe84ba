"""`commitledger demo`: the whole story on the embedded chain, ending in the public breach list.

Applicants across the catalog's matters sign commitments; intake checks and seals them
into a temporary store under a fresh master key; the anchoring pipeline anchors one batch
per department; every proof is checked on chain and a tampered document is caught. Then
each department verifies against a sample data service on loopback (about 3% planted
mismatches, 1% false claims, 2% missing data): one mismatch is rectified in time, the
others become breaches once their window has passed, one breach is repaired, and the
public breach list closes the story. Chain, store and keys are ephemeral: nothing is kept.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.table import Table

from api.cli.store import catalog_departments
from api.cli.verify import breach_row, breach_table, progress_bar
from api.demo.sample_data import planted
from api.demo.sample_service import create_app, running
from api.demo.samples import sample_commitments
from api.errors import DemoError
from api.output import console
from ledger import (
    REGISTRAR_ROLE,
    VERIFIER_ROLE,
    Chain,
    Claim,
    LedgerContract,
    ProofBundle,
    SignatureError,
    SignedCommitment,
    SigningKey,
    check_bundle,
    department_id,
    hex32,
    sign_commitment,
    verify_signed,
)
from ledger.anchoring_pipeline import Anchorer, PipelineConfig
from ledger.intake import Acknowledgement, Intake
from ledger.proofs import stored_bundle
from ledger.store import Store
from ledger.types import Hash32
from ledger.vault import Vault
from verifier import default_catalog
from verifier.breaches import BreachRecord, earliest_repair
from verifier.engine.run import (
    Department,
    EngineConfig,
    RunSummary,
    VerificationEngine,
    engine_for,
)
from verifier.records.facade import MAX_PAGE_SIZE, Verification
from verifier.sources import http_sources

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
STATE_NAMES = {"manual": "needs_manual"}
SHOWN_BREACHES = 20  # one page of the public portal
# Outcomes per transaction on the embedded chain (py-evm).
ENGINE_CONFIG = EngineConfig(outcomes_per_transaction=300)


class _Steps:
    """Times each step of the demo and drives one progress bar per long step."""

    def __init__(self, quiet: bool) -> None:
        self.seconds: dict[str, float] = {}
        self.progress = progress_bar(disabled=quiet)

    @contextmanager
    def step(self, name: str, total: int = 1) -> Iterator[Callable[[int], None]]:
        task = self.progress.add_task(name, total=total)
        started = time.perf_counter()

        def advance(n: int) -> None:
            self.progress.advance(task, n)

        yield advance
        self.progress.update(task, completed=total)
        self.seconds[name] = time.perf_counter() - started


class _Ledgerbook:
    """Transactions and gas per phase of the story, read from the chain's blocks."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.phases: dict[str, dict[str, int]] = {}
        self._last = chain.block_number()

    def close(self, phase: str) -> None:
        head = self.chain.block_number()
        transactions = gas = 0
        for number in range(self._last + 1, head + 1):
            block = self.chain.w3.eth.get_block(number)
            transactions += len(block["transactions"])
            gas += int(block["gasUsed"])
        self.phases[phase] = {"transactions": transactions, "gas_used": gas}
        self._last = head

    def totals(self) -> dict[str, dict[str, int]]:
        total = {
            "transactions": sum(p["transactions"] for p in self.phases.values()),
            "gas_used": sum(p["gas_used"] for p in self.phases.values()),
        }
        return {**self.phases, "total": total}


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


def _tampered(signed: SignedCommitment) -> SignedCommitment:
    """The same document with its first claim's value changed, signature kept."""
    document = signed.document
    first = document.claims[0]
    changed = Claim(key=first.key, op=first.op, value=_other_value(first.value))
    claims = [changed, *document.claims[1:]]
    return SignedCommitment(
        document=document.model_copy(update={"claims": claims}), signature=signed.signature
    )


def _other_value(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value - 36 if value > 36 else value + 1
    if isinstance(value, list):
        return value[:-1] or ["none"]
    return f"{value}-changed"


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
    matters = catalog_departments(catalog)
    steps = _Steps(quiet)
    if not quiet:
        console.print(
            f"[bold]Commitment Ledger demo[/]: {count:,} applicants on the embedded chain, "
            "a temporary store under a fresh master key, a sample data service on loopback; "
            "all ephemeral, nothing is kept."
        )
    with ExitStack() as stack:
        stack.enter_context(steps.progress)
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="commitledger-demo-"))

        with steps.step("keys and deployment"):
            chain = Chain.embedded()
            book = _Ledgerbook(chain)
            ledger, parties = _deploy(chain, names)
            book.close("setup")

        with steps.step("sign commitments", count) as advance:
            signed = []
            for document in sample_commitments(count):
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
            tampered = _tampered(signed[0])
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
            url = stack.enter_context(running(create_app(token)))
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
                    sources=http_sources(catalog, url, token),
                    config=ENGINE_CONFIG,
                )
                stack.callback(engine.close)
                engines[name] = engine
            first = [engine.run(VERIFY_ON, progress=advance) for engine in engines.values()]
            book.close("verification")
        records = next(iter(engines.values())).records

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

        with steps.step("overdue mismatches: breaches"):
            still_open = [v for n in names for v in records.open_mismatches_past(date.max, n)]
            today = VERIFY_ON
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
            book.close("overdue breaches")

        with steps.step("repair one breach"):
            published = [b for run in first for b in run.breaches]
            published += overdue["breaches"] if overdue else []
            breach_records = [r for r in map(records.breach, published) if r is not None]
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
        states = Counter(
            STATE_NAMES.get(state, state) for state in records.states_of(hashes).values()
        )
        open_on_chain = ledger.open_breaches()

    verification = {"on": VERIFY_ON.isoformat(), **_add_runs(first)}
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
        _print_summary(summary)
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


# ---------------------------------------------------------------------- for people


def _print_summary(summary: dict[str, Any]) -> None:
    console.print(_matters_table(summary))
    console.print(_anchoring_table(summary))
    console.print(_story_table(summary))
    console.print(_outcomes_table(summary))
    console.print(_gas_table(summary))
    breaches = summary["breaches"]
    title = (
        f"Public breach list on {breaches['on']} ({breaches['listed']} listed, "
        f"{breaches['open_on_chain']} open on chain)"
    )
    table = breach_table(breaches["records"][:SHOWN_BREACHES], title, compact=True)
    hidden = len(breaches["records"]) - SHOWN_BREACHES
    if hidden > 0:
        table.caption = f"and {hidden} more (all of them with --json)"
    console.print(table)
    timing = Table(title="Where the time went")
    timing.add_column("step")
    timing.add_column("seconds", justify="right")
    for name, seconds in summary["seconds"].items():
        timing.add_row(name, f"{seconds:.2f}")
    console.print(timing)
    console.print(
        "[dim]Everything above was ephemeral: the embedded chain, the temporary store and "
        "its master key are gone.[/]"
    )


def _matters_table(summary: dict[str, Any]) -> Table:
    catalog = default_catalog()
    table = Table(title="Commitments signed, by matter")
    table.add_column("matter")
    table.add_column("name")
    table.add_column("department")
    table.add_column("count", justify="right")
    for code, n in summary["matters"].items():
        matter = catalog.matter(code)
        table.add_row(code, f"{matter.name} ({matter.name_en})", matter.department, str(n))
    planted_shares = ", ".join(f"{kind} {n}" for kind, n in summary["planted"].items())
    table.caption = f"the sample data service planted: {planted_shares}"
    return table


def _anchoring_table(summary: dict[str, Any]) -> Table:
    table = Table(title="Anchored on the embedded chain (ephemeral)", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("contract", summary["chain"]["contract"])
    intake = summary["intake"]
    table.add_row(
        "intake", f"{intake['accepted']} sealed into a temporary store, {intake['refused']} refused"
    )
    for batch in summary["batches"]:
        table.add_row(
            f"batch {batch['department']}",
            f"{batch['size']} commitments, Merkle root {batch['root']}\n"
            f"tx {batch['transaction']} (block {batch['block']}), "
            f"{batch['gas_used']:,} gas, {batch['gas_per_commitment']} per commitment",
        )
    proved = summary["proofs_checked"] - summary["proofs_failed"]
    table.add_row("proofs checked", f"{proved} of {summary['proofs_checked']} verified on chain")
    tamper = summary["tamper"]
    table.add_row(
        "tampered document",
        "signature rejected; anchor check failed (" + ", ".join(tamper["failed_checks"]) + ")"
        if tamper["signature_rejected"] and tamper["anchor_check_failed"]
        else "[red]NOT detected[/]",
    )
    return table


def _story_table(summary: dict[str, Any]) -> Table:
    table = Table(title="Verification, rectification, breaches, repair")
    table.add_column("day")
    table.add_column("step")
    table.add_column("what happened", overflow="fold")
    first = summary["verification"]
    found = ", ".join(f"{k} {v}" for k, v in first["outcomes"].items())
    table.add_row(
        first["on"],
        "verification",
        f"{first['examined']} checked against department data: {found}; "
        f"{len(first['breaches'])} false commitments published as breaches",
    )
    rectification = summary["rectification"]
    if rectification is not None:
        table.add_row(
            rectification["on"],
            "rectification",
            f"{rectification['commitment'][:18]}... ({rectification['matter']}): evidence "
            f"supplied before {rectification['rectify_by']}, mismatch kept",
        )
    overdue = summary["overdue"]
    if overdue is not None:
        table.add_row(
            overdue["on"],
            "overdue",
            f"{overdue['mismatches']} mismatches past their rectification window: "
            f"{len(overdue['breaches'])} breaches published",
        )
    repair = summary["repair"]
    if repair is not None:
        table.add_row(
            repair["on"],
            "repair",
            f"{repair['record']} ({repair['matter']}, {repair['severity']}, decided "
            f"{repair['decided']}, repairable from {repair['earliest_repair']}): off the "
            "public list, its history stays on chain",
        )
    return table


def _outcomes_table(summary: dict[str, Any]) -> Table:
    table = Table(title="Where every commitment ended")
    table.add_column("outcome")
    table.add_column("commitments", justify="right")
    for outcome, n in summary["outcomes"].items():
        table.add_row(outcome, f"{n:,}")
    return table


def _gas_table(summary: dict[str, Any]) -> Table:
    table = Table(title="Transactions and gas")
    table.add_column("phase")
    table.add_column("transactions", justify="right")
    table.add_column("gas", justify="right")
    for phase, figures in summary["transactions"].items():
        table.add_row(phase, f"{figures['transactions']:,}", f"{figures['gas_used']:,}")
    return table
