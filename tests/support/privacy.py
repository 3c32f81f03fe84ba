"""For the privacy tests: the command line in-process, and checks that no name or ID leaks."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import pytest
from typer.testing import CliRunner, Result

from api.cli import app
from ledger import Commitment

RUNNER = CliRunner()


def cli(*args: object, env: Mapping[str, str | None] | None = None) -> Result:
    """Run `commitledger ARGS` in-process."""
    return RUNNER.invoke(app, [str(a) for a in args], env={"COLUMNS": "1000", **(env or {})})


def explain(result: Result) -> str:
    return f"exit {result.exit_code}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}"


def personal_data(documents: Sequence[Commitment]) -> list[str]:
    """Every applicant's name and ID number (what must never leak)."""
    found = []
    for document in documents:
        found += [document.applicant.name, document.applicant.id_number]
    return found


def debug_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    """Capture every logger at DEBUG, so that nothing said is missed."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    """The captured records' messages, arguments and tracebacks."""
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        if record.exc_text:
            parts.append(record.exc_text)
    return "\n".join(parts)


def assert_nothing_personal(text: str, documents: Sequence[Commitment], where: str) -> None:
    for secret in personal_data(documents):
        assert secret not in text, f"{secret!r} appears in {where}"
