"""The decision record: who decided a commitment's application, how, when, and whether late.

A department decides each application made under a commitment (approved or refused). The
record of that decision is canonical JSON (RFC 8785) whose keccak256 hash is anchored as a
leaf of the department's next Merkle batch, beside its commitments: a decision changed
afterwards (its time moved back within the limit, say) no longer matches the chain.

It holds no personal data: the commitment hash, the department, the matter, the channel,
three times and the account that decided (a token id or an officer's account name, never a
person's name or ID number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from ledger.canonical import canonical_bytes, keccak256
from ledger.errors import InvalidDocumentError, InvalidHashError
from ledger.types import Hash32, hex32, to_hash32

__all__ = [
    "DECISION_SCHEMA",
    "DecisionChannel",
    "DecisionRecord",
    "DecisionResult",
]

DecisionResult = Literal["approved", "refused"]
DecisionChannel = Literal["counter", "online"]

DECISION_SCHEMA = "commitledger.decision/1"

# The shapes the commitment document gives these fields (ledger.documents).
_DEPARTMENT = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*")
_MATTER_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_DEPARTMENT = 32
MAX_MATTER_CODE = 64
# An account id: a token id or an officer's account name; no spaces, no personal names.
_DECIDED_BY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_DECIDED_BY = 64
_TIME_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
_TIMES = ("received_at", "due_at", "decided_at")
_KEYS = frozenset(
    {
        "schema",
        "commitment",
        "department",
        "matter_code",
        "channel",
        *_TIMES,
        "decided_by",
        "result",
        "late",
    }
)
SHOWN = 40


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text) if len(text) <= SHOWN else f"{text[:SHOWN]!r}... ({len(text)} characters)"


def _to_millis(name: str, value: object) -> datetime:
    """The instant in UTC, cut to whole milliseconds (what the JSON form holds)."""
    if not isinstance(value, datetime):
        raise InvalidDocumentError(f"decision {name}: must be a datetime, got {_shown(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidDocumentError(
            f"decision {name}: must be timezone-aware (a naive time could be any zone)"
        )
    utc = value.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)


def time_text(value: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: 2026-12-07T01:02:03.456Z."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _parse_time(name: str, value: object) -> datetime:
    if not isinstance(value, str) or not _TIME_TEXT.fullmatch(value):
        raise InvalidDocumentError(
            f"decision {name}: must be YYYY-MM-DDTHH:MM:SS.mmmZ, got {_shown(value)}"
        )
    try:
        parsed = datetime.strptime(value[:-1], "%Y-%m-%dT%H:%M:%S.%f")
    except ValueError as exc:
        raise InvalidDocumentError(f"decision {name}: {exc}") from None
    return parsed.replace(tzinfo=UTC)


def _check_text(name: str, value: object, pattern: re.Pattern[str], longest: int) -> str:
    if not isinstance(value, str) or len(value) > longest or not pattern.fullmatch(value):
        raise InvalidDocumentError(
            f"decision {name}: must match {pattern.pattern}, at most {longest} characters; "
            f"got {_shown(value)}"
        )
    return value


@dataclass(frozen=True)
class DecisionRecord:
    """One decision on a commitment's application; ``to_json_obj()`` is what is hashed.

    Times are normalised to UTC and cut to whole milliseconds on construction, so a record
    read back from its JSON equals the record written.
    """

    commitment: Hash32
    department: str
    matter_code: str
    channel: DecisionChannel
    received_at: datetime
    due_at: datetime
    decided_at: datetime
    decided_by: str
    result: DecisionResult

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "commitment", to_hash32(self.commitment))
        except (InvalidHashError, AttributeError, TypeError):
            raise InvalidDocumentError(
                f"decision commitment: must be a 32-byte hash, got {_shown(self.commitment)}"
            ) from None
        _check_text("department", self.department, _DEPARTMENT, MAX_DEPARTMENT)
        _check_text("matter_code", self.matter_code, _MATTER_CODE, MAX_MATTER_CODE)
        _check_text("decided_by", self.decided_by, _DECIDED_BY, MAX_DECIDED_BY)
        if self.channel not in get_args(DecisionChannel):
            raise InvalidDocumentError(
                f"decision channel: must be counter or online, got {_shown(self.channel)}"
            )
        if self.result not in get_args(DecisionResult):
            raise InvalidDocumentError(
                f"decision result: must be approved or refused, got {_shown(self.result)}"
            )
        for name in _TIMES:
            object.__setattr__(self, name, _to_millis(name, getattr(self, name)))
        if self.decided_at < self.received_at:
            raise InvalidDocumentError(
                f"decision decided_at: {time_text(self.decided_at)} is before the commitment "
                f"was received ({time_text(self.received_at)})"
            )
        if self.due_at < self.received_at:
            raise InvalidDocumentError(
                f"decision due_at: {time_text(self.due_at)} is before the commitment was "
                f"received ({time_text(self.received_at)})"
            )

    @property
    def late(self) -> bool:
        """Whether the decision came after its due time."""
        return self.decided_at > self.due_at

    @property
    def lateness(self) -> timedelta:
        """How late the decision was (zero when on time)."""
        return max(timedelta(0), self.decided_at - self.due_at)

    def to_json_obj(self) -> dict[str, Any]:
        """The plain JSON value: schema commitledger.decision/1, RFC 3339 UTC times with
        milliseconds, the commitment as 0x-hex, `late` included."""
        return {
            "schema": DECISION_SCHEMA,
            "commitment": hex32(self.commitment),
            "department": self.department,
            "matter_code": self.matter_code,
            "channel": self.channel,
            "received_at": time_text(self.received_at),
            "due_at": time_text(self.due_at),
            "decided_at": time_text(self.decided_at),
            "decided_by": self.decided_by,
            "result": self.result,
            "late": self.late,
        }

    def canonical(self) -> bytes:
        """The RFC 8785 bytes that are hashed."""
        return canonical_bytes(self.to_json_obj())

    def hash(self) -> Hash32:
        """keccak256 of the canonical bytes: the leaf value anchored on chain."""
        return keccak256(self.canonical())

    @classmethod
    def from_json_obj(cls, obj: object) -> DecisionRecord:
        """Read a record from its JSON value; InvalidDocumentError naming what is wrong
        (an unknown schema or key, a bad field, a `late` that contradicts the times)."""
        if not isinstance(obj, dict):
            raise InvalidDocumentError("a decision record must be a JSON object")
        if obj.get("schema") != DECISION_SCHEMA:
            raise InvalidDocumentError(
                f"decision schema: must be {DECISION_SCHEMA}, got {_shown(obj.get('schema'))}"
            )
        keys = set(obj)
        if keys != _KEYS:
            missing, extra = sorted(_KEYS - keys), sorted(keys - _KEYS)
            raise InvalidDocumentError(
                f"decision record keys: missing {missing or 'none'}, unknown {extra or 'none'}"
            )
        commitment = obj["commitment"]
        if not isinstance(commitment, str) or not re.fullmatch(r"0x[0-9a-f]{64}", commitment):
            raise InvalidDocumentError(
                f"decision commitment: must be 0x and 64 lowercase hex digits, "
                f"got {_shown(commitment)}"
            )
        record = cls(
            commitment=to_hash32(commitment),
            department=obj["department"],
            matter_code=obj["matter_code"],
            channel=obj["channel"],
            received_at=_parse_time("received_at", obj["received_at"]),
            due_at=_parse_time("due_at", obj["due_at"]),
            decided_at=_parse_time("decided_at", obj["decided_at"]),
            decided_by=obj["decided_by"],
            result=obj["result"],
        )
        if obj["late"] is not record.late:
            raise InvalidDocumentError(
                f"decision late: {obj['late']!r} contradicts the times (late is {record.late})"
            )
        return record
