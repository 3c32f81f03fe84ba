"""The verifier's records in the store: verifications and their states (`verifications`),
published breach records (`breach_store`), the public search (`search`), their tables and
migrations (`tables`), behind one facade (`facade.VerifierRecords`); objections and repair
applications (`appeals.AppealRecords`) beside it, with migrations of their own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger import lazy_attributes

if TYPE_CHECKING:
    from verifier.records.accesses import Access, AccessLog, AccessPurpose, accesses_of
    from verifier.records.appeals import (
        Appeal,
        AppealKind,
        AppealRecords,
        AppealState,
        AppealTextError,
        AppealTexts,
        FiledBy,
        bounded_evidence,
        bounded_text,
    )
    from verifier.records.breach_store import publication_conflict
    from verifier.records.chain_check import ChainCheckReport, Difference, check_chain
    from verifier.records.facade import VerifierRecords
    from verifier.records.reconcile import (
        ChainReconciler,
        Reconciliation,
        reconciliation_counts,
        reconciliations,
    )
    from verifier.records.search import (
        MAX_PAGE_SIZE,
        MAX_RESULTS,
        TRIGRAM,
        BreachJsonPage,
        BreachPage,
    )
    from verifier.records.tables import (
        ERASED_PARTY,
        MIGRATIONS,
        NAME_INDEX_DDL,
        SEARCH_INDEXES,
        breach_records,
        migrate,
        verifications_table,
        verifier_migrations,
    )
    from verifier.records.verifications import RecordedOutcome, Verification, VerificationState

# Each public name and the module that defines it: loaded on first use, so that
# importing one name does not import the whole package (and web3 with it).
_SURFACE = {
    "Access": "verifier.records.accesses",
    "AccessLog": "verifier.records.accesses",
    "AccessPurpose": "verifier.records.accesses",
    "accesses_of": "verifier.records.accesses",
    "Appeal": "verifier.records.appeals",
    "AppealKind": "verifier.records.appeals",
    "AppealRecords": "verifier.records.appeals",
    "AppealState": "verifier.records.appeals",
    "AppealTextError": "verifier.records.appeals",
    "AppealTexts": "verifier.records.appeals",
    "FiledBy": "verifier.records.appeals",
    "bounded_evidence": "verifier.records.appeals",
    "bounded_text": "verifier.records.appeals",
    "breach_records": "verifier.records.tables",
    "BreachJsonPage": "verifier.records.search",
    "BreachPage": "verifier.records.search",
    "ChainCheckReport": "verifier.records.chain_check",
    "ChainReconciler": "verifier.records.reconcile",
    "check_chain": "verifier.records.chain_check",
    "Difference": "verifier.records.chain_check",
    "Reconciliation": "verifier.records.reconcile",
    "reconciliation_counts": "verifier.records.reconcile",
    "reconciliations": "verifier.records.reconcile",
    "ERASED_PARTY": "verifier.records.tables",
    "MAX_PAGE_SIZE": "verifier.records.search",
    "MAX_RESULTS": "verifier.records.search",
    "migrate": "verifier.records.tables",
    "MIGRATIONS": "verifier.records.tables",
    "NAME_INDEX_DDL": "verifier.records.tables",
    "publication_conflict": "verifier.records.breach_store",
    "RecordedOutcome": "verifier.records.verifications",
    "SEARCH_INDEXES": "verifier.records.tables",
    "TRIGRAM": "verifier.records.search",
    "Verification": "verifier.records.verifications",
    "verifications_table": "verifier.records.tables",
    "VerificationState": "verifier.records.verifications",
    "verifier_migrations": "verifier.records.tables",
    "VerifierRecords": "verifier.records.facade",
}

__all__ = [
    "ERASED_PARTY",
    "MAX_PAGE_SIZE",
    "MAX_RESULTS",
    "MIGRATIONS",
    "NAME_INDEX_DDL",
    "SEARCH_INDEXES",
    "TRIGRAM",
    "Access",
    "AccessLog",
    "AccessPurpose",
    "Appeal",
    "AppealKind",
    "AppealRecords",
    "AppealState",
    "AppealTextError",
    "AppealTexts",
    "BreachJsonPage",
    "BreachPage",
    "ChainCheckReport",
    "ChainReconciler",
    "Difference",
    "FiledBy",
    "Reconciliation",
    "RecordedOutcome",
    "Verification",
    "VerificationState",
    "VerifierRecords",
    "accesses_of",
    "bounded_evidence",
    "bounded_text",
    "breach_records",
    "check_chain",
    "migrate",
    "publication_conflict",
    "reconciliation_counts",
    "reconciliations",
    "verifications_table",
    "verifier_migrations",
]


if not TYPE_CHECKING:  # the type checker sees the imports above, and only those names
    __getattr__ = lazy_attributes(__name__, _SURFACE)
