"""The verifier: the matter catalog, department data sources, comparison rules, signed reports,
breach records as the public sees them, and the working-day calendar.

Subpackages: `verifier.engine` (the verification run), `verifier.records` (verifications and
breach records in the store, the public search) and `verifier.feed` (the credit platform's feed,
which sits above the rest of the verifier). Imports point down only: verifier uses ledger,
never api.
"""

from verifier.catalog import Catalog, ClaimSpec, Matter, Notice, default_catalog, load_catalog
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

__all__ = [
    "BreachError",
    "BreachStateError",
    "Catalog",
    "ClaimSpec",
    "CursorError",
    "FeedError",
    "Matter",
    "Notice",
    "RecordsError",
    "RepairTooEarlyError",
    "SourceError",
    "SourceGarbage",
    "SourceUnavailable",
    "UnknownRecordError",
    "UnknownSourceError",
    "VerificationError",
    "default_catalog",
    "load_catalog",
]
