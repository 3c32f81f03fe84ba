"""The verifier records' refusals: an unknown record, or a change to it not allowed."""

from ledger import LedgerError


class RecordsError(LedgerError, ValueError):
    """A verifier record is unknown, or a change to it is not allowed."""


class UnknownRecordError(RecordsError, LookupError):
    """No verification or breach record has this key."""
