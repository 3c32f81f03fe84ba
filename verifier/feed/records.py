"""Feed records for the public credit platform: the standard's data elements, scope, signature.

One record per status change the chain confirmed (an `OutcomeRecorded` event: the contract
emits exactly one per change, beside the BreachRecorded/BreachRepaired/... events that
repeat it). What the chain says (kind, department, day, evidence) is `ChainFacts`, which
`feed check` rebuilds from the node's logs alone; the rest comes from the store (the
sealed document, the signed report) and is bound by the department's Ed25519 signature.

Version 2 records carry the national credit-commitment data elements with Chinese code-list
values (`COMMITTER_CATEGORIES`, `COMMITMENT_TYPES`, `FULFILMENT_ZH`, `SCOPE_ZH`): those are
the values a platform loads; English is only a display label set (`EN_VALUES`). `kind`, like
`id`, `sequence` and `version`, is the feed's own envelope (what changed), an English key.
Version 1 records (English values, `department_name`) stored before still read back, verify
and re-sign in their own shape.

`admin_approval`, optional, is on a correction the contract's multi-signature admin made
(`correctBreach` executed by its Safe): the Safe, the SafeTx hash and the owners whose
approvals the Safe checked, read from the Safe's events in the same transaction. Records
without it (every other change, and all older records) read and verify as before.

`valid_until` (有效期至) is the commitment's standing as the record states it: for a breach
the end of its publication; for a mismatch the end of the rectification window; for a record
needing a person, the verification deadline; for a repair, expiry, correction or withdrawal
the day it was determined (the standing ended then); for a kept commitment or a proposed
breach none.

Publication scope per kind (the national credit-commitment standard's three levels):
breach, repair, expiry and correction are **public** (the public breach list and its
removals); kept is **restricted** (positive credit information, to the platform and
authorised users); mismatch under rectification, needs-manual, a proposed breach (in its
defence period, told to the applicant only), a correction of such a proposal and withdrawal
are **not public** (no standing has been determined against the applicant).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
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
    "kept",
    "mismatch",
    "needs_manual",
    "proposed",
    "breach",
    "repair",
    "expiry",
    "correction",
    "withdrawal",
]
Scope = Literal["public", "restricted", "not_public"]
ConsumerScope = Literal["public", "restricted", "all", "government"]
Fulfilment = Literal["fully_fulfilled", "partly_fulfilled", "not_fulfilled", "undetermined"]

FEED_VERSION = 2
SCHEMA_FILE = Path(__file__).resolve().parent / "record.schema.json"
CHINA_TIME = timezone(timedelta(hours=8))  # the platform's days are Beijing days

KIND_OF_STATUS: dict[Status, FeedKind] = {
    Status.KEPT: "kept",
    Status.MISMATCH: "mismatch",
    Status.NEEDS_MANUAL: "needs_manual",
    Status.PROPOSED: "proposed",
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
    "proposed": "not_public",  # told to the applicant, in the defence period
    "withdrawal": "not_public",
}
FULFILMENT_OF_KIND: dict[FeedKind, Fulfilment] = {
    "kept": "fully_fulfilled",
    "mismatch": "partly_fulfilled",
    "breach": "not_fulfilled",
    "repair": "not_fulfilled",  # repaired afterwards: the history stays
    "expiry": "not_fulfilled",
    "needs_manual": "undetermined",
    "proposed": "undetermined",
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

# The code lists as the platform loads them: Chinese values in the record.
FULFILMENT_ZH: dict[Fulfilment, str] = {
    "fully_fulfilled": "已履约",
    "partly_fulfilled": "部分履约",
    "not_fulfilled": "未履约",
    "undetermined": "待认定",
}
SCOPE_ZH: dict[Scope, str] = {"public": "公开", "restricted": "有限公开", "not_public": "不公开"}
# The committer's category (承诺主体类别): the applicant's kind, an organisation's by its
# credit code (GB 32100: 92 is a 个体工商户, registered with market regulation).
COMMITTER_CATEGORIES: dict[str, str] = {
    "natural_person": "自然人",
    "legal_person": "法人",
    "individual_business": "个体工商户",
    "other_organisation": "其他组织",
}
# 承诺类型, seven values. Could not be confirmed against the template itself: the list
# follows 国办发〔2019〕35号, which names approval-replacing (审批替代型, with 证明事项告知承诺
# as certificate-replacing), voluntarily published (主动公示型), industry self-regulation
# (行业自律型) and credit repair (信用修复型) commitments, plus acceptance with documents to
# follow (容缺受理型) as local practice adds it, and 其他.
COMMITMENT_TYPES: dict[str, str] = {
    "approval_replacing": "审批替代型",
    "certificate_replacing": "证明替代型",
    "deficiency_tolerant": "容缺受理型",
    "credit_repair": "信用修复型",
    "industry_self_regulation": "行业自律型",
    "voluntary_publication": "主动公示型",
    "other": "其他",
}
# What each kind of change is called, for display (the record keeps `kind` as a key).
KIND_ZH: dict[FeedKind, str] = {
    "kept": "守诺认定",
    "mismatch": "责令整改",
    "needs_manual": "待人工核查",
    "proposed": "拟认定失信（陈述申辩期）",
    "breach": "失信认定",
    "repair": "信用修复",
    "expiry": "公示期满",
    "correction": "异议更正",
    "withdrawal": "撤回承诺",
}
# English display labels of the Chinese values (a second label set, never the values).
EN_VALUES: dict[str, str] = {
    **{zh: en for en, zh in FULFILMENT_ZH.items()},
    **{zh: en for en, zh in SCOPE_ZH.items()},
    **{zh: en for en, zh in COMMITTER_CATEGORIES.items()},
    **{zh: en for en, zh in COMMITMENT_TYPES.items()},
}
_FULFILMENT_OF_ZH = {zh: en for en, zh in FULFILMENT_ZH.items()}
_SCOPE_OF_ZH = {zh: en for en, zh in SCOPE_ZH.items()}

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
    "reason": "承诺事由",
    "content_summary": "承诺内容",
    "date_made": "承诺作出日期",
    "accepting_unit": "承诺受理单位",
    "accepting_unit_code": "承诺受理单位统一社会信用代码",
    "liability": "违诺责任",
    "valid_until": "有效期至",
    "fulfilment_status": "履约状态",
    "unfulfilled": "未履约内容",
    "sanction": "惩戒措施",
    "department_code": "认定部门代码",
    "determining_unit": "认定单位",
    "determining_unit_code": "认定单位统一社会信用代码",
    "determined_on": "认定日期",
    "publication_scope": "公开范围",
    "personal_data_erased": "个人信息已删除",
    "chain_id": "链标识",
    "contract": "合约地址",
    "transaction": "交易哈希",
    "block": "区块高度",
    "log_index": "日志序号",
    "commitment_hash": "承诺哈希",
    "admin_approval": "多签管理批准",
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
class AdminApproval:
    """Who approved a change the multi-signature admin made (a correction by the Safe): the
    Safe, the SafeTx hash its owners signed, and the owners whose approvals the Safe checked.
    Owners are offices' accounts, never persons' data."""

    safe: str
    safe_tx_hash: str
    approved_by: tuple[str, ...]

    def to_json_obj(self) -> dict[str, Any]:
        """As the record carries it."""
        return {
            "safe": self.safe,
            "safe_tx_hash": self.safe_tx_hash,
            "approved_by": list(self.approved_by),
        }

    @classmethod
    def from_json_obj(cls, obj: Mapping[str, Any]) -> AdminApproval:
        """From what `to_json_obj` wrote."""
        return cls(str(obj["safe"]), str(obj["safe_tx_hash"]), tuple(obj["approved_by"]))


@dataclass(frozen=True)
class ChainFacts:
    """The part of a record that the contract's events alone determine (and, for a change
    the admin Safe made, the Safe's own events in the same transaction)."""

    id: str
    kind: FeedKind
    department_code: str
    determined_on: date
    publication_scope: Scope
    fulfilment_status: Fulfilment
    evidence: FeedEvidence
    admin_approval: AdminApproval | None = None


@dataclass(frozen=True)
class Details:
    """The part of a record that comes from the store (None where unknown or erased)."""

    commitment_code: str | None = None
    committer_name: str | None = None  # masked for persons
    committer_category: str | None = None  # a COMMITTER_CATEGORIES value (v1: an English key)
    credit_code: str | None = None  # USCC, or the masked ID of a person
    commitment_type: str | None = None  # a COMMITMENT_TYPES value (v1: an English key)
    matter_code: str | None = None
    matter_name: str | None = None
    reason: str | None = None
    content_summary: str | None = None
    date_made: date | None = None
    accepting_unit: str | None = None  # the unit that took the commitment
    accepting_unit_code: str | None = None
    liability: str | None = None  # the notice's liability for breach
    valid_until: date | None = None  # see the module's docstring
    unfulfilled: str | None = None
    sanction: str | None = None
    determining_unit: str | None = None  # the department whose signed report decided
    determining_unit_code: str | None = None
    personal_data_erased: bool = False


# The details a version 1 record has, and the name it gave the determining unit.
_V1_DETAILS = (
    "commitment_code", "committer_name", "committer_category", "credit_code",
    "commitment_type", "matter_code", "matter_name", "content_summary", "date_made",
    "valid_until", "unfulfilled", "sanction", "determining_unit", "personal_data_erased",
)  # fmt: skip


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
    version: int = FEED_VERSION  # an old record read back keeps its own shape

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
        fulfilment: str
        scope: str
        if self.version == 1:
            details = {name: details[name] for name in _V1_DETAILS}
            details["department_name"] = details.pop("determining_unit")
            fulfilment, scope = facts.fulfilment_status, facts.publication_scope
        else:
            fulfilment = FULFILMENT_ZH[facts.fulfilment_status]
            scope = SCOPE_ZH[facts.publication_scope]
        body = {
            "version": self.version,
            "id": facts.id,
            "sequence": self.sequence,
            "kind": facts.kind,
            **details,
            "department_code": facts.department_code,
            "determined_on": facts.determined_on.isoformat(),
            "fulfilment_status": fulfilment,
            "publication_scope": scope,
            "evidence": asdict(facts.evidence),
        }
        if facts.admin_approval is not None:  # absent otherwise: older records sign the same
            body["admin_approval"] = facts.admin_approval.to_json_obj()
        return body

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
            version = int(data.pop("version"))
            if version not in (1, FEED_VERSION):
                raise ValueError(f"version {version} is not one this reader knows")
            signature = data.pop("signature", None)
            evidence = FeedEvidence(**data.pop("evidence"))
            approval = data.pop("admin_approval", None)
            fulfilment, scope = data.pop("fulfilment_status"), data.pop("publication_scope")
            if version == 1:
                data["determining_unit"] = data.pop("department_name")
            else:
                fulfilment, scope = _FULFILMENT_OF_ZH[fulfilment], _SCOPE_OF_ZH[scope]
            facts = ChainFacts(
                id=data.pop("id"),
                kind=data.pop("kind"),
                department_code=data.pop("department_code"),
                determined_on=date.fromisoformat(data.pop("determined_on")),
                publication_scope=scope,
                fulfilment_status=fulfilment,
                evidence=evidence,
                admin_approval=None if approval is None else AdminApproval.from_json_obj(approval),
            )
            sequence = int(data.pop("sequence"))
            for name in ("date_made", "valid_until"):
                if data.get(name) is not None:
                    data[name] = date.fromisoformat(data[name])
            details = Details(**data)
        except (KeyError, TypeError, ValueError) as exc:
            raise FeedError(f"not a feed record: {exc}") from None
        return cls(
            sequence,
            facts,
            details,
            None if signature is None else FeedSignature(**signature),
            version,
        )


def committer_category(applicant_kind: str, id_number: str) -> str:
    """The COMMITTER_CATEGORIES key of an applicant: a person is a natural person; an
    organisation by its credit code's first two characters (GB 32100-2015: registering
    authority and type), 92 an individual business (个体工商户); 11-13 (机关, 事业单位,
    群众团体), 51-53 (社会团体, 民办非企业单位, 基金会), 91 (企业) and 93 (农民专业合作社)
    legal persons; any other type (x9 其他, 3x 律师事务所 and the like) other organisations.
    A sole proprietorship or partnership is also registered as 91: the code cannot tell it
    apart, so it is counted a legal person."""
    if applicant_kind == "person":
        return "natural_person"
    prefix = id_number[:2].upper()
    if prefix == "92":
        return "individual_business"
    if prefix in ("11", "12", "13", "51", "52", "53", "91", "93"):
        return "legal_person"
    return "other_organisation"


@cache
def record_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a version 2 record, as served at /v1/feed/schema."""
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded


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
    admin_approval: AdminApproval | None = None,
) -> ChainFacts:
    """The chain part of the record of one OutcomeRecorded event (decoded `args`), with who
    approved it when the admin Safe made the change."""
    to_status = Status(int(args["to"]))
    kind = KIND_OF_STATUS.get(to_status)
    if kind is None:
        raise FeedError(f"status {to_status.name} is not a change the feed reports")
    department = _bytes(args["department"])
    moment = datetime.fromtimestamp(block_timestamp, UTC)
    from_status = Status(int(args["from"]))
    scope = SCOPE_OF_KIND[kind]
    if kind == "correction" and from_status == Status.PROPOSED:
        scope = "not_public"  # a proposal annulled in its defence period was never published
    return ChainFacts(
        id=record_id(chain_id, contract, transaction, log_index),
        kind=kind,
        department_code=departments.get(department, "0x" + department.hex()),
        determined_on=moment.astimezone(CHINA_TIME).date(),
        publication_scope=scope,
        fulfilment_status=FULFILMENT_OF_KIND[kind],
        evidence=FeedEvidence(
            chain_id=chain_id,
            contract=contract,
            transaction=transaction.lower(),
            block=block,
            log_index=log_index,
            commitment_hash="0x" + _bytes(args["commitment"]).hex(),
            evidence_hash="0x" + _bytes(args["evidence"]).hex(),
            from_status=from_status.name,
            to_status=to_status.name,
            block_time=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
        admin_approval=admin_approval,
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
