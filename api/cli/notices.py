"""`commitledger notices`: the notices of proposed breaches (告知书) and their defence.

`list` shows a department's notices (and dead letters); `deliver` tries the undelivered
ones once with the gateways of the settings (the service does it in the background);
`statement` files the applicant's statement; `confirm` publishes a proposed breach before
its period ends; `decide` accepts or rejects a statement. Statements and reasons are read
from files, never from the command line (which `ps` shows), and are never printed back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.config import ConfigOpt, DataDirOpt
from api.cli.leased import WaitOpt, leased_job
from api.output import emit_json, fail, reporting_errors, stdout

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
DepartmentArg = Annotated[str, typer.Option("--department", help="The department's code.")]
HashArg = Annotated[str, typer.Argument(help="The commitment's hash (0x...).")]
TextFileOpt = Annotated[
    Path, typer.Option("--text-file", help="A UTF-8 file holding the text (at most 5000 chars).")
]
ReasonsFileOpt = Annotated[
    Path, typer.Option("--reasons-file", help="A UTF-8 file holding the reasons.")
]
OfficerOpt = Annotated[str, typer.Option("--officer", help="Who decides (recorded as such).")]
MAX_FILE_BYTES = 64 * 1024


def register(app: typer.Typer) -> None:
    """Add `notices` to the command line."""
    notices_app = typer.Typer(
        help="Notices of proposed breaches and the defence before publication.",
        no_args_is_help=True,
    )
    notices_app.command("list")(notices_list)
    notices_app.command("deliver")(notices_deliver)
    notices_app.command("statement")(notices_statement)
    notices_app.command("confirm")(notices_confirm)
    notices_app.command("decide")(notices_decide)
    app.add_typer(notices_app, name="notices")


def _read(path: Path, as_json: bool) -> str:
    try:
        data = path.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", as_json=as_json)
    if len(data) > MAX_FILE_BYTES:
        fail(f"{path} is larger than {MAX_FILE_BYTES} bytes", as_json=as_json)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8 text", as_json=as_json)


def _context(data_dir: Path | None, config: Path | None, as_json: bool) -> Any:
    from api.service import ServiceContext, Settings

    with reporting_errors(as_json):
        settings = Settings.load({"data_dir": data_dir}, config=config)
        return ServiceContext.open(settings)


def _hash(text: str, as_json: bool) -> Any:
    from ledger import InvalidHashError, to_hash32

    try:
        return to_hash32(text)
    except InvalidHashError as exc:
        fail(str(exc), as_json=as_json)


def notices_list(
    department: DepartmentArg,
    dead: Annotated[bool, typer.Option("--dead", help="Only dead letters.")] = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List a department's notices of proposed breaches, newest first."""
    from verifier.records import NoticeRecords

    context = _context(data_dir, config, as_json)
    try:
        records = NoticeRecords(context.store)
        deliveries = {d.notice_id: d for d in records.deliveries(department)}
        items = []
        for notice in records.listed(department):
            delivery = deliveries.get(notice.id)
            if dead and (delivery is None or not delivery.dead):
                continue
            item = notice.to_json_obj()
            item.pop("notice")
            item["delivery"] = None if delivery is None else delivery.to_json_obj()
            items.append(item)
    finally:
        context.close()
    if as_json:
        emit_json({"ok": True, "department": department, "notices": items})
        return
    for item in items:
        shown = item["delivery"] or {}
        sent = "dead letter" if shown.get("dead") else f"delivered {item['delivered_on']}"
        stdout.print(
            f"{item['commitment_hash']} {item['state']} issued {item['issued_on']} "
            f"{sent} defence by {item['defence_by']}",
            markup=False,
        )


def notices_deliver(
    retry_dead: Annotated[
        bool, typer.Option("--retry-dead", help="Give dead letters a fresh series of tries.")
    ] = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    wait: WaitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Try every due notice once with the gateways of the settings (`notice_gateways`), under
    the lease `notices` as `serve` delivers: while an instance holds it, waits for it
    (`--wait`), then refuses."""
    from api.service import NOTICES_LEASE, notice_deliverer
    from verifier.records import NoticeRecords

    context = _context(data_dir, config, as_json)
    try:
        if not context.settings.notice_gateways:
            fail("no notice_gateways in the settings: nowhere to deliver", as_json=as_json)
        with reporting_errors(as_json):
            deliverer = notice_deliverer(context)
        settings = context.settings
        try:
            with (
                reporting_errors(as_json),
                leased_job(
                    context.store,
                    [NOTICES_LEASE],
                    wait=wait,
                    ttl=settings.lease_ttl_seconds,
                    poll=settings.lease_poll_seconds,
                ) as job,
            ):
                if retry_dead:
                    for department in settings.notice_gateways:
                        NoticeRecords(context.store).retry_dead(department)
                job.check()  # as the service's step: only while the lease is held
                summary = deliverer.deliver()
        finally:
            deliverer.close()
    finally:
        context.close()
    if as_json:
        emit_json({"ok": True, **summary.to_json_obj()})
        return
    stdout.print(
        f"{summary.delivered} delivered, {summary.failed} to retry, {summary.dead} dead letters",
        markup=False,
    )


def notices_statement(
    commitment: HashArg,
    text_file: TextFileOpt,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """File the applicant's statement (陈述申辩) against the proposed breach of a commitment."""
    from api import run_start
    from verifier.engine import file_statement

    digest = _hash(commitment, as_json)
    text = _read(text_file, as_json)
    context = _context(data_dir, config, as_json)
    try:
        if context.intake is None:
            fail("a statement is sealed with the master key: none is set", as_json=as_json)
        with reporting_errors(as_json):
            statement = file_statement(
                context.store,
                context.intake.vault,
                digest,
                text,
                filed_by="officer",
                on=run_start.today(),
            )
    finally:
        context.close()
    if as_json:
        emit_json({"ok": True, "statement": statement.id})
        return
    stdout.print(f"statement {statement.id} kept (sealed)", markup=False)


def notices_confirm(
    commitment: HashArg,
    department: DepartmentArg,
    officer: OfficerOpt,
    reasons_file: ReasonsFileOpt,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish a proposed breach before its defence period ends (the officer confirms)."""
    from api import run_start
    from verifier.engine import confirm_breach

    digest = _hash(commitment, as_json)
    reasons = _read(reasons_file, as_json)
    _act(
        data_dir,
        config,
        as_json,
        department,
        lambda actions: confirm_breach(actions, digest, run_start.today(), officer, reasons),
    )


def notices_decide(
    commitment: HashArg,
    department: DepartmentArg,
    officer: OfficerOpt,
    reasons_file: ReasonsFileOpt,
    accept: Annotated[
        bool, typer.Option("--accept/--reject", help="Accept the statement or reject it.")
    ],
    outcome: Annotated[
        str, typer.Option("--outcome", help="When accepted: kept, needs_manual or corrected.")
    ] = "kept",
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide the applicant's statement: rejected publishes, accepted ends it as `--outcome`."""
    from api import run_start
    from verifier.engine import decide_statement

    if outcome not in ("kept", "needs_manual", "corrected"):
        fail("--outcome is kept, needs_manual or corrected", as_json=as_json)
    digest = _hash(commitment, as_json)
    reasons = _read(reasons_file, as_json)
    _act(
        data_dir,
        config,
        as_json,
        department,
        lambda actions: decide_statement(
            actions,
            digest,
            run_start.today(),
            officer,
            accept=accept,
            reasons=reasons,
            outcome=outcome,  # type: ignore[arg-type]  # checked above
        ),
    )


def _act(
    data_dir: Path | None, config: Path | None, as_json: bool, department: str, action: Any
) -> None:
    from api.service import ProblemError, department_actions

    context = _context(data_dir, config, as_json)
    try:
        with reporting_errors(as_json), department_actions(context, department) as actions:
            action(actions)
    except ProblemError as exc:
        fail(exc.detail, as_json=as_json)
    finally:
        context.close()
    if as_json:
        emit_json({"ok": True})
        return
    stdout.print("recorded on chain", markup=False)
