"""The demo's story for people, on stdout: tables that fit the terminal, each case explained."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from api.cli import breach_table, terminal_safe
from api.output import stdout
from verifier import default_catalog

SHOWN_BREACHES = 20  # one page of the public portal
WIDE = 100  # columns from which the tables show everything

# What the first verification's state means for each planted case.
FIRST_WHY = {
    ("agree", "kept"): "the department's data agree",
    ("mismatch", "mismatch"): "short of a claim: a window to rectify first",
    ("false", "proposed"): "flatly contradicted: a breach proposed, the applicant notified; "
    "published when the defence period ended unanswered",
    ("false", "mismatch"): "the claim they contradict is one the catalog lets an applicant "
    "rectify (on_disagree: mismatch), so a window first",
    ("missing", "needs_manual"): "no record in the main source: left to a case officer, "
    "never a breach",
}
# Where a case that went through a rectification window ended.
FINAL_WHY = {
    "kept": "rectified in time",
    "breached": "breach published",
    "mismatch": "still in their window",
    "needs_manual": "with a case officer",
}


def say(*renderables: Any) -> None:
    """Print on stdout, wrapped to the terminal's width."""
    stdout.print(*renderables, soft_wrap=False)


def print_summary(summary: dict[str, Any]) -> None:
    """The whole summary as tables, sized to the terminal (80 columns is enough)."""
    wide = stdout.width >= WIDE
    say(_matters_table(summary, wide))
    say(_cases_table(summary))
    say(_anchoring_table(summary, wide))
    say(_story_table(summary))
    say(_outcomes_table(summary))
    say(_gas_table(summary))
    breaches = summary["breaches"]
    title = (
        f"Public breach list on {breaches['on']} ({breaches['listed']} listed, "
        f"{breaches['open_on_chain']} open on chain)"
    )
    shown = breaches["records"][:SHOWN_BREACHES]
    table = breach_table(shown, title, compact=True) if wide else _narrow_breaches(shown, title)
    hidden = len(breaches["records"]) - SHOWN_BREACHES
    if hidden > 0:
        table.caption = f"and {hidden} more (all of them with --json)"
    say(table)
    timing = Table(title="Where the time went", min_width=32)
    timing.add_column("step")
    timing.add_column("seconds", justify="right")
    for name, seconds in summary["seconds"].items():
        timing.add_row(name, f"{seconds:.2f}")
    say(timing)
    say(
        "[dim]Everything above was ephemeral: the embedded chain, the temporary store and "
        "its master key are gone.[/]"
    )


def case_story(kind: str, case: dict[str, Any]) -> str:
    """One planted case in words: what the first verification found and why, and where
    the ones given a window ended (so `false 11` and then `false 4` add up)."""
    found = []
    for state, n in sorted(case["first"].items(), key=lambda item: -item[1]):
        why = FIRST_WHY.get((kind, state))
        found.append(f"{n} {state}" + (f" ({why})" if why else ""))
    text = "; ".join(found)
    windowed = case["first"].get("mismatch", 0)
    if windowed:
        ended = case["final"].copy()
        proposed_first = case["first"].get("breached", 0) + case["first"].get("proposed", 0)
        ended["breached"] = ended.get("breached", 0) - proposed_first
        fates = [
            f"{n} {FINAL_WHY.get(state, state)}"
            for state, n in sorted(ended.items(), key=lambda item: -item[1])
            if n > 0
        ]
        text += f"; of the {windowed} given a window: " + ", ".join(fates)
    return text


def _cases_table(summary: dict[str, Any]) -> Table:
    table = Table(title="What the sample data planted, and what became of it")
    table.add_column("case")
    table.add_column("n", justify="right")
    table.add_column("what verification found, and what happened next", overflow="fold")
    for kind, case in summary["cases"].items():
        table.add_row(kind, str(case["planted"]), case_story(kind, case))
    forced = summary.get("planted_on_purpose", 0)
    if forced:
        table.caption = (
            f"{forced} of these were picked on purpose, so that even {summary['commitments']} "
            "commitments show a rectification, a breach and a repair"
        )
    return table


def _short(value: str) -> str:
    return f"{value[:10]}…{value[-8:]}"


def _matters_table(summary: dict[str, Any], wide: bool) -> Table:
    catalog = default_catalog()
    table = Table(title="Commitments signed, by matter")
    table.add_column("matter", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("dept." if not wide else "department", no_wrap=True)
    table.add_column("n", justify="right")
    for code, n in summary["matters"].items():
        matter = catalog.matter(code)
        name = f"{matter.name} ({matter.name_en})" if wide else matter.name
        table.add_row(code, name, matter.department, str(n))
    return table


def _anchoring_table(summary: dict[str, Any], wide: bool) -> Table:
    shown = (lambda value: value) if wide else _short
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
            f"{batch['size']} commitments, Merkle root {shown(batch['root'])}\n"
            f"tx {shown(batch['transaction'])} (block {batch['block']}), "
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
    table.add_column("day", no_wrap=True)
    table.add_column("step", no_wrap=True)
    table.add_column("what happened", overflow="fold")
    first = summary["verification"]
    found = ", ".join(f"{k} {v}" for k, v in first["outcomes"].items())
    table.add_row(
        first["on"],
        "verification",
        f"{first['examined']} checked against department data: {found}; "
        f"{first['proposed']} false commitments proposed as breaches, each applicant notified",
    )
    if first["proposed"]:
        table.add_row(
            first["published_on"],
            "defence ended",
            f"no statement within the defence period: {len(first['breaches'])} breaches "
            "published by the lifecycle job",
        )
    rectification = summary["rectification"]
    if rectification is not None:
        table.add_row(
            rectification["on"],
            "rectified",
            f"{rectification['commitment'][:18]}… ({rectification['matter']}): evidence "
            f"supplied before {rectification['rectify_by']}, mismatch kept",
        )
    overdue = summary["overdue"]
    if overdue is not None:
        table.add_row(
            overdue["on"],
            "overdue",
            f"{overdue['mismatches']} mismatches past their rectification window: "
            f"{overdue['proposed']} breaches proposed, each applicant notified",
        )
        table.add_row(
            overdue["published_on"],
            "defence ended",
            f"no statement within the defence period: {len(overdue['breaches'])} breaches "
            "published by the lifecycle job",
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
    table = Table(title="Where every commitment ended", min_width=32)
    table.add_column("outcome")
    table.add_column("commitments", justify="right")
    for outcome, n in summary["outcomes"].items():
        table.add_row(outcome, f"{n:,}")
    return table


def _gas_table(summary: dict[str, Any]) -> Table:
    table = Table(title="Transactions and gas", min_width=32)
    table.add_column("phase")
    table.add_column("transactions", justify="right")
    table.add_column("gas", justify="right")
    for phase, figures in summary["transactions"].items():
        table.add_row(phase, f"{figures['transactions']:,}", f"{figures['gas_used']:,}")
    return table


def _narrow_breaches(rows: list[dict[str, Any]], title: str) -> Table:
    """The public breach list in 80 columns: the party, the matter, severity and dates."""
    table = Table(title=title)
    for column in ("party", "matter", "severity", "decided", "listed until"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        cells = (
            row["party_name"],
            row["matter_code"],
            row["severity"],
            row["decision_date"],
            row["publication_end"],
        )
        table.add_row(*(terminal_safe(cell) for cell in cells))
    return table
