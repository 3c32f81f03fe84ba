"""Objections and repair applications for the service: what a department's route and the
applicant's own view (`file_objection`, `apply_for_repair`) call, with the service's
settings (decision limits), today and the department's keys; refusals as problems.

The texts are personal data: they go sealed into the store and are never logged.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends
from starlette.concurrency import run_in_threadpool

from api.service.context import ServiceContext
from api.service.deps import StoreDep, VaultDep
from api.service.engines import department_actions, engine_refusals
from api.service.problems import (
    ACTION_REFUSED,
    INVALID_REQUEST,
    NOT_FOUND,
    UNAVAILABLE,
    ProblemError,
)
from api.service.record_page import OBJECTION_MARK_EN, OBJECTION_MARK_ZH
from ledger import Store, Vault
from verifier import BreachError, RecordsError, RepairTooEarlyError, UnknownRecordError
from verifier.engine import (
    ObjectionOutcome,
    RepairOutcome,
)
from verifier.engine import apply_for_repair as _apply_for_repair
from verifier.engine import decide_objection as _decide_objection
from verifier.engine import decide_repair as _decide_repair
from verifier.engine import file_objection as _file_objection
from verifier.records import Appeal, AppealRecords, AppealTextError, FiledBy

# One AppealRecords per store (opening one applies its migrations).
_opened: weakref.WeakKeyDictionary[Store, AppealRecords] = weakref.WeakKeyDictionary()


def appeal_records(context: ServiceContext, *, sealing: bool = False) -> AppealRecords:
    """The appeals on the service's store; `sealing`: with the vault (503 without the
    master key), to file, decide or read texts."""
    vault = None if context.intake is None else context.intake.vault
    return open_appeals(context.store, vault, sealing=sealing)


def open_appeals(store: Store, vault: Vault | None, *, sealing: bool = False) -> AppealRecords:
    """The appeals on `store`, opened once per store; `sealing`: with the vault (503 without
    the master key), to file, decide or read texts."""
    if sealing and vault is None:
        raise ProblemError(UNAVAILABLE, "the service was started without a master key")
    opened = _opened.get(store)
    if opened is None or opened.vault is not vault:
        opened = _opened[store] = AppealRecords(store, vault)
    return opened


async def get_appeals(store: StoreDep, vault: VaultDep) -> AppealRecords:
    """The appeals on the service's store, for the public marks (opened once, in a thread:
    opening applies migrations)."""
    opened = _opened.get(store)
    if opened is None:
        opened = await run_in_threadpool(open_appeals, store, vault)
    return opened


AppealsDep = Annotated[AppealRecords, Depends(get_appeals)]


def objection_json(appeal: Appeal) -> dict[str, Any]:
    """The public mark of a record under objection, as `/v1/breaches` shows it."""
    return {
        "status": "under_objection",
        "label_zh": OBJECTION_MARK_ZH,
        "label_en": OBJECTION_MARK_EN,
        "filed_on": appeal.filed_on.isoformat(),
        "decide_by": appeal.decide_by.isoformat(),
    }


def with_objection(public_json: str, appeal: Appeal | None) -> str:
    """A record's stored public JSON text with the mark `objection` added when it is under
    objection; unchanged (not parsed, not encoded again) otherwise."""
    if appeal is None:
        return public_json
    mark = json.dumps(objection_json(appeal), ensure_ascii=False)
    body = public_json.rstrip()
    return f'{body[:-1]}, "objection": {mark}}}'


def marked_texts(appeals: AppealRecords, texts: list[str]) -> list[str]:
    """A page of records' public JSON texts, those under objection marked (the texts are
    read only when some record is under objection at all)."""
    if not texts or not appeals.any_open_objection():
        return texts
    ids = [json.loads(text)["id"] for text in texts]
    open_now = appeals.open_objections_among(ids)
    return [with_objection(t, open_now.get(i)) for t, i in zip(texts, ids, strict=True)]


@contextmanager
def appeal_refusals() -> Iterator[None]:
    """Refusals as problems: unknown 404, bad texts 422, the rest (too early, already open,
    not published, the engine's and the contract's) 409 and as `engine_refusals`."""
    try:
        with engine_refusals():
            yield
    except UnknownRecordError as exc:
        raise ProblemError(NOT_FOUND, str(exc)) from None
    except AppealTextError as exc:
        raise ProblemError(INVALID_REQUEST, str(exc)) from None
    except RepairTooEarlyError as exc:
        raise ProblemError(
            ACTION_REFUSED, str(exc), earliest_repair=exc.earliest.isoformat()
        ) from None
    except (RecordsError, BreachError) as exc:
        raise ProblemError(ACTION_REFUSED, str(exc)) from None


def file_objection(
    context: ServiceContext,
    record_id: str,
    *,
    by: FiledBy,
    reason: str,
    evidence: Sequence[str] = (),
    department: str | None = None,
) -> Appeal:
    """Put a published breach record under objection (异议处理中); the department has
    `objection_decision_days` working days to decide. `department`: the officer's when one
    files (another department's record is refused). Problems on refusal, nothing stored."""
    appeals = appeal_records(context, sealing=True)
    with appeal_refusals():
        return _file_objection(
            appeals,
            context.records,
            record_id[:64],
            by=by,
            reason=reason,
            evidence=evidence,
            on=context.today(),
            department=department,
            decision_days=context.settings.objection_decision_days,
        )


def apply_for_repair(
    context: ServiceContext,
    record_id: str,
    evidence_text: str,
    *,
    by: FiledBy = "applicant",
    evidence: Sequence[str] = (),
    department: str | None = None,
) -> Appeal:
    """Apply for credit repair (信用修复) of a published record after its minimum period (a
    409 problem naming `earliest_repair` before it); the department has
    `repair_decision_days` working days to decide. Problems on refusal, nothing stored."""
    appeals = appeal_records(context, sealing=True)
    with appeal_refusals():
        return _apply_for_repair(
            appeals,
            context.records,
            record_id[:64],
            evidence_text,
            by=by,
            evidence=evidence,
            on=context.today(),
            department=department,
            decision_days=context.settings.repair_decision_days,
        )


def decide_objection(
    context: ServiceContext,
    appeal_id: str,
    outcome: ObjectionOutcome,
    *,
    department: str,
    decided_by: str,
    reasons: str,
) -> Appeal:
    """The department's decision on its objection, with the department's verifier account
    (upheld: Corrected on chain). Problems on refusal."""
    appeals = appeal_records(context, sealing=True)
    with department_actions(context, department) as actions, appeal_refusals():
        return _decide_objection(
            actions,
            appeals,
            appeal_id[:64],
            outcome,
            on=context.today(),
            decided_by=decided_by,
            reasons=reasons,
        )


def decide_repair(
    context: ServiceContext,
    appeal_id: str,
    outcome: RepairOutcome,
    *,
    department: str,
    decided_by: str,
    reasons: str,
) -> Appeal:
    """The department's decision on its repair application (granted: Repaired on chain,
    the exclusion lifted). Problems on refusal."""
    appeals = appeal_records(context, sealing=True)
    with department_actions(context, department) as actions, appeal_refusals():
        return _decide_repair(
            actions,
            appeals,
            appeal_id[:64],
            outcome,
            on=context.today(),
            decided_by=decided_by,
            reasons=reasons,
        )
