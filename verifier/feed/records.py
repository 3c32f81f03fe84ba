"""Feed records for the public credit platform: the standard's data elements, scope, signature.

One record per status change the chain confirmed (an `OutcomeRecorded` event: the contract
emits exactly one per change, beside the BreachRecorded/BreachRepaired/... events that
repeat it). What the chain says (kind, department, day, evidence) is `ChainFacts`, which
`feed check` rebuilds from the node's logs alone; the rest comes from the store (the
sealed document, the signed report) and is bound by the department's Ed25519 signature.

Publication scope per kind (the national credit-commitment standard's three levels):
breach, repair, expiry and correction are **public** (the public breach list and its
removals); kept is **restricted** (positive credit information, to the platform and
authorised users); mismatch under rectification, needs-manual and withdrawal are **not
public** (no standing has been determined against the applicant).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal

from ledger import (
    SignatureError,
    SigningKey,
    Status,
    canonical_bytes,
    department_id,
    keccak256,
    verify_bytes,
)
from verifier.errors import FeedError

FeedKind = Literal[
    "kept", "mismatch", "needs_manual", "breach", "repair", "expiry", "correction", "withdrawal"
]
Scope = Literal["public", "restricted", "not_public"]
ConsumerScope = Literal["public", "restricted", "all", "government"]
Fulfilment = Literal["fully_fulfilled", "partly_fulfilled", "not_fulfilled", "undetermined"]

FEED_VERSION = 1
CHINA_TIME = timezone(timedelta(hours=8))  # the platform's days are Beijing days

KIND_OF_STATUS: dict[Status, FeedKind] = {
    Status.KEPT: "kept",
    Status.MISMATCH: "mismatch",
    Status.NEEDS_MANUAL: "needs_manual",
    Status.BREACHED: "breach",
    Status.REPAIRED: "repair",
    Status.EXPIRED: "expiry",
    Status.CORRECTED: "correction",
    Status.WITHDRAWN: "withdrawal",
}
SCOPE_OF_KIND: dict[FeedKind, Scope] = {
    "breach": "public",
    "repair": "public",
    "expiry": "public",
    "correction": "public",
    "kept": "restricted",
    "mismatch": "not_public",
    "needs_manual": "not_public",
    "withdrawal": "not_public",
}
FULFILMENT_OF_KIND: dict[FeedKind, Fulfilment] = {
    "kept": "fully_fulfilled",
    "mismatch": "partly_fulfilled",
    "breach": "not_fulfilled",
    "repair": "not_fulfilled",  # repaired afterwards: the history stays
    "expiry": "not_fulfilled",
    "needs_manual": "undetermined",
    "correction": "undetermined",  # the breach determination was annulled
    "withdrawal": "undetermined",
}
# Which record scopes a consumer of each scope may read.
VISIBLE_SCOPES: dict[ConsumerScope, tuple[Scope, ...]] = {
    "public": ("public",),
    "restricted": ("public", "restricted"),
    "all": ("public", "restricted", "not_public"),
    "government": ("public", "restricted", "not_public"),  # with identities: feed.sharing
}

# The data elements' names as the national credit-commitment standard writes them (for files
# a platform imports; the JSON keeps English keys).
ZH_LABELS: dict[str, str] = {
    "sequence": "序号",
    "id": "记录标识",
    "kind": "变更类型",
    "commitment_code": "承诺编码",
    "committer_name": "承诺主体名称",
    "committer_category": "承诺主体类别",
    "credit_code": "统一社会信用代码或证件号码",
    "commitment_type": "承诺类型",
    "matter_code": "承诺事项编码",
    "matter_name": "承诺事项",
    "content_summary": "承诺内容摘要",
    "date_made": "承诺日期",
    "valid_until": "有效期至",
    "fulfilment_status": "履约状态",
    "unfulfilled": "未履约内容",
    "sanction": "惩戒措施",
    "department_code": "认定部门代码",
    "department_name": "认定部门",
    "determined_on": "认定日期",
    "publication_scope": "公开范围",
    "personal_data_erased": "个人信息已删除",
    "chain_id": "链标识",
    "contract": "合约地址",
    "transaction": "交易哈希",
    "block": "区块高度",
    "log_index": "日志序号",
    "commitment_hash": "承诺哈希",
    "public_key": "签名公钥",
    "signature": "签名",
}

ReportKeys = Callable[[str], SigningKey | None]
"""A department's report-signing key by department code (None: the service has none)."""


@dataclass(frozen=True)
class FeedEvidence:
    """Where the status change is on chain: anyone can fetch the log and compare."""

    chain_id: int
    contract: str
    transaction: str
    block: int
    log_index: int
    commitment_hash: str
    evidence_hash: str  # the signed report or decision the contract stored
    from_status: str
    to_status: str
    block_time: str  # UTC, ISO 8601


@dataclass(frozen=True)
class ChainFacts:
    """The part of a record that the contract's events alone determine."""

    id: str
    kind: FeedKind
    department_code: str
    determined_on: date
    publication_scope: Scope
    fulfilment_status: Fulfilment
    evidence: FeedEvidence


@dataclass(frozen=True)
class Details:
    """The part of a record that comes from the store (None where unknown or erased)."""

    commitment_code: str | None = None
    committer_name: str | None = None  # masked for persons
    committer_category: str | None = None  # natural_person | legal_person
    credit_code: str | None = None  # USCC, or the masked ID of a person
    commitment_type: str | None = None
    matter_code: str | None = None
    matter_name: str | None = None
    content_summary: str | None = None
    date_made: date | None = None
    valid_until: date | None = None
    unfulfilled: str | None = None
    sanction: str | None = None
    department_name: str | None = None
    personal_data_erased: bool = False


@dataclass(frozen=True)
class FeedSignature:
    """The determining department's signature over the record's canonical bytes."""

    algorithm: str
    public_key: str
    value: str


@dataclass(frozen=True)
class FeedRecord:
    """One feed record: its place in the feed, chain facts, details and signature."""

    sequence: int
    facts: ChainFacts
    details: Details
    signature: FeedSignature | None = None

    @property
    def id(self) -> str:
        """The record's stable id (also the webhook idempotency key)."""
        return self.facts.id

    def body(self) -> dict[str, Any]:
        """The record as JSON without its signature: what is signed."""
        facts = self.facts
        details = asdict(self.details)
        for name in ("date_made", "valid_until"):
            value = details[name]
            details[name] = None if value is None else value.isoformat()
        return {
            "version": FEED_VERSION,
            "id": facts.id,
            "sequence": self.sequence,
            "kind": facts.kind,
            **details,
            "department_code": facts.department_code,
            "determined_on": facts.determined_on.isoformat(),
            "fulfilment_status": facts.fulfilment_status,
            "publication_scope": facts.publication_scope,
            "evidence": asdict(facts.evidence),
        }

    def to_json_obj(self) -> dict[str, Any]:
        """The record as served: body and signature."""
        body = self.body()
        body["signature"] = None if self.signature is None else asdict(self.signature)
        return body

    def to_json(self) -> str:
        """Compact JSON text (what the store keeps and the feed serves)."""
        return json.dumps(self.to_json_obj(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json_obj(cls, obj: Mapping[str, Any]) -> FeedRecord:
        """Parse what `to_json_obj` wrote; FeedError naming what is wrong."""
        try:
            data = dict(obj)
            signature = data.pop("signature", None)
            evidence = FeedEvidence(**data.pop("evidence"))
            facts = ChainFacts(
                id=data.pop("id"),
                kind=data.pop("kind"),
                department_code=data.pop("department_code"),
                determined_on=date.fromisoformat(data.pop("determined_on")),
                publication_scope=data.pop("publication_scope"),
                fulfilment_status=data.pop("fulfilment_status"),
                evidence=evidence,
            )
            sequence = int(data.pop("sequence"))
            data.pop("version")
            for name in ("date_made", "valid_until"):
                if data.get(name) is not None:
                    data[name] = date.fromisoformat(data[name])
            details = Details(**data)
        except (KeyError, TypeError, ValueError) as exc:
            raise FeedError(f"not a feed record: {exc}") from None
        return cls(
            sequence, facts, details, None if signature is None else FeedSignature(**signature)
        )


def record_id(chain_id: int, contract: str, transaction: str, log_index: int) -> str:
    """A record's id from where its event is: the same whoever rebuilds it."""
    where = f"{chain_id}:{contract.lower()}:{transaction.lower()}:{log_index}"
    return "FR-" + keccak256(where.encode("ascii"))[:12].hex()


def chain_facts(
    *,
    chain_id: int,
    contract: str,
    transaction: str,
    block: int,
    log_index: int,
    block_timestamp: int,
    args: Mapping[str, Any],
    departments: Mapping[bytes, str],
) -> ChainFacts:
    """The chain part of the record of one OutcomeRecorded event (decoded `args`)."""
    to_status = Status(int(args["to"]))
    kind = KIND_OF_STATUS.get(to_status)
    if kind is None:
        raise FeedError(f"status {to_status.name} is not a change the feed reports")
    department = _bytes(args["department"])
    moment = datetime.fromtimestamp(block_timestamp, UTC)
    return ChainFacts(
        id=record_id(chain_id, contract, transaction, log_index),
        kind=kind,
        department_code=departments.get(department, "0x" + department.hex()),
        determined_on=moment.astimezone(CHINA_TIME).date(),
        publication_scope=SCOPE_OF_KIND[kind],
        fulfilment_status=FULFILMENT_OF_KIND[kind],
        evidence=FeedEvidence(
            chain_id=chain_id,
            contract=contract,
            transaction=transaction.lower(),
            block=block,
            log_index=log_index,
            commitment_hash="0x" + _bytes(args["commitment"]).hex(),
            evidence_hash="0x" + _bytes(args["evidence"]).hex(),
            from_status=Status(int(args["from"])).name,
            to_status=to_status.name,
            block_time=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
    )


def department_codes(codes: Mapping[str, object] | list[str] | set[str]) -> dict[bytes, str]:
    """On-chain department id -> code, for the codes given."""
    return {bytes(department_id(code)): code for code in codes}


def sign_record(record: FeedRecord, key: SigningKey) -> FeedRecord:
    """The record signed by its department's key."""
    value = key.sign(canonical_bytes(record.body()))
    signature = FeedSignature(
        key.algorithm, key.public_key_b64(), base64.b64encode(value).decode("ascii")
    )
    return replace(record, signature=signature)


def verify_record(record: FeedRecord, expected_public_key: str | None = None) -> None:
    """FeedError unless the signature verifies (by `expected_public_key` when given)."""
    signature = record.signature
    if signature is None:
        raise FeedError(f"record {record.id} is not signed")
    if expected_public_key is not None and signature.public_key != expected_public_key:
        raise FeedError(
            f"record {record.id} is signed by another key than {record.facts.department_code}'s"
        )
    if signature.algorithm not in ("ed25519", "ecdsa-p256"):
        raise FeedError(f"record {record.id}: unknown algorithm {signature.algorithm!r}")
    algorithm: Literal["ed25519", "ecdsa-p256"] = (
        "ed25519" if signature.algorithm == "ed25519" else "ecdsa-p256"
    )
    try:
        valid = verify_bytes(
            algorithm, signature.public_key, signature.value, canonical_bytes(record.body())
        )
    except SignatureError as exc:
        raise FeedError(f"record {record.id}: {exc}") from None
    if not valid:
        raise FeedError(f"record {record.id}: the signature does not verify (altered)")


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)
