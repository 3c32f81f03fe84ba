"""Signed verification reports: what was compared and decided; their hash is the evidence."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from ledger import (
    Hash32,
    SignatureAlgorithm,
    SignatureError,
    SigningKey,
    canonical_bytes,
    canonical_bytes_fast,
    hex32,
    keccak256,
    verify_bytes,
)
from verifier.rules import Comparison

Outcome = Literal["kept", "mismatch", "needs_manual", "false", "integrity_failure"]
REPORT_VERSION = 1


@dataclass(frozen=True)
class VerificationReport:
    """One commitment's verification: the comparisons, the outcome, who decided and when.

    It names no person: the commitment is identified by its hash, the data compared are
    the values of the claims (months, degrees, areas), never names or ID numbers.
    """

    commitment_hash: Hash32
    matter_code: str
    department: str
    outcome: Outcome
    comparisons: tuple[dict[str, Any], ...]
    as_of: date
    decided_at: datetime
    decided_by: str  # "engine" or the person who decided a manual case
    note: str = ""
    # The matter's checks a person must make ({"key", "kind", "description", "status"}):
    # "open" until a person decides the commitment. Absent from reports of matters with none.
    tasks: tuple[dict[str, str], ...] = ()

    def to_json_obj(self) -> dict[str, Any]:
        """The report as plain JSON (what is signed and hashed)."""
        body = {
            "version": REPORT_VERSION,
            "commitment_hash": hex32(self.commitment_hash),
            "matter_code": self.matter_code,
            "department": self.department,
            "outcome": self.outcome,
            "comparisons": list(self.comparisons),
            "as_of": self.as_of.isoformat(),
            "decided_at": self.decided_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "decided_by": self.decided_by,
            "note": self.note,
        }
        if self.tasks:
            body["tasks"] = [dict(task) for task in self.tasks]
        return body


@dataclass(frozen=True)
class SignedReport:
    """A report with the department's signature beside it; `evidence` is its on-chain hash."""

    report: dict[str, Any]
    algorithm: str
    public_key: str
    signature: str
    evidence: Hash32  # evidence_hash of the report: what recordOutcome stores
    # `to_json_obj` as JSON text, made from the bytes signed where the report was signed: the
    # outcome outbox stores it as it is rather than encode the report a second time.
    stored_json: str | None = field(default=None, compare=False, repr=False)

    def to_json_obj(self) -> dict[str, Any]:
        """Report and signature as plain JSON."""
        return {
            "report": self.report,
            "signature": {
                "algorithm": self.algorithm,
                "public_key": self.public_key,
                "value": self.signature,
            },
        }

    @classmethod
    def from_json_obj(cls, obj: dict[str, Any], evidence: Hash32 | None = None) -> SignedReport:
        """Parse what `to_json_obj` wrote; `evidence`: its hash, when stored beside it."""
        signature = obj["signature"]
        report = obj["report"]
        return cls(
            report,
            signature["algorithm"],
            signature["public_key"],
            signature["value"],
            evidence_hash(report) if evidence is None else evidence,
        )

    @property
    def matter_code(self) -> str:
        """The matter of the commitment verified."""
        return str(self.report["matter_code"])

    @property
    def as_of(self) -> date:
        """The day the commitment was verified as of."""
        return date.fromisoformat(self.report["as_of"])

    @property
    def outcome(self) -> str:
        """The outcome decided."""
        return str(self.report["outcome"])

    @property
    def note(self) -> str:
        """What the decider noted (why a person decided, what could not be checked)."""
        return str(self.report.get("note") or "")

    def tasks(self) -> tuple[dict[str, str], ...]:
        """The checks a person must make, with their status ("open" or "done")."""
        return tuple(dict(task) for task in self.report.get("tasks", ()))

    def comparisons(self) -> tuple[Comparison, ...]:
        """The comparisons of the report, as the decider made them."""
        return tuple(Comparison.from_json_obj(c) for c in self.report.get("comparisons", ()))


@dataclass(frozen=True)
class ClosingNote:
    """What the expiry or the correction of a breach records as its evidence: unsigned (the
    breach it closes was decided by a signed report), hashed like a report's body."""

    report: dict[str, Any]
    evidence: Hash32

    @classmethod
    def of(cls, body: dict[str, Any]) -> ClosingNote:
        """A note of `body`, with its evidence hash."""
        return cls(body, evidence_hash(body))

    def to_json_obj(self) -> dict[str, Any]:
        """The note as plain JSON (as the outbox stores it)."""
        return {"report": self.report}


OutboxReport = SignedReport | ClosingNote
"""What an outcome in the outbox carries: a signed report, or the note closing a breach."""


def outbox_report(obj: dict[str, Any], evidence: Hash32 | None = None) -> OutboxReport:
    """An outbox report from its stored JSON; `evidence`: its hash, stored beside it."""
    if "signature" in obj:
        return SignedReport.from_json_obj(obj, evidence)
    body = obj["report"]
    return ClosingNote(body, evidence_hash(body) if evidence is None else evidence)


def report_bytes(body: dict[str, Any]) -> bytes:
    """The canonical (RFC 8785) bytes of a report: what is signed and hashed.

    Most reports hold only strings and small integers, for which the stdlib's C encoder
    writes the same bytes as the JCS encoder several times faster."""
    return canonical_bytes_fast(body)


def evidence_hash(report: dict[str, Any] | bytes) -> Hash32:
    """THIS IS WHERE EVIDENCE HASHES ARE MADE: keccak256 of a report's canonical bytes.

    The value ``recordOutcome`` stores on chain beside an outcome, linking it to the signed
    report. ``report`` is the report's body (``VerificationReport.to_json_obj()``), or its
    ``report_bytes`` when the caller has made them already (to sign them).
    """
    data = report if isinstance(report, bytes) else report_bytes(report)
    return keccak256(data)


def sign_report(report: VerificationReport, key: SigningKey) -> SignedReport:
    """Sign the report's canonical bytes with the department's key."""
    body = report.to_json_obj()
    data = report_bytes(body)  # once: signing, the evidence hash and the stored JSON share it
    value = key.sign(data)
    signature = {
        "algorithm": key.algorithm,
        "public_key": key.public_key_b64(),
        "value": base64.b64encode(value).decode("ascii"),
    }
    stored = json.dumps(signature, sort_keys=True, separators=(",", ":"))
    return SignedReport(
        body,
        signature["algorithm"],
        signature["public_key"],
        signature["value"],
        evidence_hash(data),
        f'{{"report":{data.decode("utf-8")},"signature":{stored}}}',
    )


def verify_report(signed: SignedReport) -> None:
    """Check a report's signature; SignatureError when it does not verify."""
    if signed.algorithm not in ("ed25519", "ecdsa-p256"):
        raise SignatureError(f"unknown signature algorithm {signed.algorithm!r}")
    algorithm: SignatureAlgorithm = "ed25519" if signed.algorithm == "ed25519" else "ecdsa-p256"
    if not verify_bytes(
        algorithm, signed.public_key, signed.signature, canonical_bytes(signed.report)
    ):
        raise SignatureError("the report's signature does not verify: it was changed or forged")
