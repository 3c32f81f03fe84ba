"""How the command line reports: one JSON document with --json, rich text otherwise; exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console

from ledger import (
    ContractRevertError,
    InvalidDocumentError,
    InvalidHashError,
    LedgerError,
    MerkleError,
    NodeUnreachableError,
    ProofBundleError,
    SignatureError,
)

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2

# Progress and human text go to stderr so that stdout carries only the result.
console = Console(stderr=True, highlight=False)
stdout = Console(highlight=False, soft_wrap=True)

_BAD_INPUT = (
    InvalidDocumentError,
    SignatureError,
    InvalidHashError,
    ProofBundleError,
    MerkleError,
    NodeUnreachableError,
)


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def fail(
    message: str, *, as_json: bool, code: int = EXIT_BAD_INPUT, kind: str = "BadInput"
) -> NoReturn:
    """Report an error in one line (or one JSON document) and exit with `code`."""
    if as_json:
        emit_json({"ok": False, "error": {"type": kind, "message": message}})
    else:
        console.print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code)


@contextmanager
def reporting_errors(as_json: bool) -> Iterator[None]:
    """Turn the ledger's errors into one-line messages and exit codes (2 bad input, 1 refused)."""
    try:
        yield
    except _BAD_INPUT as exc:
        fail(str(exc), as_json=as_json, kind=type(exc).__name__)
    except ContractRevertError as exc:
        fail(str(exc), as_json=as_json, code=EXIT_CHECK_FAILED, kind=exc.error_name)
    except LedgerError as exc:
        fail(str(exc), as_json=as_json, code=EXIT_CHECK_FAILED, kind=type(exc).__name__)
    except OSError as exc:
        fail(f"{exc.filename or 'file'}: {exc.strerror}", as_json=as_json, kind="FileError")


def human(render: Callable[[], None], *, as_json: bool) -> None:
    """Run `render` only when the output is for people."""
    if not as_json:
        render()
