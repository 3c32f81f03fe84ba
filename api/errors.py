"""Every error the api layer raises on purpose, each under ledger's ``LedgerError`` root."""

from __future__ import annotations

from ledger import InvalidDocumentError, LedgerError

__all__ = ["DemoError", "MissingKeyError", "RunRefusedError", "TokenError"]


class TokenError(LedgerError, ValueError):
    """A token cannot be issued or revoked as asked."""


class MissingKeyError(LedgerError, LookupError):
    """A department key the action needs is not in the keys directory."""


class DemoError(LedgerError):
    """A step of the demo could not complete (the pipeline did not drain, say)."""


class RunRefusedError(InvalidDocumentError):
    """A verification run would record outcomes it cannot stand behind; nothing was sent."""
