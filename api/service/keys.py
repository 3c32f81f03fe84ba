"""The departments' keys an instance holds: chain accounts and report-signing keys, per
department, every one or (`serve --department D`) D's only.

`<keys_dir>/<D>/registrar.json` and `verifier.json` are chain accounts as Web3 Secret
Storage v3 keystores, `<keys_dir>/<D>/report.pem` the Ed25519 key that signs the
department's verification reports, as encrypted PKCS#8 (both as `commitledger keys new`
writes them with a passphrase). Clear files are refused except by `serve --demo`
(`Settings.for_demo`). Each key is read on first use, or all at once by
`unlock_all` when the service starts, and kept; a missing one is named (never shown) by
`MissingKeyError`, one that cannot be opened by `KeyFileError`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from eth_account.signers.local import LocalAccount

from api.errors import MissingKeyError
from api.keyfiles import (
    NO_CLEAR_WRITTEN,
    KeyFileError,
    KeyUnlock,
    load_account,
    load_report_key,
    new_key,
    read_passphrase,
)
from api.service.settings import Settings
from ledger import SigningKey

AccountRole = Literal["registrar", "verifier"]
KEY_FILES: dict[str, str] = {
    "registrar": "registrar.json",
    "verifier": "verifier.json",
    "report": "report.pem",
}
ADMIN_KEY_FILE = "admin.json"


def key_unlock(settings: Settings) -> KeyUnlock:
    """How the settings open key files: the passphrase from `key_passphrase_file`, else
    `key_passphrase` (COMMITLEDGER_KEY_PASSPHRASE); clear files only for `serve --demo`;
    new keystores at the scrypt cost `key_scrypt_n`."""
    if settings.key_passphrase_file is not None:
        passphrase: str | None = read_passphrase(settings.key_passphrase_file)
    elif settings.key_passphrase is not None:
        passphrase = settings.key_passphrase.get_secret_value() or None
    else:
        passphrase = None
    return KeyUnlock(passphrase, settings.demo_keys, settings.key_scrypt_n)


class DepartmentKeys:
    """Loads the departments' keys from `keys_dir` lazily, once; `only` a department: that
    department's keys and no other's (the others read as absent)."""

    def __init__(
        self,
        keys_dir: Path,
        departments: Iterable[str],
        *,
        unlock: KeyUnlock | None = None,
        only: str | None = None,
    ) -> None:
        self.keys_dir = keys_dir
        self.departments = frozenset(departments)
        if only is not None and only not in self.departments:
            raise MissingKeyError(
                f"{only!r} is not a department of the catalog: "
                f"{', '.join(sorted(self.departments))}"
            )
        self.only = only
        # Without settings (a command's own use): the environment's passphrase.
        self.unlock = unlock if unlock is not None else KeyUnlock.from_env()
        self._accounts: dict[tuple[str, str], LocalAccount] = {}
        self._report_keys: dict[str, SigningKey] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, departments: Iterable[str]) -> DepartmentKeys:
        """The keys the settings name: their directory, passphrase and department."""
        return cls(
            settings.resolved_keys_dir,
            departments,
            unlock=key_unlock(settings),
            only=settings.department,
        )

    @property
    def held(self) -> frozenset[str]:
        """The departments whose keys this instance may hold."""
        return frozenset({self.only}) if self.only is not None else self.departments

    def path(self, department: str, kind: str) -> Path:
        """Where `kind` (registrar, verifier or report) of `department` is kept."""
        if department not in self.departments:
            raise MissingKeyError(f"{department!r} is not a department of the catalog")
        return self.keys_dir / department / KEY_FILES[kind]

    def has(self, department: str, kind: str) -> bool:
        """Whether the key file is there for a department held here (it is not read)."""
        return department in self.held and self.path(department, kind).is_file()

    def missing(self, department: str, kind: str) -> MissingKeyError:
        """The error naming a missing key file (its path, never a key)."""
        if department not in self.held and department in self.departments:
            return MissingKeyError(
                f"this instance holds {self.only}'s keys only: {department}'s {kind} key is "
                f"held by {department}'s own instance"
            )
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
            account = load_account(self.path(department, role), self.unlock)
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
            key = load_report_key(self.path(department, "report"), self.unlock)
            self._report_keys[department] = key
            return key

    def report_key_if_present(self, department: str) -> SigningKey | None:
        """The department's report-signing key, or None while its file is not there (looked
        for again each time: a feed waiting for it goes on once it is put there)."""
        if not self.has(department, "report"):
            return None
        return self.report_key(department)

    def registrars(self) -> dict[str, LocalAccount]:
        """Every held department's registrar account that is present."""
        return {
            department: self.account(department, "registrar")
            for department in sorted(self.held)
            if self.has(department, "registrar")
        }

    def unlock_all(self) -> list[str]:
        """Open every key file present for the held departments, all or none: the first
        that cannot be opened (wrong passphrase, clear where refused, not a key) raises
        KeyFileError and nothing is kept. The keys opened, as "D kind"."""
        accounts: dict[tuple[str, str], LocalAccount] = {}
        report_keys: dict[str, SigningKey] = {}
        for department in sorted(self.held):
            for role in ("registrar", "verifier"):
                if self.has(department, role):
                    path = self.path(department, role)
                    accounts[department, role] = load_account(path, self.unlock)
            if self.has(department, "report"):
                path = self.path(department, "report")
                report_keys[department] = load_report_key(path, self.unlock)
        with self._lock:
            self._accounts.update(accounts)
            self._report_keys.update(report_keys)
        return [f"{d} {role}" for d, role in sorted(accounts)] + [
            f"{d} report" for d in sorted(report_keys)
        ]

    def create(self, department: str) -> None:
        """Create whichever of the department's three keys is missing (files 0600),
        encrypted; in clear only where clear keys are accepted (`serve --demo`), else
        KeyFileError without a passphrase, before anything is written."""
        if self.unlock.passphrase is None and not self.unlock.allow_clear:
            raise KeyFileError(
                f"cannot make {department}'s keys in {self.keys_dir}: {NO_CLEAR_WRITTEN}"
            )
        folder = self.keys_dir / department
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for kind in KEY_FILES:
            if not self.path(department, kind).is_file():
                new_key(
                    "ed25519" if kind == "report" else "ethereum",
                    self.path(department, kind),
                    self.unlock,
                )

    def admin_account(self, *, create: bool) -> LocalAccount | None:
        """The governing office's account that deploys and grants roles on a managed chain."""
        path = self.keys_dir / ADMIN_KEY_FILE
        if not path.is_file():
            if not create:
                return None
            self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            new_key("ethereum", path, self.unlock)
        return load_account(path, self.unlock)
