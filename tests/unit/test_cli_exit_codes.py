"""One mapping from every project error to its exit code (README: 0 success, 1 a check failed
or the contract refused, 2 bad input), used by every command, `verify run` included."""

from __future__ import annotations

import inspect
import re
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer
from support.cli import one_json, one_line
from support.verify_cli import HRSS, cli, explain, run_args, write_keys

import api.errors
import api.output
import api.run_start
import ledger
import ledger.errors
import verifier.engine
import verifier.errors
from api.cli import SENTENCES
from api.cli import verify as cli_verify
from api.output import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    EXIT_CODES,
    EXIT_NODE_UNREACHABLE,
    attempting,
    exit_code_of,
    reporting_errors,
)
from ledger import REGISTRAR_ROLE, Chain, LedgerError, department_id
from verifier import VerificationError

ERROR_MODULES = (ledger.errors, verifier.errors, api.errors)


def _errors(module: ModuleType) -> list[type[BaseException]]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == module.__name__
    ]


ALL_ERRORS = [cls for module in ERROR_MODULES for cls in _errors(module)]


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance of `cls` with a message, whatever its constructor asks for."""
    parameters = list(inspect.signature(cls.__init__).parameters)[1:]
    if parameters in (["args", "kwargs"], []):
        return cls("what went wrong")
    examples: dict[str, Any] = {
        "name": "AlreadyAnchored",
        "args": (),
        "raw": b"",
        "source": "social_insurance",
        "detail": "what went wrong",
        "known": ["social_insurance"],
        "record_id": "BR-1",
        "severity": "serious",
        "months": 6,
        "earliest": date(2027, 6, 1),
        "on": date(2027, 1, 1),
        "problem": "forged",
        "message": "what went wrong",
    }
    return cls(*(examples[name] for name in parameters))


def test_the_error_modules_hold_errors() -> None:
    assert {cls.__module__ for cls in ALL_ERRORS} == {m.__name__ for m in ERROR_MODULES}
    assert len(ALL_ERRORS) >= 25


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_is_under_the_root_and_has_a_chosen_exit_code(
    cls: type[BaseException],
) -> None:
    assert issubclass(cls, LedgerError)
    # Listed itself, or under a listed error other than the root: a new family never takes
    # the root's code by default; a new kind of bad input under InvalidDocumentError may.
    decided_by = next(c for c in cls.__mro__ if c in EXIT_CODES)
    assert decided_by is not LedgerError or cls is LedgerError, (
        f"{cls.__name__}: say in api.output.EXIT_CODES which exit code it gives"
    )
    assert EXIT_CODES[decided_by] in (EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_NODE_UNREACHABLE)


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_reporting_errors_exits_with_the_mapped_code_and_one_json_document(
    cls: type[BaseException], capsys: pytest.CaptureFixture[str]
) -> None:
    error = _instance(cls)
    with pytest.raises(typer.Exit) as exited, reporting_errors(as_json=True):
        raise error
    assert exited.value.exit_code == exit_code_of(error)
    assert exit_code_of(error) in (EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_NODE_UNREACHABLE)
    document = one_json(capsys.readouterr().out)
    assert document["ok"] is False
    if isinstance(error, ledger.errors.ContractRevertError):  # a sentence; the raw form kept
        assert document["error"]["raw"] == str(error)
    else:
        assert document["error"]["message"].startswith(str(error))


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (VerificationError("refused"), EXIT_CHECK_FAILED),
        (verifier.errors.FeedError("not a URL"), EXIT_BAD_INPUT),
        (verifier.errors.CursorError("malformed", "not a cursor"), EXIT_BAD_INPUT),
        (ledger.errors.ErasedError("gone"), EXIT_BAD_INPUT),
        (ledger.errors.NodeUnreachableError("no node"), EXIT_NODE_UNREACHABLE),
        (ledger.errors.ContractRevertError("AlreadyAnchored"), EXIT_CHECK_FAILED),
        (FileNotFoundError(2, "No such file or directory", "x.json"), EXIT_BAD_INPUT),
    ],
)
def test_the_most_specific_class_decides(error: BaseException, code: int) -> None:
    assert exit_code_of(error) == code


def test_errors_keep_the_builtin_they_resemble() -> None:
    # Callers that catch the builtin keep working now that these are under LedgerError.
    assert issubclass(verifier.errors.FeedError, ValueError)
    assert issubclass(verifier.errors.CursorError, ValueError)
    assert issubclass(verifier.errors.UnknownRecordError, LookupError)
    assert issubclass(verifier.errors.SourceUnavailable, ConnectionError)
    assert issubclass(ledger.errors.ApplicantExcludedError, PermissionError)
    assert issubclass(ledger.errors.StoreError, RuntimeError)
    assert issubclass(api.errors.MissingKeyError, LookupError)


def test_a_node_error_is_not_reported_as_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    # NodeUnreachableError is a ConnectionError (an OSError): its own message, not "file: ...".
    with pytest.raises(typer.Exit) as exited, reporting_errors(as_json=False):
        raise ledger.errors.NodeUnreachableError("no Ethereum node answers at http://x")
    assert exited.value.exit_code == EXIT_NODE_UNREACHABLE
    assert one_line(capsys.readouterr().err) == (
        "error: no Ethereum node answers at http://x: start the node, or give the URL of one "
        "that runs (--rpc)"
    )


def test_a_missing_deployment_says_how_to_make_one(capsys: pytest.CaptureFixture[str]) -> None:
    missing = FileNotFoundError(2, "No such file or directory", "data/deployment.json")
    with pytest.raises(typer.Exit) as exited, reporting_errors(as_json=False):
        raise missing
    assert exited.value.exit_code == EXIT_BAD_INPUT
    line = one_line(capsys.readouterr().err)
    assert line.startswith("error: no deployment at data/deployment.json: deploy the contract")
    assert "commitledger deploy --rpc URL" in line and "commitledger serve" in line


@pytest.mark.parametrize(
    ("name", "args", "phrases"),
    [
        (
            "AccessControlUnauthorizedAccount",
            ("0x" + "f7" * 20, bytes(REGISTRAR_ROLE)),
            ["account 0xf7f7", "registrar (REGISTRAR_ROLE) role", "commitledger deploy"],
        ),
        (
            "TransitionNotAllowed",
            (b"\x12" * 32, 5, 2),
            ["0x1212", "cannot go from NeedsManual to Withdrawn", "status machine"],
        ),
        ("BatchAlreadyAnchored", (b"\xab" * 32,), ["root 0xabab", "already anchored"]),
        ("AccountBoundElsewhere", ("0x" + "01" * 20, bytes(department_id(HRSS))), [HRSS]),
    ],
)
def test_contract_errors_read_as_sentences_and_keep_the_raw_error_in_json(
    name: str, args: tuple[object, ...], phrases: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    error = ledger.errors.ContractRevertError(name, args)
    with pytest.raises(typer.Exit) as exited, reporting_errors(as_json=False):
        raise error
    assert exited.value.exit_code == EXIT_CHECK_FAILED
    line = one_line(capsys.readouterr().err)
    assert line.startswith("error: the contract refused: ")
    assert name not in line
    for phrase in phrases:
        assert phrase in line, (phrase, line)
    with pytest.raises(typer.Exit), reporting_errors(as_json=True):
        raise error
    document = one_json(capsys.readouterr().out)["error"]
    assert document["type"] == name
    assert document["raw"] == str(error)
    assert document["message"] == line.removeprefix("error: ")


def test_a_refusal_says_who_tried_what(capsys: pytest.CaptureFixture[str]) -> None:
    error = ledger.errors.ContractRevertError(
        "AccessControlUnauthorizedAccount", ("0x" + "f7" * 20, bytes(REGISTRAR_ROLE))
    )
    what = "anchoring 2 commitment(s) as 0x" + "f7" * 20
    with pytest.raises(typer.Exit), reporting_errors(as_json=False), attempting(what):
        raise error
    line = one_line(capsys.readouterr().err)
    assert line.startswith(
        "error: anchoring 2 commitment(s) as 0xf7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7: "
        "the contract refused: account 0xf7"
    )


def test_every_custom_error_of_the_contract_has_a_sentence() -> None:
    root = Path(__file__).resolve().parents[2]
    source = (root / "contracts" / "CommitmentLedger.sol").read_text()
    declared = set(re.findall(r"^\s*error (\w+)\(", source, re.MULTILINE))
    assert len(declared) >= 10
    assert declared <= set(SENTENCES)


# ---------------------------------------------------------------------- verify run


class _Ledger:
    """Just enough of LedgerContract for `verify run` to accept the verifier's account."""

    address = "0x" + "ab" * 20

    def __init__(self, chain: object, address: str) -> None:
        self.address = address

    def department_of(self, account: str) -> bytes:
        return department_id(HRSS)

    def has_role(self, role: bytes, account: str) -> bool:
        return True


class _Engine:
    def close(self) -> None:
        pass


@pytest.fixture
def refused_while_publishing(monkeypatch: pytest.MonkeyPatch) -> None:
    """`verify run` against a node that accepts the verifier, whose run then fails in the
    engine's breach publishing (`OutcomeSender._publish_breach`) with a VerificationError."""

    def run(engine: object, day: date, *, disabled: bool) -> None:
        raise VerificationError("no document for 0x" + "12" * 32)

    monkeypatch.setattr(Chain, "connect", staticmethod(lambda url: object()))
    # The command imports these where it runs (the command line starts quickly).
    # Patched where the command takes them from: the packages' public surfaces.
    monkeypatch.setattr(ledger, "LedgerContract", _Ledger)
    monkeypatch.setattr(verifier.engine, "engine_for", lambda *args, **kwargs: _Engine())
    monkeypatch.setattr(cli_verify, "_run_with_progress", run)
    # The run is for today, the node's day (api.run_start): no node to ask here.
    monkeypatch.setattr(api.run_start, "chain_day", lambda ledger: api.run_start.today())


@pytest.mark.parametrize("as_json", [False, True])
def test_verify_run_reports_a_verification_error_in_one_line_with_exit_code_1(
    refused_while_publishing: None, tmp_path: Path, as_json: bool
) -> None:
    keys = write_keys(tmp_path)
    deployment = tmp_path / "deployment.json"
    deployment.write_text(
        '{"rpc": "http://127.0.0.1:9", "chain_id": 31337, "contract": "0x'
        + "ab" * 20
        + f'", "deployed_at_block": 1, "department": "{HRSS}"}}'
    )
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    token = tmp_path / "token"
    token.write_text("secret\n")
    sources = ["--sources-url", "http://127.0.0.1:9", "--sources-token-file", token]
    extra = ["--json"] if as_json else []
    result = cli(*run_args(keys, deployment, store, *sources, *extra))
    assert result.exit_code == EXIT_CHECK_FAILED, explain(result)
    assert "Traceback" not in result.output
    if as_json:
        error = one_json(result.stdout)["error"]
        assert error == {"type": "VerificationError", "message": "no document for 0x" + "12" * 32}
    else:
        assert result.stdout == ""
        assert one_line(result.stderr) == "error: no document for 0x" + "12" * 32


def test_the_command_group_maps_an_error_that_escapes_a_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A command without `reporting_errors` still gives one line and the mapped code.
    from api.cli import app

    def escaping(*args: object, **kwargs: object) -> None:
        raise VerificationError("refused outside reporting_errors")

    command = typer.main.get_command(app)
    monkeypatch.setattr(cli_verify, "parse_day", escaping)
    with pytest.raises(SystemExit) as exited:
        command.main(["verify", "run", "--key", "k", "--report-key", "r"])
    assert exited.value.code == EXIT_CHECK_FAILED
