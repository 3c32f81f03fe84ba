"""`commitledger demo`: keys, deploy, sign, anchor one batch, prove every commitment, tamper one."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from eth_account import Account
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ledger import (
    REGISTRAR_ROLE,
    VERIFIER_ROLE,
    Chain,
    Claim,
    LedgerContract,
    SignatureError,
    SignedCommitment,
    SigningKey,
    anchor_batch,
    check_and_hash,
    check_bundle,
    department_id,
    hex32,
    sign_commitment,
    verify_signed,
)
from verifier import default_catalog, sample_commitments

from .output import console

DEMO_DEPARTMENTS = ("BJ-HRSS", "BJ-SAMR")


class _Steps:
    """Times each step of the demo and drives one progress bar per long step."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.seconds: dict[str, float] = {}
        self.progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=quiet,
        )

    @contextmanager
    def step(self, name: str, total: int = 1) -> Iterator[Callable[[int], None]]:
        task = self.progress.add_task(name, total=total)
        started = time.perf_counter()

        def advance(n: int) -> None:
            self.progress.advance(task, n)

        yield advance
        self.progress.update(task, completed=total)
        self.seconds[name] = time.perf_counter() - started


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


def run_demo(count: int, *, quiet: bool = False) -> dict[str, Any]:
    """Run the demo and return its summary (also printed as tables unless `quiet`)."""
    steps = _Steps(quiet)
    with steps.progress:
        with steps.step("keys and deployment"):
            chain = Chain.embedded()
            admin, registrar, verifier = (Account.create() for _ in range(3))
            for account in (admin, registrar, verifier):
                chain.fund(account.address)
            ledger = LedgerContract.deploy(chain, admin)
            hrss = department_id("BJ-HRSS")
            ledger.grant_department_role(admin, REGISTRAR_ROLE, registrar.address, hrss)
            ledger.grant_department_role(admin, VERIFIER_ROLE, verifier.address, hrss)
        with steps.step("sign commitments", count) as advance:
            signed = []
            for document in sample_commitments(count, department="BJ-HRSS"):
                signed.append(sign_commitment(document, SigningKey.generate("ed25519")))
                advance(1)
        with steps.step("check signatures and hash", count) as advance:
            hashes = check_and_hash(signed, advance)
        with steps.step("anchor one batch"):
            receipt = anchor_batch(ledger, registrar, hashes)
        with steps.step("prove and check each", count) as advance:
            failures = 0
            for bundle in receipt.bundles:
                failures += not check_bundle(bundle, chain).ok
                advance(1)
        with steps.step("tamper with one document"):
            tampered = _tampered(signed[0])
            try:
                verify_signed(tampered)
                signature_caught = False
            except SignatureError:
                signature_caught = True
            original = receipt.bundles[0]
            forged = type(original)(**{**original.__dict__, "commitment": tampered.hash()})
            tamper_report = check_bundle(forged, chain)
    matters = Counter(s.document.matter_code for s in signed)
    summary: dict[str, Any] = {
        "ok": failures == 0 and signature_caught and not tamper_report.ok,
        "chain": {"kind": chain.kind, "chain_id": chain.chain_id, "contract": ledger.address},
        "commitments": count,
        "matters": dict(sorted(matters.items())),
        "batch": {
            "root": hex32(receipt.root),
            "transaction": hex32(receipt.tx_hash),
            "block": receipt.block_number,
            "gas_used": receipt.gas_used,
            "gas_per_commitment": round(receipt.gas_used / count, 1),
        },
        "proofs_checked": count,
        "proofs_failed": failures,
        "tamper": {
            "signature_rejected": signature_caught,
            "anchor_check_failed": not tamper_report.ok,
            "failed_checks": [c.name for c in tamper_report.checks if not c.ok],
        },
        "seconds": {name: round(s, 3) for name, s in steps.seconds.items()},
    }
    if not quiet:
        _print_summary(summary)
    return summary


def _print_summary(summary: dict[str, Any]) -> None:
    catalog = default_catalog()
    matters = Table(title="Commitments signed, by matter")
    matters.add_column("matter")
    matters.add_column("name")
    matters.add_column("count", justify="right")
    for code, n in summary["matters"].items():
        matter = catalog.matter(code)
        matters.add_row(code, f"{matter.name} ({matter.name_en})", str(n))
    console.print(matters)

    batch = summary["batch"]
    facts = Table(title="Anchored on the embedded chain (ephemeral)", show_header=False)
    facts.add_column("what")
    facts.add_column("value")
    facts.add_row("contract", summary["chain"]["contract"])
    facts.add_row("Merkle root", batch["root"])
    facts.add_row("transaction", f"{batch['transaction']} (block {batch['block']})")
    facts.add_row(
        "gas", f"{batch['gas_used']:,} in all, {batch['gas_per_commitment']} per commitment"
    )
    proved = summary["proofs_checked"] - summary["proofs_failed"]
    facts.add_row("proofs checked", f"{proved} of {summary['proofs_checked']} verified on chain")
    tamper = summary["tamper"]
    facts.add_row(
        "tampered document",
        "signature rejected; anchor check failed (" + ", ".join(tamper["failed_checks"]) + ")"
        if tamper["signature_rejected"] and tamper["anchor_check_failed"]
        else "[red]NOT detected[/]",
    )
    console.print(facts)

    timing = Table(title="Where the time went")
    timing.add_column("step")
    timing.add_column("seconds", justify="right")
    for name, seconds in summary["seconds"].items():
        timing.add_row(name, f"{seconds:.2f}")
    console.print(timing)
