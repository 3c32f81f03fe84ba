"""`commitledger new`: a complete commitment for a matter, from an applicant's data."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.output import emit_json, fail, reporting_errors, stdout
from ledger import InvalidDocumentError

if TYPE_CHECKING:
    from verifier import ClaimSpec, Matter

DEFAULT_CODES = Path("data/issued_codes.json")
_APPLICANT_FIELDS = ("kind", "name", "id_type", "id_number")


def register(app: typer.Typer) -> None:
    """Add the `new` command to `app`."""
    app.command("new")(new_command)


def new_command(
    matter_code: Annotated[
        str, typer.Option("--matter", help="The matter's code in the catalog, e.g. BJ-HRSS-0001.")
    ],
    applicant_file: Annotated[
        Path | None,
        typer.Option(
            "--applicant",
            help="The applicant's data (JSON: applicant, claims, channel); see examples/.",
        ),
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="person or organisation (overrides the file).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="The applicant's name.")] = None,
    id_type: Annotated[
        str | None, typer.Option("--id-type", help="resident_id, passport or uscc.")
    ] = None,
    id_number: Annotated[
        str | None, typer.Option("--id-number", help="The number of that ID.")
    ] = None,
    claim: Annotated[
        list[str] | None,
        typer.Option(
            "--claim",
            help="KEY=VALUE for a claim whose value the applicant states (repeatable).",
        ),
    ] = None,
    channel: Annotated[
        str | None, typer.Option("--channel", help="online or counter (default online).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the commitment (never overwritten).")
    ] = Path("commitment.json"),
    codes_file: Annotated[
        Path,
        typer.Option("--codes-file", help="The codes issued here, kept so each is used once."),
    ] = DEFAULT_CODES,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Write a complete commitment for a matter: a fresh salt and code, the matter's notice
    hash and required claims, the applicant's data from a JSON file or flags."""
    data: dict[str, Any] = {}
    with reporting_errors(as_json):
        if applicant_file is not None:
            from api.files import read_json_file

            loaded = read_json_file(applicant_file)
            if not isinstance(loaded, dict):
                fail(f"{applicant_file}: must hold a JSON object", as_json=as_json)
            data = loaded
    applicant = dict(data.get("applicant") or {})
    for field, given in zip(_APPLICANT_FIELDS, (kind, name, id_type, id_number), strict=True):
        if given is not None:
            applicant[field] = given
    missing = [f for f in _APPLICANT_FIELDS if f not in applicant]
    if missing:
        fail(
            f"the applicant's {', '.join(missing)} missing: give --applicant FILE "
            f"(see examples/) or --{' --'.join(m.replace('_', '-') for m in missing)}",
            as_json=as_json,
        )
    stated = dict(data.get("claims") or {})
    for item in claim or []:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--claim {item!r}: write KEY=VALUE", as_json=as_json)
        stated[key.strip()] = value
    if out.exists():
        fail(f"{out} exists: it is never overwritten; give another --out", as_json=as_json)
    with reporting_errors(as_json):
        from ledger import Commitment, new_salt
        from verifier import default_catalog

        matter = default_catalog().matter(matter_code)
        claims = _claims(matter, stated)
        now = datetime.now(UTC).replace(microsecond=0)
        region = default_catalog().region
        document = Commitment.from_json_obj(
            {
                "schema_version": 1,
                # a placeholder: a code is issued only once the rest is valid
                "code": f"{region}{now:%Y%m%d}000000",
                "matter_code": matter.code,
                "department": matter.department,
                "applicant": applicant,
                "claims": claims,
                "channel": channel or data.get("channel") or "online",
                "signed_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "notice_hash": "0x" + matter.notice_hash().hex(),
                "salt": new_salt(),
            }
        )
        code = issue_code(codes_file, matter.department, region, now)
        document = Commitment.from_json_obj({**document.to_json_obj(), "code": code})
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "x", encoding="utf-8") as handle:
            handle.write(json.dumps(document.to_json_obj(), ensure_ascii=False, indent=2) + "\n")
    result = {"ok": True, "file": str(out), "code": code, "matter": matter.code}
    if as_json:
        emit_json(result)
    else:
        stdout.print(f"wrote {out}: commitment {code} for {matter.code}", markup=False)


def _claims(matter: Matter, stated: dict[str, Any]) -> list[dict[str, Any]]:
    known = {spec.key for spec in matter.claims}
    unknown = sorted(set(stated) - known)
    if unknown:
        raise InvalidDocumentError(
            f"matter {matter.code} has no claim {', '.join(unknown)}; "
            f"its claims: {', '.join(sorted(known))}"
        )
    claims = []
    for spec in matter.claims:
        if spec.value is None:
            if spec.key not in stated:
                raise InvalidDocumentError(
                    f"matter {matter.code} needs the applicant to state {spec.key} "
                    f"({spec.description}): --claim {spec.key}=VALUE"
                )
            value = _typed(spec, stated[spec.key])
        else:
            if spec.key in stated and _typed(spec, stated[spec.key]) != spec.value:
                raise InvalidDocumentError(
                    f"claim {spec.key} is fixed by matter {matter.code} "
                    f"({spec.op} {spec.value!r}); leave it out"
                )
            value = spec.value
        claims.append({"key": spec.key, "op": spec.op, "value": value})
    return claims


def _typed(spec: ClaimSpec, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if spec.type in ("number", "consecutive_months"):
        try:
            return int(value)
        except ValueError:
            raise InvalidDocumentError(
                f"claim {spec.key}: {value!r} is not a whole number"
            ) from None
    if spec.type == "boolean":
        if value.lower() not in ("true", "false"):
            raise InvalidDocumentError(f"claim {spec.key}: write true or false, not {value!r}")
        return value.lower() == "true"
    if spec.type == "set" and spec.op == "in":
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def issue_code(codes_file: Path, department: str, region: str, now: datetime) -> str:
    """The next unused code of `department` for today: region, YYYYMMDD, 6-digit serial.

    The serials issued are kept in `codes_file` (under an exclusive lock), so two `new`
    runs never give one department the same code.
    """
    import fcntl

    codes_file.parent.mkdir(parents=True, exist_ok=True)
    day = f"{now:%Y%m%d}"
    with open(codes_file.with_name(codes_file.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        issued: dict[str, dict[str, int]] = {}
        if codes_file.exists():
            issued = json.loads(codes_file.read_text(encoding="utf-8") or "{}")
        serial = issued.get(department, {}).get(day, 0) + 1
        if serial >= 1_000_000:
            raise InvalidDocumentError(f"{department} has issued every code of {day}")
        issued[department] = {day: serial}
        temporary = codes_file.with_name(codes_file.name + ".tmp")
        temporary.write_text(json.dumps(issued, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, codes_file)
    return f"{region}{day}{serial:06d}"
