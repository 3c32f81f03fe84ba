"""The verifier: the matter catalog, department data sources, comparison rules, signed reports,
breach records as the public sees them, and the working-day calendar.

Subpackages: `verifier.engine` (the verification run), `verifier.records` (verifications and
breach records in the store, the public search) and `verifier.feed` (the credit platform's feed,
which sits above the rest of the verifier). Imports point down only: verifier uses ledger,
never api.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from verifier.breaches import (
        BreachEvidence,
        BreachRecord,
        PublicationPeriod,
        add_months,
        can_repair,
        corrected,
        earliest_repair,
        expired,
        make_breach_record,
        mask_id_number,
        mask_person_name,
        publication_over,
        publication_period,
        publicly_listed,
        repaired,
    )
    from verifier.calendar import Deadline, WorkingDays, default_calendar
    from verifier.catalog import (
        MATTERS_DIR,
        Catalog,
        ClaimSpec,
        Matter,
        Notice,
        default_catalog,
        load_catalog,
    )
    from verifier.errors import (
        BreachError,
        BreachStateError,
        CursorError,
        FeedError,
        RecordsError,
        RepairTooEarlyError,
        SourceError,
        SourceGarbage,
        SourceUnavailable,
        UnknownRecordError,
        UnknownSourceError,
        VerificationError,
    )
    from verifier.reports import (
        ClosingNote,
        SignedReport,
        VerificationReport,
        evidence_hash,
        report_bytes,
        sign_report,
        verify_report,
    )
    from verifier.rules import BOOKING_LAG_MONTHS, Comparison, compare, normalise_text
    from verifier.sources import (
        CsvSource,
        DataSource,
        HttpSource,
        SourceRegistry,
        SqlSource,
        Subject,
        http_sources,
        sql_source_table,
    )

# Each public name and the module that defines it: loaded on first use, so that
# importing one name does not import the whole package (and web3 with it).
_SURFACE = {
    "add_months": "verifier.breaches",
    "BOOKING_LAG_MONTHS": "verifier.rules",
    "BreachError": "verifier.errors",
    "BreachEvidence": "verifier.breaches",
    "BreachRecord": "verifier.breaches",
    "BreachStateError": "verifier.errors",
    "can_repair": "verifier.breaches",
    "Catalog": "verifier.catalog",
    "ClaimSpec": "verifier.catalog",
    "ClosingNote": "verifier.reports",
    "compare": "verifier.rules",
    "Comparison": "verifier.rules",
    "corrected": "verifier.breaches",
    "CsvSource": "verifier.sources",
    "CursorError": "verifier.errors",
    "DataSource": "verifier.sources",
    "Deadline": "verifier.calendar",
    "default_calendar": "verifier.calendar",
    "default_catalog": "verifier.catalog",
    "earliest_repair": "verifier.breaches",
    "evidence_hash": "verifier.reports",
    "expired": "verifier.breaches",
    "FeedError": "verifier.errors",
    "http_sources": "verifier.sources",
    "HttpSource": "verifier.sources",
    "load_catalog": "verifier.catalog",
    "make_breach_record": "verifier.breaches",
    "mask_id_number": "verifier.breaches",
    "mask_person_name": "verifier.breaches",
    "Matter": "verifier.catalog",
    "MATTERS_DIR": "verifier.catalog",
    "normalise_text": "verifier.rules",
    "Notice": "verifier.catalog",
    "publication_over": "verifier.breaches",
    "publication_period": "verifier.breaches",
    "PublicationPeriod": "verifier.breaches",
    "publicly_listed": "verifier.breaches",
    "RecordsError": "verifier.errors",
    "repaired": "verifier.breaches",
    "RepairTooEarlyError": "verifier.errors",
    "report_bytes": "verifier.reports",
    "sign_report": "verifier.reports",
    "SignedReport": "verifier.reports",
    "SourceError": "verifier.errors",
    "SourceGarbage": "verifier.errors",
    "SourceRegistry": "verifier.sources",
    "SourceUnavailable": "verifier.errors",
    "sql_source_table": "verifier.sources",
    "SqlSource": "verifier.sources",
    "Subject": "verifier.sources",
    "UnknownRecordError": "verifier.errors",
    "UnknownSourceError": "verifier.errors",
    "VerificationError": "verifier.errors",
    "VerificationReport": "verifier.reports",
    "verify_report": "verifier.reports",
    "WorkingDays": "verifier.calendar",
}

__all__ = [
    "BOOKING_LAG_MONTHS",
    "MATTERS_DIR",
    "BreachError",
    "BreachEvidence",
    "BreachRecord",
    "BreachStateError",
    "Catalog",
    "ClaimSpec",
    "ClosingNote",
    "Comparison",
    "CsvSource",
    "CursorError",
    "DataSource",
    "Deadline",
    "FeedError",
    "HttpSource",
    "Matter",
    "Notice",
    "PublicationPeriod",
    "RecordsError",
    "RepairTooEarlyError",
    "SignedReport",
    "SourceError",
    "SourceGarbage",
    "SourceRegistry",
    "SourceUnavailable",
    "SqlSource",
    "Subject",
    "UnknownRecordError",
    "UnknownSourceError",
    "VerificationError",
    "VerificationReport",
    "WorkingDays",
    "add_months",
    "can_repair",
    "compare",
    "corrected",
    "default_calendar",
    "default_catalog",
    "earliest_repair",
    "evidence_hash",
    "expired",
    "http_sources",
    "load_catalog",
    "make_breach_record",
    "mask_id_number",
    "mask_person_name",
    "normalise_text",
    "publication_over",
    "publication_period",
    "publicly_listed",
    "repaired",
    "report_bytes",
    "sign_report",
    "sql_source_table",
    "verify_report",
]


def __getattr__(name: str) -> Any:
    module = _SURFACE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
