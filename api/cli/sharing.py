"""`commitledger feed platform-key new|open-identity|export-shared`: the government-sharing
scope from the command line.

A credit platform makes its X25519 key pair (`platform-key new`), gives its public key to
`feed subscribe URL --scope government --platform-key KEY`, and opens the full identity of
the records it is sent with its private key (`open-identity`); an operator can hand the same
records over as a file (`export-shared --subscriber ID`). The scheme is
`verifier.feed.sharing`'s.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli import store as cli_store
from api.cli.keys import PassphraseFileOpt
from api.output import console, emit_json, fail, reporting_errors, stdout

if TYPE_CHECKING:
    from verifier.feed import FeedStore, Subscriptions

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
MAX_RECORDS_FILE = 64 * 1024 * 1024  # a file of records to open: bounded before it is read
MAX_KEY_FILE = 4096


def register(app: typer.Typer) -> None:
    """Add `platform-key new`, `open-identity` and `export-shared` to the `feed` group
    (`api.cli.feed` registers the group first)."""
    feed_app = next(
        group.typer_instance
        for group in app.registered_groups
        if group.name == "feed" and group.typer_instance is not None
    )
    key_app = typer.Typer(help="The credit platform's X25519 key pair.", no_args_is_help=True)
    key_app.command("new")(platform_key_new)
    feed_app.add_typer(key_app, name="platform-key")
    feed_app.command("open-identity")(open_identity_command)
    feed_app.command("export-shared")(export_shared)


def _write_private(path: Path, data: bytes) -> None:
    """`data` to `path`, readable by its owner only (0600, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _read_bounded(path: Path, limit: int, what: str, as_json: bool) -> bytes:
    with reporting_errors(as_json):
        size = path.stat().st_size
        if size > limit:
            fail(f"{path}: {what} of {size} bytes; at most {limit}", as_json=as_json)
        return path.read_bytes()


def platform_key_new(
    out: Annotated[
        Path, typer.Option("--out", help="Where the private key goes (PKCS#8 PEM, 0600).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Make a credit platform's X25519 key pair (tests, demos): the private key to a file,
    the public key (base64 of its 32 raw bytes) printed for `feed subscribe --platform-key`."""
    import base64

    from verifier.feed import key_id, new_platform_key, private_key_pem

    private, public = new_platform_key()
    with reporting_errors(as_json):
        _write_private(out, private_key_pem(private))
    shown = base64.b64encode(public).decode("ascii")
    if as_json:
        emit_json({"ok": True, "public_key": shown, "kid": key_id(public), "private_key": str(out)})
        return
    stdout.print(shown, markup=False)
    console.print(f"key {key_id(public)}: private key written to {out} (0600)", markup=False)


def _records_in(text: str, as_json: bool) -> list[dict[str, Any]]:
    """One record, a page of the feed (`{"records": [...]}`) or JSON lines."""
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        try:
            whole = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            fail(f"not JSON or JSON lines: {exc}", as_json=as_json)
    if isinstance(whole, dict) and isinstance(whole.get("records"), list):
        whole = whole["records"]
    records = whole if isinstance(whole, list) else [whole]
    if not all(isinstance(record, dict) for record in records):
        fail("each record is a JSON object", as_json=as_json)
    return records


def open_identity_command(
    records_file: Annotated[
        Path, typer.Argument(metavar="RECORDS", help="A record, a feed page or JSON lines.")
    ],
    private_key: Annotated[
        Path, typer.Option("--private-key", help="The platform's X25519 private key (PEM).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Open the full identity each government-scope record carries (for the credit platform:
    its private key); fails on a record whose sealed identity does not open for it."""
    from verifier.feed import load_platform_private_key, open_record_identity

    key_text = _read_bounded(private_key, MAX_KEY_FILE, "a key file", as_json)
    text = _read_bounded(records_file, MAX_RECORDS_FILE, "a records file", as_json)
    records = _records_in(text.decode("utf-8", "replace"), as_json)
    opened = []
    with reporting_errors(as_json):
        key = load_platform_private_key(key_text)
        for record in records:
            identity = open_record_identity(key, record)
            opened.append(
                {"id": record.get("id"), "identity": None if identity is None else vars(identity)}
            )
    if as_json:
        emit_json({"ok": True, "records": opened})
        return
    for item in opened:
        found = item["identity"]
        shown = "no identity" if found is None else f"{found['name']}  {found['id_number']}"
        stdout.print(f"{item['id']}  {shown}", markup=False)


def _government_subscriber(subscriptions: Subscriptions, subscriber: int, as_json: bool) -> bytes:
    key = subscriptions.platform_key(subscriber)
    if key is None:
        fail(
            f"subscriber {subscriber} is not of the government scope (no platform key)",
            as_json=as_json,
        )
    return key


def _shared_lines(
    feed: FeedStore, subscriptions: Subscriptions, key: bytes, since: date
) -> list[str]:
    from verifier.feed import GOVERNMENT_SCOPE, VISIBLE_SCOPES

    scopes = VISIBLE_SCOPES[GOVERNMENT_SCOPE]  # type: ignore[index]
    return [
        subscriptions.shared(body, key)
        for _seq, body in feed.bodies(scopes=scopes, since=since.isoformat())
    ]


def export_shared(
    subscriber: Annotated[
        int, typer.Option("--subscriber", help="A government-scope subscriber's id.")
    ],
    since: Annotated[str, typer.Option("--since", metavar="YYYY-MM-DD", help="Determined from.")],
    out: Annotated[Path | None, typer.Option("--out", help="File (default: stdout).")] = None,
    store: cli_store.StoreOpt = None,
    master_key_file: cli_store.MasterKeyOpt = None,
    passphrase_file: PassphraseFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The records a government-scope subscriber is sent, determined since a day, as JSON
    lines: each with the committer's identity sealed to its platform key (a file is 0600)."""
    from verifier.feed import FeedStore, Subscriptions

    try:
        day = date.fromisoformat(since)
    except ValueError:
        fail(f"--since {since!r} is not a date: use YYYY-MM-DD", as_json=as_json)
    with reporting_errors(as_json):
        vault = cli_store.open_vault(master_key_file, passphrase_file)
        the_store = cli_store.open_store(store)
        try:
            feed = FeedStore(the_store, vault)
            subscriptions = Subscriptions(feed, vault)
            key = _government_subscriber(subscriptions, subscriber, as_json)
            lines = _shared_lines(feed, subscriptions, key, day)
        finally:
            the_store.close()
        text = "".join(line + "\n" for line in lines)
        if out is not None:
            _write_private(out, text.encode("utf-8"))
    if as_json:
        emit_json({"ok": True, "count": len(lines), "file": None if out is None else str(out)})
    elif out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        console.print(f"{len(lines)} records written to {out}", markup=False)
