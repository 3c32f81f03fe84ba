"""`commitledger worklist NAME`: one page of a department's work list, read from the store
the service uses (awaiting-decision, rectification, defence, appeals, manual, refused,
overdue), as lines, one JSON document (`--json`) or CSV with a byte-order mark (`--csv`).

Rows carry hashes, codes, dates and states only. Exits 2 for a bad option (an unknown
list, sort key, day or page), 1 for the rest.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated, Any

import typer

from api.cli.config import ConfigOpt, DataDirOpt
from api.output import emit_json, fail, reporting_errors, stdout

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def register(app: typer.Typer) -> None:
    """Add `worklist NAME` to the command line."""
    app.command("worklist")(worklist)


def _day(text: str | None, option: str, as_json: bool) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option} is a day like 2026-12-31, not {text[:20]!r}", as_json=as_json)


def _line(item: dict[str, Any]) -> str:
    left = "" if item["left"] is None else f" {item['left']:+g} {item['left_unit']}"
    late = " LATE" if item["late"] else ""
    extra = "".join(f" {item[k]}" for k in ("reference", "note") if item[k])
    return (
        f"{item['commitment_hash']} {item['matter_code']} {item['status']}{late} "
        f"due {item['due'] or '-'}{left}{extra}"
    )


def worklist(
    name: Annotated[
        str,
        typer.Argument(
            help="awaiting-decision, rectification, defence, appeals, manual, refused, overdue"
        ),
    ],
    department: Annotated[str, typer.Option("--department", help="The department's code.")],
    matter: Annotated[str | None, typer.Option("--matter", help="One matter's code.")] = None,
    late: Annotated[bool, typer.Option("--late", help="Only rows past their deadline.")] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Deadline (received: decisions) from this day.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="... to this day.")] = None,
    sort: Annotated[str | None, typer.Option("--sort", help="One of the list's keys.")] = None,
    desc: Annotated[bool, typer.Option("--desc", help="Latest first.")] = False,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Rows to skip.")] = 0,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=500, help="Rows on the page (at most 500).")
    ] = 50,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the page as CSV.")] = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One page of the department's work list: what waits, until when, how late."""
    from api.service import Settings
    from ledger import Store
    from verifier import OfficeHours, configure_catalog_dir, default_catalog
    from verifier.records import WorkListError, WorkLists

    start, end = _day(since, "--since", as_json), _day(until, "--until", as_json)
    with reporting_errors(as_json):
        settings = Settings.load({"data_dir": data_dir}, config=config)
        configure_catalog_dir(settings.catalog_dir)
        catalog = default_catalog()
        limits = {m.code: m.online_decision_working_days for m in catalog.matters}
        store = Store(settings.resolved_store_url)
        try:
            lists = WorkLists(store, OfficeHours.parse(settings.office_hours), limits)
            try:
                page = lists.page(
                    name,
                    department,
                    matter=matter,
                    late=late,
                    since=start,
                    until=end,
                    sort=sort,
                    order="desc" if desc else "asc",
                    offset=offset,
                    limit=limit,
                )
            except WorkListError as exc:
                fail(str(exc), as_json=as_json)
        finally:
            store.close()
    if as_csv:
        sys.stdout.write(page.to_csv())
        return
    if as_json:
        emit_json({"ok": True, **page.to_json_obj()})
        return
    for item in page.items:
        stdout.print(_line(item.to_json_obj()), markup=False)
    stdout.print(f"{len(page.items)} of {page.total} from {offset}", markup=False)
