"""A record kind kept in tables of its own, with its own migration track, on a ledger store's
database: appeals, rectification evidence, notices, the access log. Opening one migrates it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import Connection, Engine, Table

from ledger import Store, Vault, apply_migrations
from verifier.errors import RecordsError


class OwnTable:
    """The store, a reader and a writer (BEGIN IMMEDIATE on SQLite) of one record kind, its
    migration track (`track`, `steps`) applied when it is opened."""

    def __init__(
        self, store: Store, track: Table, steps: Mapping[int, Callable[[Connection], None]]
    ) -> None:
        self.store = store
        self._engine: Engine = store.engine
        self._writer = store.engine.execution_options(immediate=True)
        with self._writer.begin() as connection:
            apply_migrations(connection, track, steps)


class SealedTexts(OwnTable):
    """An `OwnTable` whose texts are personal data, sealed with the store's vault (None:
    lists and flags only; a text then cannot be written or read)."""

    TEXTS = "texts"  # what a missing vault refuses, in its error

    def __init__(
        self,
        store: Store,
        vault: Vault | None,
        track: Table,
        steps: Mapping[int, Callable[[Connection], None]],
    ) -> None:
        super().__init__(store, track, steps)
        self.vault = vault

    def _vault(self) -> Vault:
        if self.vault is None:
            raise RecordsError(f"{self.TEXTS} need the master key (COMMITLEDGER_MASTER_KEY)")
        return self.vault
