"""`commitledger applicant`: the applicant's side of proving their key, no password.

`sign-challenge` signs a challenge the service issued with the key file that signed the
commitment and prints the signature (base64) to paste into the page at /applicant;
`view` does the whole exchange against a service URL and prints the applicant's own file.
The key never leaves this machine: only the signature over the challenge is sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.output import EXIT_CHECK_FAILED, EXIT_NODE_UNREACHABLE, emit_json, fail, stdout

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
KeyOpt = Annotated[Path, typer.Option("--key", help="The PEM key file that signed the commitment.")]
CommitmentOpt = Annotated[
    str, typer.Option("--commitment", help="The commitment hash (0x and 64 hex digits).")
]
TIMEOUT_S = 30.0


def register(app: typer.Typer) -> None:
    """Add `applicant sign-challenge` and `applicant view` to the command line."""
    applicant_app = typer.Typer(
        help="The applicant's own view: prove the key that signed a commitment.",
        no_args_is_help=True,
    )
    applicant_app.command("sign-challenge")(sign_challenge_command)
    applicant_app.command("view")(view_command)
    app.add_typer(applicant_app, name="applicant")


def sign_challenge_command(
    key: KeyOpt,
    challenge: Annotated[
        str, typer.Option("--challenge", help="The challenge the service gave (64 hex digits).")
    ],
    commitment: CommitmentOpt,
    as_json: JsonOpt = False,
) -> None:
    """Sign a challenge with the commitment's key; print the signature (base64) to paste."""
    signature = _signature(key, challenge, commitment, as_json=as_json)
    if as_json:
        emit_json({"ok": True, "signature": signature})
    else:
        stdout.print(signature, markup=False, soft_wrap=True)


def _signature(key: Path, challenge: str, commitment: str, *, as_json: bool) -> str:
    from api.keyfiles import load_signing_key
    from api.output import reporting_errors
    from api.service import is_challenge_hex, sign_challenge
    from ledger import to_hash32

    challenge = challenge.strip().lower()
    if not is_challenge_hex(challenge):
        fail("--challenge must be the 64 hex digits the service gave", as_json=as_json)
    with reporting_errors(as_json):
        digest = to_hash32(commitment.strip())
        signing_key = load_signing_key(key)
    return sign_challenge(signing_key, challenge, digest)


def view_command(
    key: KeyOpt,
    commitment: CommitmentOpt,
    url: Annotated[
        str, typer.Option("--url", help="The service, e.g. http://127.0.0.1:8000")
    ] = "http://127.0.0.1:8000",
    as_json: JsonOpt = False,
) -> None:
    """Ask for a challenge, sign it, open a session and print your commitments, their
    outcomes, deadlines, notices and breach records."""
    import httpx

    base = url.rstrip("/")
    try:
        with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
            issued = _ask(client, "POST", "/v1/applicant/challenge", {"commitment": commitment})
            signature = _signature(key, issued["challenge"], commitment, as_json=as_json)
            session = _ask(
                client,
                "POST",
                "/v1/applicant/session",
                {
                    "commitment": issued["commitment"],
                    "challenge": issued["challenge"],
                    "signature": signature,
                },
            )
            headers = {"Authorization": f"Bearer {session['token']}"}
            view = _ask(client, "GET", "/v1/applicant/commitments", None, headers)
            client.request("DELETE", "/v1/applicant/session", headers=headers)
    except httpx.TransportError as exc:
        fail(
            f"no service answers at {base}: {type(exc).__name__}",
            as_json=as_json,
            code=EXIT_NODE_UNREACHABLE,
            kind="ServiceUnreachable",
        )
    except _Refused as exc:
        fail(str(exc), as_json=as_json, code=EXIT_CHECK_FAILED, kind="Refused")
    if as_json:
        emit_json({"ok": True, **view})
        return
    for line in _lines(view):
        stdout.print(line, markup=False, soft_wrap=True)


class _Refused(Exception):  # noqa: N818 - the command's own signal, never raised out of it
    """The service answered with a problem."""


def _ask(
    client: Any,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = client.request(method, path, json=body, headers=headers)
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text[:200]
        raise _Refused(f"{method} {path}: {response.status_code} {detail}")
    answer: dict[str, Any] = response.json()
    return answer


def _lines(view: dict[str, Any]) -> list[str]:
    lines = [f"{view['applicant_name']} ({view['applicant_id']}), as of {view['as_of']}"]
    for item in view["commitments"]:
        lines.append("")
        lines.append(f"{item['hash']}  {item['matter_code']} {item['matter_name']}")
        lines.append(f"  verification: {item['verification_state'] or 'not verified yet'}")
        for claim in item["claims"]:
            source = f" [{claim['source']} {claim['answered_at']}]" if claim["source"] else ""
            lines.append(
                f"  claim {claim['key']}: {claim['verdict'] or '-'} "
                f"(observed {claim['observed']}){source}"
            )
        lines += [f"  {d['kind']}: {d['day']}" for d in item["deadlines"]]
        lines += [f"  notice {n['id']} {n['kind']}" for n in item["notices"]]
        lines += [
            f"  breach {b['id']}: {b['status']}, published until {b['publication_end']}"
            for b in item["breaches"]
        ]
    return lines
