"""The verifier's durable tables (verifications, breach records) in the ledger store's database.

`VerifierRecords` is the one object callers hold; its parts live by concept: the tables and
migrations in `records_schema`, verifications in `verifications`, breach records in
`breach_store`, the public search in `breach_search`.
"""

from __future__ import annotations

from ledger import Store
from verifier.records.audit_facts import AuditFacts
from verifier.records.breach_store import BreachStore, StoredBreach
from verifier.records.search import (
    MASKED,
    MAX_PAGE_SIZE,
    MAX_RESULTS,
    TRIGRAM,
    BreachJsonPage,
    BreachPage,
    BreachSearch,
)
from verifier.records.tables import (
    MIGRATIONS,
    NAME_INDEX_DDL,
    SEARCH_INDEXES,
    breach_records,
    metadata,
    migrate,
    verifications,
    verifier_migrations,
)
from verifier.records.verifications import (
    DueDate,
    RecordedOutcome,
    Verification,
    VerificationRecords,
    VerificationState,
)

__all__ = [
    "MASKED",
    "MAX_PAGE_SIZE",
    "MAX_RESULTS",
    "MIGRATIONS",
    "NAME_INDEX_DDL",
    "SEARCH_INDEXES",
    "TRIGRAM",
    "BreachJsonPage",
    "BreachPage",
    "DueDate",
    "RecordedOutcome",
    "StoredBreach",
    "Verification",
    "VerificationState",
    "VerifierRecords",
    "breach_records",
    "metadata",
    "migrate",
    "verifications",
    "verifier_migrations",
]


class VerifierRecords(VerificationRecords, BreachStore, BreachSearch, AuditFacts):
    """Verifications and breach records, on the same database as a ledger `Store`.

    Opening applies the verifier's own migrations (table `verifier_migrations`).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._engine = store.engine
        # Writers take the write lock up front (see ledger.store: SQLite WAL upgrades fail).
        self._writer = store.engine.execution_options(immediate=True)
        with self._writer.begin() as connection:
            migrate(connection)
