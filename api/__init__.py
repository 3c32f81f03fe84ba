"""What people and programs talk to: the `commitledger` command line and the HTTP service.

Imports point down only: api uses verifier and ledger.
"""

from .cli import app, main

__all__ = ["app", "main"]
