"""`commitledger feed ...`: the feed to the public credit platform (run, status, subscribe,
export, check).

Over 400 lines: the `feed` command group (run, status, subscribe, export, check) and the
export's formats; each command is short.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from api.cli import store as cli_store
from api.cli.keys import PassphraseFileOpt
from api.cli.leased import WaitOpt
from api.files import DEFAULT_DEPLOYMENT
from api.output import EXIT_CHECK_FAILED, console, emit_json, fail, reporting_errors, stdout

if TYPE_CHECKING:  # imported inside the commands: they are slow to load
    from api.cli.leased import LeasedJob
    from api.service import DepartmentKeys
    from ledger import LedgerContract, SigningKey, Store
    from verifier.feed import FeedStore, Fence, StepResult

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
DeploymentOpt = Annotated[Path, typer.Option("--deployment", help="The deployment file.")]
KeysDirOpt = Annotated[
    Path,
    typer.Option("--keys-dir", help="Departments' keys: <DIR>/<DEPT>/report.pem signs records."),
]
ConfirmationsOpt = Annotated[
    int,
    typer.Option("--confirmations", min=0, help="Blocks an event must be deep to be fed."),
]
ScopeOpt = Annotated[
    str, typer.Option("--scope", help="public, restricted or all (what the consumer may see).")
]
DEFAULT_KEYS_DIR = Path("data/keys")
CSV_COLUMNS = (
    "sequence",
    "id",
    "kind",
    "commitment_code",
    "committer_name",
    "committer_category",
    "credit_code",
    "commitment_type",
    "matter_code",
    "matter_name",
    "reason",
    "content_summary",
    "date_made",
    "accepting_unit",
    "accepting_unit_code",
    "liability",
    "valid_until",
    "fulfilment_status",
    "unfulfilled",
    "sanction",
    "department_code",
    "determining_unit",
    "determining_unit_code",
    "determined_on",
    "publication_scope",
    "personal_data_erased",
)
EVIDENCE_COLUMNS = ("chain_id", "contract", "transaction", "block", "log_index", "commitment_hash")
# A spreadsheet takes a cell that starts with one of these as a formula (OWASP, "CSV
# injection"): an organisation's name `=HYPERLINK(...)` would run when the file is opened.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Excel on Chinese Windows reads a CSV without a byte-order mark in the ANSI code page (GBK).
UTF8_BOM = "\ufeff"


def register(app: typer.Typer) -> None:
    """Add `feed run|status|subscribe|export|check` to the command line."""
    feed_app = typer.Typer(help="The feed to the public credit platform.", no_args_is_help=True)
    feed_app.command("run")(feed_run)
    feed_app.command("status")(feed_status)
    feed_app.command("subscribe")(feed_subscribe)
    feed_app.command("export")(feed_export)
    feed_app.command("check")(feed_check)
    app.add_typer(feed_app, name="feed")


def report_keys(
    keys_dir: Path, passphrase_file: Path | None = None
) -> Callable[[str], SigningKey | None]:
    """Each department's report key from `<keys_dir>/<DEPT>/report.pem`, read once found (a
    key put there while `feed run` waits for it is used): encrypted PKCS#8, opened with the
    passphrase of `passphrase_file` or the environment; a clear one is refused, those
    present now at once (KeyFileError before anything starts)."""
    return _department_keys(keys_dir, passphrase_file).report_key_if_present


def _department_keys(keys_dir: Path, passphrase_file: Path | None) -> DepartmentKeys:
    from api.keyfiles import KeyUnlock
    from api.service import DepartmentKeys
    from verifier import default_catalog

    unlock = KeyUnlock.from_env(passphrase_file=passphrase_file)
    keys = DepartmentKeys(keys_dir, default_catalog().departments(), unlock=unlock)
    for department in sorted(keys.departments):
        keys.report_key_if_present(department)
    return keys


class LeasedSigners:
    """The report keys `feed run` signs with, each only while it holds the department's
    `feed-sign:<D>` lease under its job's token, as the service's signers do: those present
    at the start are in the job's leases (all or nothing); one put there later is used once
    its lease is taken (asked for when the key is first found)."""

    def __init__(self, job: LeasedJob, find: Callable[[str], SigningKey | None]) -> None:
        self.job = job
        self.find = find
        self.waiting: dict[str, str] = {}  # department -> why its key is not used yet

    def __call__(self, department: str) -> SigningKey | None:
        from api.cli.leased import held_by
        from api.service import feed_sign_lease

        key = self.find(department)
        if key is None:
            return None
        lease, keeper = feed_sign_lease(department), self.job.keeper
        if lease not in self.job.tokens:
            if lease not in keeper.wanted():
                keeper.want(lease)  # a round at once: taken now if free
            token = keeper.token(lease)
            if token is None:
                self.waiting[department] = f"the lease {lease} {held_by(keeper.leases.row(lease))}"
                return None
            self.job.tokens[lease] = token  # from now on checked with the job's others
            self.waiting.pop(department, None)
        return key if keeper.token(lease) == self.job.tokens[lease] else None

    def fence(self, department: str) -> Fence | None:
        """The check D's signing runs in its transaction (None: its lease is not the job's)."""
        from api.service import feed_sign_lease

        lease = feed_sign_lease(department)
        return self.job.fence(lease) if lease in self.job.tokens else None


def _ledger(deployment: Path, confirmations: int) -> LedgerContract:
    from api.files import read_deployment
    from ledger import Chain, LedgerContract

    record = read_deployment(cli_store.in_data_dir(deployment))
    chain = Chain.connect(str(record["rpc"]), confirmations=confirmations)
    return LedgerContract(chain, str(record["contract"]))


def _scope(scope: str, as_json: bool) -> str:
    from verifier.feed import VISIBLE_SCOPES

    if scope not in VISIBLE_SCOPES:
        fail(f"--scope {scope!r}: give public, restricted or all", as_json=as_json)
    return scope


# ---------------------------------------------------------------------- run


def feed_run(
    store: cli_store.StoreOpt = None,
    master_key_file: cli_store.MasterKeyOpt = None,
    deployment: DeploymentOpt = DEFAULT_DEPLOYMENT,
    keys_dir: KeysDirOpt = DEFAULT_KEYS_DIR,
    confirmations: ConfirmationsOpt = 0,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Stop once a round finds nothing to do.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between steps.")
    ] = 1.0,
    max_attempts: Annotated[
        int, typer.Option("--max-attempts", min=1, help="Webhook tries before a dead letter.")
    ] = 8,
    backoff: Annotated[float, typer.Option("--backoff", min=0.0, help="First retry wait (s).")] = (
        1.0
    ),
    passphrase_file: PassphraseFileOpt = None,
    wait: WaitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow the chain: index confirmed events, append signed records, push to webhooks.
    Under the leases `reconcile`, `feed` and `feed-sign:<D>` for each department whose
    report key is in the keys folder, as `serve` does it: while an instance holds one,
    waits for it (`--wait`), then refuses. Each write is fenced by its lease's token."""
    from api.cli.leased import lease_times, leased_job
    from api.service import FEED_LEASE, RECONCILE_LEASE, feed_sign_lease
    from verifier import default_catalog
    from verifier.feed import DeliveryPolicy, FeedFollower, publish_own_key

    totals = {"indexed": 0, "appended": 0, "delivered": 0}
    blocked: list[str] = []
    with reporting_errors(as_json), ExitStack() as held:
        keys = _department_keys(keys_dir, passphrase_file)  # a key refused: nothing started
        present = sorted(d for d in keys.departments if keys.has(d, "report"))
        ledger = _ledger(deployment, confirmations)
        vault = cli_store.open_vault(master_key_file, passphrase_file)
        the_store = cli_store.open_store(store)
        held.callback(the_store.close)
        ttl, poll = lease_times()
        leases = [RECONCILE_LEASE, FEED_LEASE, *map(feed_sign_lease, present)]
        job = held.enter_context(leased_job(the_store, leases, wait=wait, ttl=ttl, poll=poll))
        signers = LeasedSigners(job, keys.report_key_if_present)
        policy = DeliveryPolicy(max_attempts=max_attempts, backoff_initial_s=backoff)
        follower = FeedFollower(
            the_store,
            ledger,
            default_catalog(),
            vault,
            signers,
            confirmations=confirmations,
            policy=policy,
            sequencer_fence=job.fence(FEED_LEASE),
            signer_fence=signers.fence,
        )
        for department in present:  # as a signer taking its lease (the feed's tables made)
            key = signers(department)
            if key is not None:
                publish_own_key(the_store.engine, department, key, signers.fence(department))

        def counted(result: StepResult) -> None:
            job.check()  # the next step only while its leases are held, as the service's
            totals["indexed"] += result.indexed
            totals["appended"] += result.appended
            totals["delivered"] += result.delivered
            if result.blocked_on and result.blocked_on not in blocked:
                blocked.append(result.blocked_on)
                why = signers.waiting.get(result.blocked_on)
                if why is None:
                    why = str(keys_dir / result.blocked_on / "report.pem")
                console.print(f"waiting for {why}", markup=False)

        stop = threading.Event()
        with _stopping_on_signals(stop):
            try:
                follower.run(until_idle=until_idle, interval_s=interval, stop=stop, on_step=counted)
            finally:
                follower.close()
                head = follower.feed.head()
    result = {"ok": not blocked, **totals, "head": head, "blocked_on": blocked}
    if as_json:
        emit_json(result)
    else:
        stdout.print(
            f"feed at {head}: {totals['appended']} appended, {totals['delivered']} delivered"
        )
    if blocked:
        raise typer.Exit(EXIT_CHECK_FAILED)


class _stopping_on_signals:  # noqa: N801 - used as a context manager
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(_signum: int, _frame: FrameType | None) -> None:
            self.stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, handler)

    def __exit__(self, *_exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


# ---------------------------------------------------------------------- status and subscribe


def status_json(feed: FeedStore, now: float) -> dict[str, Any]:
    """Head, each subscriber's lag and the dead letters, as `feed status --json` prints them."""
    from verifier.feed import VISIBLE_SCOPES, Subscriptions

    subscriptions = Subscriptions(feed)
    dead_letters = subscriptions.dead_letters()
    dead_per_subscriber = Counter(d.subscriber_id for d in dead_letters)
    subscribers = []
    for subscriber in subscriptions.subscribers():
        behind, oldest = subscriptions.lag(subscriber, VISIBLE_SCOPES[subscriber.scope])  # type: ignore[index]
        subscribers.append(
            {
                "id": subscriber.id,
                "url": subscriber.url,
                "scope": subscriber.scope,
                "delivered_up_to": subscriber.delivered_seq,
                "records_behind": behind,
                "oldest_undelivered_age_s": None if oldest is None else round(now - oldest, 3),
                "failed_tries": subscriber.attempts,
                "last_error": subscriber.last_error,
                "dead_letters": dead_per_subscriber[subscriber.id],
            }
        )
    dead = [
        {"subscriber": d.subscriber_id, "sequence": d.seq, "record": d.record_id,
         "tries": d.attempts, "last_error": d.last_error}
        for d in dead_letters
    ]  # fmt: skip
    return {
        "ok": True,
        "head": feed.head(),
        # Above the head: places given, awaiting their department's signature (issue 18).
        "assigned": feed.assigned(),
        "blocked_on": feed.blocked_on(),
        "subscribers": subscribers,
        "dead_letters": dead,
    }


def feed_status(store: cli_store.StoreOpt = None, as_json: JsonOpt = False) -> None:
    """The feed's head, each subscriber's lag (records behind, oldest age), dead letters."""
    from verifier.feed import FeedStore

    with reporting_errors(as_json):
        the_store = cli_store.open_store(store)
        try:
            result = status_json(FeedStore(the_store), time.time())
        finally:
            the_store.close()
    if as_json:
        emit_json(result)
        return
    title = f"Feed at sequence {result['head']}"
    if result["blocked_on"] is not None:
        title += f" (up to {result['assigned']} given; waiting for {result['blocked_on']}'s signer)"
    table = Table(title=title)
    for column in ("id", "url", "scope", "behind", "oldest (s)", "tries", "dead", "last error"):
        table.add_column(column)
    for s in result["subscribers"]:
        age = s["oldest_undelivered_age_s"]
        table.add_row(
            str(s["id"]),
            s["url"],
            s["scope"],
            str(s["records_behind"]),
            "-" if age is None else f"{age:.1f}",
            str(s["failed_tries"]),
            str(s["dead_letters"]),
            s["last_error"] or "",
        )
    stdout.print(table)


def feed_subscribe(
    url: Annotated[str, typer.Argument(help="Where records are POSTed (http or https).")],
    scope: ScopeOpt = "public",
    from_now: Annotated[
        bool, typer.Option("--from-now", help="Only records appended from now on.")
    ] = False,
    store: cli_store.StoreOpt = None,
    master_key_file: cli_store.MasterKeyOpt = None,
    passphrase_file: PassphraseFileOpt = None,
    platform_key: Annotated[
        str | None,
        typer.Option(
            "--platform-key",
            help="--scope government: the credit platform's X25519 public key (base64 of the "
            "raw 32 bytes, or PEM) each record's full identity is sealed to.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a webhook; its signing secret is printed once (and kept sealed under the
    master key)."""
    from verifier import FeedError
    from verifier.feed import FeedStore, Subscriptions, check_url, new_secret

    _scope(scope, as_json)
    with reporting_errors(as_json):
        try:
            check_url(url)
        except FeedError as exc:
            fail(str(exc), as_json=as_json)
        shown, secret = new_secret()
        vault = cli_store.open_vault(master_key_file, passphrase_file)
        the_store = cli_store.open_store(store)
        try:
            subscriber = Subscriptions(FeedStore(the_store, vault), vault).add_subscriber(
                url, scope, secret, from_start=not from_now, platform_key=platform_key
            )
        finally:
            the_store.close()
    if as_json:
        emit_json({"ok": True, "subscriber": subscriber, "scope": scope, "secret": shown})
        return
    stdout.print(shown, markup=False)
    console.print(
        f"subscriber {subscriber} ({scope}): the secret above signs every body "
        "(Feed-Signature); shown once",
        markup=False,
    )


# ---------------------------------------------------------------------- export


def export_rows(feed: FeedStore, since: date, scope: str) -> Iterator[dict[str, Any]]:
    """The records determined on or after `since`, in scope, as parsed JSON."""
    from verifier.feed import VISIBLE_SCOPES

    scopes = VISIBLE_SCOPES[scope]  # type: ignore[index]
    for _seq, body in feed.bodies(scopes=scopes, since=since.isoformat()):
        yield json.loads(body)


def csv_cell(value: Any) -> Any:
    """`value` as a CSV cell no spreadsheet runs: text that starts like a formula gets a
    leading single quote (the OWASP advice; the JSON lines keep the signed value as is)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def display_values(labels: str) -> dict[str, dict[Any, str]]:
    """Per coded column, what each stored value is shown as in the `labels` language (the
    record holds the Chinese codes; version 1 records held English keys: both are mapped)."""
    from verifier.feed import (
        COMMITMENT_TYPES,
        COMMITTER_CATEGORIES,
        EN_VALUES,
        FULFILMENT_ZH,
        KIND_ZH,
        SCOPE_ZH,
    )

    lists: dict[str, dict[str, str]] = {
        "committer_category": COMMITTER_CATEGORIES,
        "commitment_type": COMMITMENT_TYPES,
        "fulfilment_status": {str(key): value for key, value in FULFILMENT_ZH.items()},
        "publication_scope": {str(key): value for key, value in SCOPE_ZH.items()},
    }
    shown: dict[str, dict[Any, str]] = {}
    for column, codes in lists.items():
        if labels == "zh":
            shown[column] = {**codes, **{zh: zh for zh in codes.values()}}
        else:
            shown[column] = {
                **{en: en for en in codes},
                **{zh: EN_VALUES[zh] for zh in codes.values()},
            }
    shown["kind"] = dict(KIND_ZH) if labels == "zh" else {kind: kind for kind in KIND_ZH}
    shown["personal_data_erased"] = (
        {True: "是", False: "否"} if labels == "zh" else {True: "yes", False: "no"}
    )
    return shown


def _csv_line(record: dict[str, Any], shown: dict[str, dict[Any, str]]) -> list[Any]:
    evidence = record["evidence"]
    signature = record.get("signature") or {}
    values = dict(record)
    if "department_name" in values:  # a version 1 record
        values.setdefault("determining_unit", values["department_name"])
    for column, mapping in shown.items():
        value = values.get(column)
        if value is not None:
            values[column] = mapping.get(value, value)
    cells = [
        *(values.get(c) for c in CSV_COLUMNS),
        *(evidence[c] for c in EVIDENCE_COLUMNS),
        signature.get("public_key"),
        signature.get("value"),
    ]
    return [csv_cell(cell) for cell in cells]


def _open_private(path: Path) -> Any:
    """`path` opened for writing, readable by its owner only (0600, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def feed_export(
    since: Annotated[str, typer.Option("--since", metavar="YYYY-MM-DD", help="Determined from.")],
    format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    scope: ScopeOpt = "public",
    labels: Annotated[
        str,
        typer.Option(
            "--labels",
            help="CSV header and coded values: en (field names, English labels) or zh (the "
            "standard's names, the Chinese code values).",
        ),
    ] = "en",
    bom: Annotated[
        bool | None,
        typer.Option(
            "--bom/--no-bom",
            help="Open a CSV with a UTF-8 byte-order mark (for Excel); on with --labels zh.",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="File (default: stdout).")] = None,
    store: cli_store.StoreOpt = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON document: the records themselves (or, with --out, the count).",
        ),
    ] = False,
) -> None:
    """Records determined since a day, in sequence order, as JSON lines or CSV (public
    records unless --scope says more; a file is written 0600)."""
    from verifier.feed import ZH_LABELS, FeedStore

    try:
        day = date.fromisoformat(since)
    except ValueError:
        fail(f"--since {since!r} is not a date: use YYYY-MM-DD", as_json=as_json)
    if format not in ("jsonl", "csv"):
        fail(f"--format {format!r}: give jsonl or csv", as_json=as_json)
    _scope(scope, as_json)
    if scope == "government":  # sealed per platform key: verifier.feed.sharing
        fail("--scope government: use feed export-shared --subscriber ID", as_json=as_json)
    if labels not in ("en", "zh"):
        fail(f"--labels {labels!r}: give en or zh", as_json=as_json)
    if bom and format != "csv":
        fail("--bom is for --format csv (JSON lines never start with one)", as_json=as_json)
    with_bom = format == "csv" and (labels == "zh" if bom is None else bom)
    with reporting_errors(as_json):
        the_store = cli_store.open_store(store)
        if as_json and not out:  # the records in one document, not as lines
            try:
                records = list(export_rows(FeedStore(the_store), day, scope))
            finally:
                the_store.close()
            emit_json({"ok": True, "count": len(records), "records": records})
            return
        try:
            target = _open_private(out) if out else sys.stdout
            try:
                header = [*CSV_COLUMNS, *EVIDENCE_COLUMNS, "public_key", "signature"]
                if labels == "zh":
                    header = [ZH_LABELS[name] for name in header]
                feed = FeedStore(the_store)
                if with_bom:
                    target.write(UTF8_BOM)
                count = _write_export(
                    feed, day, scope, format, target, header, display_values(labels)
                )
            finally:
                if out:
                    target.close()
        finally:
            the_store.close()
    if as_json:
        emit_json({"ok": True, "count": count, "file": str(out)})
    elif out:
        console.print(f"{count} records written to {out}", markup=False)


def _write_export(
    feed: FeedStore,
    day: date,
    scope: str,
    format: str,
    target: Any,
    header: list[str],
    shown: dict[str, dict[Any, str]] | None = None,
) -> int:
    shown = display_values("en") if shown is None else shown
    count = 0
    writer = csv.writer(target) if format == "csv" else None
    if writer is not None:
        writer.writerow(header)
    for record in export_rows(feed, day, scope):
        if writer is not None:
            writer.writerow(_csv_line(record, shown))
        else:
            target.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    target.flush()
    return count


# ---------------------------------------------------------------------- check


def feed_check(
    store: cli_store.StoreOpt = None,
    deployment: DeploymentOpt = DEFAULT_DEPLOYMENT,
    keys_dir: KeysDirOpt = DEFAULT_KEYS_DIR,
    confirmations: ConfirmationsOpt = 0,
    passphrase_file: PassphraseFileOpt = None,
    public_keys: Annotated[
        Path | None,
        typer.Option(
            "--public-keys",
            metavar="FILE",
            help="Verify with the public keys in FILE (what GET /v1/feed/keys serves, pinned "
            "out of band), not the keys folder: no private key needed.",
        ),
    ] = None,
    store_keys: Annotated[
        bool,
        typer.Option(
            "--store-keys",
            help="Verify with the public keys the departments' signers published in the "
            "store (trusts the store's key table; --public-keys pins them independently).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild the feed from the contract's logs (the node, not the store) and compare. Each
    record must verify under a key of its department: from --public-keys FILE, the store
    (--store-keys), or the private keys in --keys-dir."""
    from verifier import default_catalog
    from verifier.feed import FeedStore, check_feed

    if public_keys is not None and store_keys:
        fail("give --public-keys FILE or --store-keys, not both", as_json=as_json)
    if not store_keys:  # the store's keys need no private key opened
        with reporting_errors(as_json):
            public_key = _check_keys(keys_dir, passphrase_file, public_keys)

    with reporting_errors(as_json):
        ledger = _ledger(deployment, confirmations)
        the_store: Store = cli_store.open_store(store)
        if store_keys:
            public_key = _store_keys(the_store)
        try:
            report = check_feed(
                FeedStore(the_store),
                ledger,
                default_catalog(),
                public_key,
                confirmations=confirmations,
            )
        finally:
            the_store.close()
    result = report.to_json_obj()
    if as_json:
        emit_json(result)
    else:
        for problem in report.problems:
            stdout.print(
                f"{problem.kind}: record {problem.record_id} (sequence {problem.sequence}): "
                f"{problem.detail}",
                markup=False,
            )
        verdict = "agrees with the chain" if report.ok else "DISAGREES with the chain"
        waiting = f", {report.waiting} waiting for their signers" if report.waiting else ""
        stdout.print(
            f"feed of {report.served} records {verdict} ({report.on_chain} on chain{waiting})"
        )
    if not report.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _check_keys(
    keys_dir: Path, passphrase_file: Path | None, public_keys: Path | None
) -> Callable[[str], Sequence[str]]:
    """Each department's public keys for `feed check`: those of the `/v1/feed/keys` document
    `public_keys`, else the public halves of the private keys in `keys_dir` (the old way)."""
    if public_keys is not None:
        from verifier.feed import read_keys_file

        pinned = read_keys_file(public_keys)
        return lambda department: pinned.get(department, [])
    keys = report_keys(keys_dir, passphrase_file)

    def public_key(department: str) -> Sequence[str]:
        key = keys(department)
        return [] if key is None else [key.public_key_b64()]

    return public_key


def _store_keys(the_store: Store) -> Callable[[str], Sequence[str]]:
    """Each department's public keys its signers published in `the_store`."""
    from verifier.feed import FeedStore, keys_by_department, published_keys

    FeedStore(the_store)  # its migrations: a store from before the key table has none
    published = keys_by_department(published_keys(the_store.engine))
    return lambda department: published.get(department, [])
