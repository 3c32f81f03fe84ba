"""`commitledger keys new | encrypt | check`: make keys, encrypted when a passphrase is
given (a chain account always: never in clear), encrypt clear key files where they are,
and open a data directory's department keys as `serve` would.

The passphrase is read from `--passphrase-file`, `COMMITLEDGER_KEY_PASSPHRASE_FILE` or
`COMMITLEDGER_KEY_PASSPHRASE`, never from the command line (where `ps` would show it).
`PassphraseFileOpt` is the option every command given a key file takes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.config import ConfigOpt, DataDirOpt
from api.output import console, emit_json, fail, reporting_errors, stdout

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
PassphraseFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="The file holding the passphrase (one line); or set COMMITLEDGER_KEY_PASSPHRASE.",
    ),
]
KINDS = ("ed25519", "ecdsa-p256", "ethereum", "master")


def register(keys_app: typer.Typer) -> None:
    """Add `new`, `encrypt` and `check` to the `keys` group."""
    keys_app.command("new")(keys_new)
    keys_app.command("encrypt")(keys_encrypt)
    keys_app.command("check")(keys_check)


def keys_new(
    out: Annotated[Path, typer.Option("--out", help="Where to write the key (never overwritten).")],
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="ed25519 or ecdsa-p256 (applicants; ed25519 also a department's report.pem), "
            "ethereum (departments' accounts), master (store).",
        ),
    ] = "ed25519",
    passphrase_file: PassphraseFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a new key: an applicant's signing key, a department's chain account or report
    key, the store's master key; encrypted (keystore v3 with scrypt, or PKCS#8) when a
    passphrase is given, which a chain account and the master key need (never in clear)."""
    if kind not in KINDS:
        fail(
            f"unknown key kind {kind!r}: use ed25519, ecdsa-p256, ethereum or master",
            as_json=as_json,
        )
    from api.keyfiles import STANDARD_SCRYPT_N, KeyUnlock, new_key, weak_kdf

    with reporting_errors(as_json):
        unlock = KeyUnlock.from_env(passphrase_file=passphrase_file)
        facts = new_key(kind, out, unlock)  # type: ignore[arg-type]  # checked above
    if as_json:
        emit_json({"ok": True, **facts})
        return
    public = facts.get("address") or facts.get("public_key")
    shown = f": {public}" if public else " (keep it secret; it is never printed)"
    how = ", encrypted" if facts.get("encrypted") else ""
    stdout.print(f"wrote {facts['kind']} key{how} to {out}{shown}", markup=False)
    if kind != "master" and not facts.get("encrypted"):
        console.print(
            "note: the key is in clear: fine for an applicant's own key; as a department's "
            "report.pem every command but `serve --demo` refuses it (give --passphrase-file "
            "to encrypt, or run `commitledger keys encrypt` later)",
            markup=False,
        )
    if (
        kind in ("ethereum", "master")
        and unlock.scrypt_n is not None
        and unlock.scrypt_n < STANDARD_SCRYPT_N
    ):
        console.print(f"warning: {out}: {weak_kdf(out)} (COMMITLEDGER_KEY_SCRYPT_N)", markup=False)


def keys_encrypt(
    files: Annotated[
        list[Path], typer.Argument(help="Clear account (JSON), PEM or master key files.")
    ],
    passphrase_file: PassphraseFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Encrypt clear key files in place: accounts and the store's master key become Web3
    Secret Storage keystores, PEM keys encrypted PKCS#8 (each 0600, replaced at once); a
    file encrypted already is left as it is."""
    from api.keyfiles import KeyUnlock, encrypt_in_place

    done = []
    with reporting_errors(as_json):
        unlock = KeyUnlock.from_env(passphrase_file=passphrase_file)
        for path in files:  # every file checked first: one that is no key changes nothing
            encrypt_in_place(path, unlock, write=False)
        for path in files:
            done.append(encrypt_in_place(path, unlock))
    if as_json:
        emit_json({"ok": True, "files": done})
        return
    for facts in done:
        what = "encrypted" if facts["changed"] else "encrypted already, left as it is"
        public = facts.get("address") or facts.get("public_key")
        stdout.print(f"{facts['path']}: {what}" + (f" ({public})" if public else ""), markup=False)


def keys_check(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    department: Annotated[
        str | None,
        typer.Option("--department", help="Check this department's keys only, as its instance."),
    ] = None,
    passphrase_file: PassphraseFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open every department key `serve` would hold, and the store's master key file, as
    it does at start (a wrong passphrase or a clear file is named; nothing is started): each
    key's public facts, and a warning for a keystore whose scrypt cost is below the
    standard 2**18."""
    from api.keyfiles import load_master_key
    from api.service import DepartmentKeys, Settings, key_unlock
    from verifier import default_catalog

    flags = {
        "data_dir": data_dir,
        "department": department,
        "key_passphrase_file": passphrase_file,
    }
    with reporting_errors(as_json):
        settings = Settings.load(flags, config=config)
        keys = DepartmentKeys.from_settings(settings, default_catalog().departments())
        opened = keys.unlock_all()
        master = settings.master_key_file
        if master is not None:  # the master key itself is never printed
            load_master_key(master, key_unlock(settings))
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    if master is not None:
        _add_row(rows, warnings, "store", "master", "opened (never printed)", master)
    elif settings.master_key is not None:
        warnings.append(
            "the master key is in the environment (COMMITLEDGER_MASTER_KEY): prefer an "
            "encrypted master key file (`commitledger keys encrypt`)"
        )
    for name in opened:
        held, kind = name.split(" ")
        public = (
            keys.report_key(held).public_key_b64()
            if kind == "report"
            else keys.account(held, kind).address  # type: ignore[arg-type]  # registrar|verifier
        )
        path = keys.path(held, kind) if kind != "report" else None
        _add_row(rows, warnings, held, kind, public, path)
    if as_json:
        emit_json({"ok": True, "keys_dir": str(settings.resolved_keys_dir), "keys": rows})
        return
    for row in rows:
        stdout.print(f"{row['department']:<10} {row['key']:<9} {row['public']}", markup=False)
    for warning in warnings:
        console.print(f"warning: {warning}", markup=False)
    console.print(f"{len(rows)} keys opened in {settings.resolved_keys_dir}", markup=False)


def _add_row(
    rows: list[dict[str, Any]],
    warnings: list[str],
    holder: str,
    kind: str,
    public: str,
    keystore: Path | None,
) -> None:
    """A row of `keys check`, with a warning when the keystore's KDF is below standard."""
    from api.keyfiles import weak_kdf

    weak = weak_kdf(keystore) if keystore is not None else None
    if weak is not None:
        warnings.append(f"{keystore}: {weak}: cheap to guess, for tests only")
    rows.append({"department": holder, "key": kind, "public": public, "weak_kdf": weak})
