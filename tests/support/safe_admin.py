"""The multi-signature admin's test world: a ledger governed by a 2-of-3 Safe, and the
`commitledger` command line run as an owner would run it on their own machine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from api.keyfiles import KeyUnlock, new_key
from ledger import (
    REGISTRAR_ROLE,
    VERIFIER_ROLE,
    AdminCall,
    Chain,
    ContractRevertError,
    LedgerContract,
    SafeAdmin,
    SafeTx,
    department_id,
    hand_over_admin,
)
from support.cli import one_json

HRSS = "BJ-HRSS"
HRSS_ID = bytes(department_id(HRSS))
COMMITLEDGER = Path(sys.executable).parent / "commitledger"
PASSPHRASE = "owners keep their own keys"  # a test keystore's passphrase


@dataclass
class Governed:
    """A ledger whose admin role was handed over to a 2-of-3 Safe, with HRSS's registrar
    and verifier bound before the hand-over."""

    chain: Chain
    ledger: LedgerContract
    safe: SafeAdmin
    old_admin: LocalAccount
    owners: list[LocalAccount]
    sender: LocalAccount
    registrar: LocalAccount
    verifier: LocalAccount


def govern(chain: Chain) -> Governed:
    """A fresh ledger on `chain`, HRSS's accounts bound, its admin handed to a 2-of-3 Safe."""
    old_admin, sender, registrar, verifier, *owners = (Account.create() for _ in range(7))
    for account in (old_admin, sender, registrar, verifier):
        chain.fund(account.address)
    ledger = LedgerContract.deploy(chain, old_admin)
    hrss = department_id(HRSS)
    ledger.grant_department_role(old_admin, REGISTRAR_ROLE, registrar.address, hrss)
    ledger.grant_department_role(old_admin, VERIFIER_ROLE, verifier.address, hrss)
    safe = SafeAdmin.deploy(chain, old_admin, [o.address for o in owners], 2)
    hand_over_admin(ledger, old_admin, safe)
    return Governed(chain, ledger, safe, old_admin, owners, sender, registrar, verifier)


def binding(world: Governed, account: str, role: str = "registrar") -> SafeTx:
    """A Safe transaction binding `account` to HRSS as `role`, at the Safe's next nonce."""
    call = AdminCall("grantDepartmentRole", role, account, HRSS_ID)  # type: ignore[arg-type]
    return world.safe.transaction(world.ledger.address, call.data())


def refusal_code(error: ContractRevertError) -> object:
    """Safe's GSxxx code of a refusal, or the contract's error name."""
    return error.error_args[0] if error.error_name == "Error" else error.error_name


@dataclass
class Run:
    """One finished `commitledger` process."""

    args: list[str]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"{self.args}: exit {self.code}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def commitledger(cwd: Path, *args: object, as_json: bool = True) -> Run:
    """`commitledger ARGS --json` (or, not `as_json`, for people, on wide lines) run in
    `cwd`, keystores unlocked with PASSPHRASE."""
    argv = [str(a) for a in args]
    env = {**os.environ, "COMMITLEDGER_KEY_PASSPHRASE": PASSPHRASE, "COLUMNS": "1000"}
    done = subprocess.run(
        [str(COMMITLEDGER), *argv, *(["--json"] if as_json else [])],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    return Run(argv, done.returncode, done.stdout, done.stderr)


def ok(cwd: Path, *args: object) -> Any:
    """The JSON document of a `commitledger` run that must succeed."""
    run = commitledger(cwd, *args)
    assert run.code == 0, run
    return one_json(run.stdout)


def keystores(directory: Path, names: Iterable[str]) -> dict[str, tuple[Path, str]]:
    """A new chain account for each name, as an encrypted keystore `<name>.json` in
    `directory` (cheap to open, PASSPHRASE): name -> (path, checksummed address)."""
    unlock = KeyUnlock(passphrase=PASSPHRASE, scrypt_n=2**10)
    made = {}
    for name in names:
        path = directory / f"{name}.json"
        made[name] = (path, str(new_key("ethereum", path, unlock)["address"]))
    return made


def ok_words(cwd: Path, *args: object) -> str:
    """What a `commitledger` run that must succeed prints for people."""
    run = commitledger(cwd, *args, as_json=False)
    assert run.code == 0, run
    return run.stdout
