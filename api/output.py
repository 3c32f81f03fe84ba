"""How the command line reports: one JSON document with --json, rich text otherwise; exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

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
from ledger.errors import VaultError

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2

# Progress and human text go to stderr so that stdout carries only the result.
console = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)

_BAD_INPUT = (
    VaultError,
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
        # Text, not markup: file names like "[x].json" must print as they are.
        console.print(Text.assemble(("error:", "bold red"), " ", message.replace("\n", " ")))
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


def _is_usage_error(exc: BaseException) -> bool:
    # Typer vendors click privately (typer._click), so match the class by name, not by import.
    return any(cls.__name__ == "UsageError" for cls in type(exc).__mro__)


class CommandGroup(TyperGroup):
    """The command group: usage errors also come as one JSON document when --json is given."""

    def main(self, args: Any = None, *pos: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        kwargs["standalone_mode"] = False
        try:
            code = super().main(argv, *pos, **kwargs)
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
        except typer.Abort:
            console.print("aborted")
            sys.exit(EXIT_CHECK_FAILED)
        except Exception as exc:
            if not _is_usage_error(exc):
                raise
            message = exc.format_message()  # type: ignore[attr-defined]
            if "--json" in argv:
                emit_json({"ok": False, "error": {"type": "UsageError", "message": message}})
            else:
                exc.show()  # type: ignore[attr-defined]
            sys.exit(EXIT_BAD_INPUT)
        sys.exit(code if isinstance(code, int) else EXIT_OK)
