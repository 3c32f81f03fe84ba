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
    from verifier.records.notices import (
        MAX_REASONS,
        MAX_STATEMENT,
        Delivery,
        Notice,
        NoticeClosedError,
        NoticeRecords,
        NoticeState,
        Statement,
        StatementBy,
        StatementError,
        bounded_defence_text,
        seal_reasons,
    )
    from verifier.records.reconcile import (
        ChainReconciler,
        Reconciliation,
        reconciliation_counts,
        reconciliations,
    )
    from verifier.records.rectifications import (
        Rectification,
        RectificationRecords,
        RectificationState,
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
    from verifier.records.tasks import (
        MAX_TASK_NOTE,
        MAX_TASK_PAGE,
        TaskError,
        TaskPage,
        TaskRecords,
        TaskResult,
        TaskRow,
        TaskStatus,
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
    "Rectification": "verifier.records.rectifications",
    "RectificationRecords": "verifier.records.rectifications",
    "RectificationState": "verifier.records.rectifications",
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
    "bounded_defence_text": "verifier.records.notices",
    "Delivery": "verifier.records.notices",
    "MAX_REASONS": "verifier.records.notices",
    "MAX_STATEMENT": "verifier.records.notices",
    "Notice": "verifier.records.notices",
    "NoticeClosedError": "verifier.records.notices",
    "NoticeRecords": "verifier.records.notices",
    "NoticeState": "verifier.records.notices",
    "seal_reasons": "verifier.records.notices",
    "Statement": "verifier.records.notices",
    "StatementBy": "verifier.records.notices",
    "StatementError": "verifier.records.notices",
    "RecordedOutcome": "verifier.records.verifications",
    "SEARCH_INDEXES": "verifier.records.tables",
    "TRIGRAM": "verifier.records.search",
    "MAX_TASK_NOTE": "verifier.records.tasks",
    "MAX_TASK_PAGE": "verifier.records.tasks",
    "TaskError": "verifier.records.tasks",
    "TaskPage": "verifier.records.tasks",
    "TaskRecords": "verifier.records.tasks",
    "TaskResult": "verifier.records.tasks",
    "TaskRow": "verifier.records.tasks",
    "TaskStatus": "verifier.records.tasks",
    "Verification": "verifier.records.verifications",
    "verifications_table": "verifier.records.tables",
    "VerificationState": "verifier.records.verifications",
    "verifier_migrations": "verifier.records.tables",
    "VerifierRecords": "verifier.records.facade",
}

__all__ = [
    "ERASED_PARTY",
    "MAX_PAGE_SIZE",
    "MAX_REASONS",
    "MAX_RESULTS",
    "MAX_STATEMENT",
    "MAX_TASK_NOTE",
    "MAX_TASK_PAGE",
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
    "Delivery",
    "Difference",
    "FiledBy",
    "Notice",
    "NoticeClosedError",
    "NoticeRecords",
    "NoticeState",
    "Reconciliation",
    "RecordedOutcome",
    "Rectification",
    "RectificationRecords",
    "RectificationState",
    "Statement",
    "StatementBy",
    "StatementError",
    "TaskError",
    "TaskPage",
    "TaskRecords",
    "TaskResult",
    "TaskRow",
    "TaskStatus",
    "Verification",
    "VerificationState",
    "VerifierRecords",
    "accesses_of",
    "bounded_defence_text",
    "bounded_evidence",
    "bounded_text",
    "breach_records",
    "check_chain",
    "migrate",
    "publication_conflict",
    "reconciliation_counts",
    "reconciliations",
    "seal_reasons",
    "verifications_table",
    "verifier_migrations",
]


if not TYPE_CHECKING:  # the type checker sees the imports above, and only those names
    __getattr__ = lazy_attributes(__name__, _SURFACE)
