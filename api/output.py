"""How the command line reports: one JSON document with --json, rich text otherwise; exit codes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from api.errors import DemoError, MissingKeyError, TokenError
from ledger import (
    ApplicantExcludedError,
    ChainError,
    CompilerError,
    ContractRevertError,
    ErasedError,
    ErasureRefusedError,
    InvalidDocumentError,
    InvalidHashError,
    LedgerError,
    MerkleError,
    NodeUnreachableError,
    ProofBundleError,
    SafeError,
    SignatureError,
    StoreError,
    TransactionTimeoutError,
    VaultError,
)
from verifier import (
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

# The README's "Exit codes": 0 success, 1 a check failed or the contract refused, 2 bad input,
# 3 no node answers at the URL given (or the deployment's).
EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_NODE_UNREACHABLE = 3

# Every project error's exit code, in one place: every command reports through
# `reporting_errors` (and `CommandGroup` catches any that escapes a command). The most
# specific class of an error's MRO listed here decides; a new error class belongs here too
# (a test checks that each one in ledger.errors, verifier.errors and api.errors is listed).
EXIT_CODES: dict[type[BaseException], int] = {
    # The root: the project refused (a check failed, the contract, store or engine said no).
    LedgerError: EXIT_CHECK_FAILED,
    # ledger: what the user gave is wrong, and nothing was sent
    InvalidDocumentError: EXIT_BAD_INPUT,
    SignatureError: EXIT_BAD_INPUT,
    SafeError: EXIT_BAD_INPUT,  # a Safe proposal altered, or signed by someone it does not name
    InvalidHashError: EXIT_BAD_INPUT,
    MerkleError: EXIT_BAD_INPUT,
    ProofBundleError: EXIT_BAD_INPUT,
    VaultError: EXIT_BAD_INPUT,  # a master key missing or malformed, sealed data altered
    ErasedError: EXIT_BAD_INPUT,
    NodeUnreachableError: EXIT_NODE_UNREACHABLE,  # nothing answers at the --rpc or deployment URL
    # ledger: refusals and failures on the way
    ChainError: EXIT_CHECK_FAILED,
    ContractRevertError: EXIT_CHECK_FAILED,  # the contract refused
    TransactionTimeoutError: EXIT_CHECK_FAILED,
    CompilerError: EXIT_CHECK_FAILED,
    StoreError: EXIT_CHECK_FAILED,
    ApplicantExcludedError: EXIT_CHECK_FAILED,
    ErasureRefusedError: EXIT_CHECK_FAILED,  # the law keeps a published breach
    # verifier
    VerificationError: EXIT_CHECK_FAILED,  # the engine refused (also while publishing breaches)
    RecordsError: EXIT_CHECK_FAILED,
    UnknownRecordError: EXIT_CHECK_FAILED,
    BreachError: EXIT_CHECK_FAILED,
    BreachStateError: EXIT_CHECK_FAILED,
    RepairTooEarlyError: EXIT_CHECK_FAILED,
    SourceError: EXIT_CHECK_FAILED,
    SourceUnavailable: EXIT_CHECK_FAILED,
    SourceGarbage: EXIT_CHECK_FAILED,
    UnknownSourceError: EXIT_CHECK_FAILED,
    FeedError: EXIT_BAD_INPUT,  # a webhook URL or feed record given that is not one
    CursorError: EXIT_BAD_INPUT,
    # api
    TokenError: EXIT_CHECK_FAILED,
    MissingKeyError: EXIT_CHECK_FAILED,
    DemoError: EXIT_CHECK_FAILED,
    # not the project's: a file that cannot be read or written
    OSError: EXIT_BAD_INPUT,
}

# Progress and human text go to stderr so that stdout carries only the result.
console = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


def exit_code_of(error: BaseException) -> int | None:
    """The exit code of an error by `EXIT_CODES`; None for one the command line does not map."""
    for cls in type(error).__mro__:
        code = EXIT_CODES.get(cls)
        if code is not None:
            return code
    return None


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def fail(
    message: str,
    *,
    as_json: bool,
    code: int = EXIT_BAD_INPUT,
    kind: str = "BadInput",
    details: dict[str, Any] | None = None,
) -> NoReturn:
    """Report an error in one line (or one JSON document, with `details`) and exit with `code`."""
    if as_json:
        emit_json({"ok": False, "error": {"type": kind, "message": message, **(details or {})}})
    else:
        # Text, not markup: file names like "[x].json" must print as they are.
        console.print(Text.assemble(("error:", "bold red"), " ", message.replace("\n", " ")))
    raise typer.Exit(code)


def fail_with(error: LedgerError | OSError, *, as_json: bool) -> NoReturn:
    """Report a project error (or a file error) in one line and exit with its `EXIT_CODES` code."""
    code = exit_code_of(error)
    if code is None:  # cannot happen: LedgerError and OSError are both in EXIT_CODES
        code = EXIT_CHECK_FAILED
    if not isinstance(error, LedgerError):  # a file error (NodeUnreachableError is both)
        fail(_file_error(error), as_json=as_json, code=code, kind="FileError")
    if isinstance(error, ContractRevertError):
        from api.cli import explain  # the command line is loaded: a command runs

        raw = {"raw": str(error), "args": [_plain(a) for a in error.error_args]}
        attempt = getattr(error, "attempt", None)
        message = f"{attempt}: {explain(error)}" if attempt else explain(error)
        fail(message, as_json=as_json, code=code, kind=error.error_name, details=raw)
    if isinstance(error, NodeUnreachableError):
        message = f"{error}: start the node, or give the URL of one that runs (--rpc)"
        fail(message, as_json=as_json, code=code, kind="NodeUnreachableError")
    fail(str(error), as_json=as_json, code=code, kind=type(error).__name__)


def _file_error(error: OSError) -> str:
    name = str(error.filename or "file")
    if isinstance(error, FileNotFoundError) and name.endswith("deployment.json"):
        return (
            f"no deployment at {name}: deploy the contract with `commitledger deploy --rpc URL "
            "--admin-key K --department D --registrar-key K --verifier-key K` (or `commitledger "
            "serve`, which deploys to the chain it runs), or give --deployment FILE"
        )
    return f"{name}: {error.strerror}"


def _plain(value: object) -> object:
    return "0x" + value.hex() if isinstance(value, bytes) else value


@contextmanager
def attempting(what: str) -> Iterator[None]:
    """Name what was tried in a contract refusal that happens inside: "anchoring 3
    commitments as 0x..: the contract refused: ..." (who tried what, and why not)."""
    try:
        yield
    except ContractRevertError as exc:
        exc.attempt = what  # type: ignore[attr-defined]
        raise


@contextmanager
def reporting_errors(as_json: bool) -> Iterator[None]:
    """Turn the project's errors into one-line messages and their `EXIT_CODES` exit codes."""
    try:
        yield
    except (LedgerError, OSError) as exc:
        fail_with(exc, as_json=as_json)


def human(render: Callable[[], None], *, as_json: bool) -> None:
    """Run `render` only when the output is for people."""
    if not as_json:
        render()


def _is_usage_error(exc: BaseException) -> bool:
    # Typer vendors click privately (typer._click), so match the class by name, not by import.
    return any(cls.__name__ == "UsageError" for cls in type(exc).__mro__)


# Help drawn for a pipe or a file is this wide (rich's default there, 80, cut options off).
HELP_WIDTH = 120


def _wide_help() -> None:
    """Help not cut at 80 columns when stdout is no terminal (a terminal's own width holds)."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS") or os.environ.get("TERMINAL_WIDTH"):
        return
    os.environ["TERMINAL_WIDTH"] = str(HELP_WIDTH)  # read when typer draws help
    rich_utils = sys.modules.get("typer.rich_utils")  # already imported (in-process runs)
    if rich_utils is not None and getattr(rich_utils, "MAX_WIDTH", None) is None:
        rich_utils.MAX_WIDTH = HELP_WIDTH  # type: ignore[attr-defined]


class CommandGroup(TyperGroup):
    """The command group: usage errors also come as one JSON document when --json is given."""

    def main(self, args: Any = None, *pos: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        kwargs["standalone_mode"] = False
        _wide_help()
        try:
            code = super().main(argv, *pos, **kwargs)
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
        except typer.Abort:
            console.print("aborted")
            sys.exit(EXIT_CHECK_FAILED)
        except LedgerError as exc:
            # One that a command let escape its `reporting_errors`: still one line, its code.
            try:
                fail_with(exc, as_json="--json" in argv)
            except typer.Exit as done:
                sys.exit(done.exit_code)
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
