"""The departments' keys the service holds: chain accounts and report-signing keys, per department.

`<keys_dir>/<D>/registrar.json` and `verifier.json` are chain accounts (as `commitledger keys
new --kind ethereum` writes them), `<keys_dir>/<D>/report.pem` the Ed25519 key that signs
the department's verification reports. Each is read on first use and kept; a missing one is
named (never shown) by `MissingKeyError`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from eth_account.signers.local import LocalAccount

from api.errors import MissingKeyError
from api.keyfiles import load_account, load_signing_key, new_key
from ledger import SigningKey

AccountRole = Literal["registrar", "verifier"]
KEY_FILES: dict[str, str] = {
    "registrar": "registrar.json",
    "verifier": "verifier.json",
    "report": "report.pem",
}
ADMIN_KEY_FILE = "admin.json"


class DepartmentKeys:
    """Loads each department's keys from `keys_dir` lazily, once."""

    def __init__(self, keys_dir: Path, departments: Iterable[str]) -> None:
        self.keys_dir = keys_dir
        self.departments = frozenset(departments)
        self._accounts: dict[tuple[str, str], LocalAccount] = {}
        self._report_keys: dict[str, SigningKey] = {}
        self._lock = threading.Lock()

    def path(self, department: str, kind: str) -> Path:
        """Where `kind` (registrar, verifier or report) of `department` is kept."""
        if department not in self.departments:
            raise MissingKeyError(f"{department!r} is not a department of the catalog")
        return self.keys_dir / department / KEY_FILES[kind]

    def has(self, department: str, kind: str) -> bool:
        """Whether the key file is there (it is not read)."""
        return department in self.departments and self.path(department, kind).is_file()

    def missing(self, department: str, kind: str) -> MissingKeyError:
        """The error naming a missing key file (its path, never a key)."""
        return MissingKeyError(
            f"the service holds no {kind} key for {department}: put it at "
            f"{self.path(department, kind)}"
        )

    def account(self, department: str, role: AccountRole) -> LocalAccount:
        """The department's chain account for `role`; MissingKeyError without one."""
        with self._lock:
            found = self._accounts.get((department, role))
            if found is not None:
                return found
            if not self.has(department, role):
                raise self.missing(department, role)
            account = load_account(self.path(department, role))
            self._accounts[department, role] = account
            return account

    def report_key(self, department: str) -> SigningKey:
        """The department's report-signing key; MissingKeyError without one."""
        with self._lock:
            found = self._report_keys.get(department)
            if found is not None:
                return found
            if not self.has(department, "report"):
                raise self.missing(department, "report")
            key = load_signing_key(self.path(department, "report"))
            self._report_keys[department] = key
            return key

    def report_key_if_present(self, department: str) -> SigningKey | None:
        """The department's report-signing key, or None while its file is not there (looked
        for again each time: a feed waiting for it goes on once it is put there)."""
        if not self.has(department, "report"):
            return None
        return self.report_key(department)

    def registrars(self) -> dict[str, LocalAccount]:
        """Every department's registrar account that is present."""
        return {
            department: self.account(department, "registrar")
            for department in sorted(self.departments)
            if self.has(department, "registrar")
        }

    def create(self, department: str) -> None:
        """Create whichever of the department's three keys is missing (files 0600)."""
        folder = self.keys_dir / department
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for kind in KEY_FILES:
            if not self.has(department, kind):
                new_key("ed25519" if kind == "report" else "ethereum", self.path(department, kind))

    def admin_account(self, *, create: bool) -> LocalAccount | None:
        """The governing office's account that deploys and grants roles on a managed chain."""
        path = self.keys_dir / ADMIN_KEY_FILE
        if not path.is_file():
            if not create:
                return None
            self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            new_key("ethereum", path)
        return load_account(path)
