"""The `commitledger` command line: one module per group of commands."""

from api.cli.main import app, main

__all__ = ["app", "main"]
