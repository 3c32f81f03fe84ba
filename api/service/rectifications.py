"""Rectification evidence (整改材料) for the service: what the applicant's view and the
department's routes call to file it during a mismatch's rectification window, list it, and
decide it with the department's rectify action (accepted: the mismatch is kept, the
filing's id in the decision's note). Refusals as problems; a refused filing stores nothing.

The text is personal data: it goes sealed into the store and is never logged.
"""

from __future__ import annotations

import json
import weakref
from datetime import date

from api.service.context import ServiceContext
from api.service.engines import department_actions, engine_refusals
from api.service.problems import (
    ACTION_REFUSED,
    INVALID_REQUEST,
    NOT_FOUND,
    OTHER_DEPARTMENT,
    UNAVAILABLE,
    ProblemError,
)
from ledger import Hash32, Store, Vault, hex32
from verifier import RecordsError
from verifier.records import (
    AppealTextError,
    FiledBy,
    Rectification,
    RectificationRecords,
    VerifierRecords,
)

_opened: weakref.WeakKeyDictionary[Store, RectificationRecords] = weakref.WeakKeyDictionary()


def rectification_records(
    context: ServiceContext, *, sealing: bool = False
) -> RectificationRecords:
    """The rectification filings on the service's store; `sealing`: with the vault (503
    without the master key), to file or read texts."""
    vault = None if context.intake is None else context.intake.vault
    return open_rectifications(context.store, vault, sealing=sealing)


def open_rectifications(
    store: Store, vault: Vault | None, *, sealing: bool = False
) -> RectificationRecords:
    """The rectification filings on `store`, opened once per store; `sealing`: with the
    vault (503 without the master key), to file or read texts."""
    if sealing and vault is None:
        raise ProblemError(UNAVAILABLE, "the service was started without a master key")
    opened = _opened.get(store)
    if opened is None or opened.vault is not vault:
        opened = _opened[store] = RectificationRecords(store, vault)
    return opened


def file_rectification(
    store: Store,
    records: VerifierRecords,
    vault: Vault | None,
    on: date,
    commitment: Hash32,
    text: str,
    *,
    by: FiledBy,
) -> Rectification:
    """File evidence for the commitment's open mismatch as of `on`, within its window (409
    naming the deadline outside it; 422 for a blank or too long text; 503 without the
    vault). Nothing is stored on refusal. The caller has checked who may file for the
    commitment."""
    stored = store.get(commitment)
    if stored is None:
        raise ProblemError(NOT_FOUND, f"no commitment {hex32(commitment)} in the store")
    verification = records.verification(commitment)
    deadline = None if verification is None else verification.rectify_by
    if verification is None or verification.state != "mismatch":
        since = "" if deadline is None else f" (its window closed on {deadline.isoformat()})"
        raise ProblemError(
            ACTION_REFUSED,
            f"{hex32(commitment)} has no mismatch open to rectification{since}: nothing was stored",
            rectify_by=None if deadline is None else deadline.isoformat(),
        )
    if deadline is None or on > deadline:
        closed = "has no window" if deadline is None else f"closed on {deadline.isoformat()}"
        raise ProblemError(
            ACTION_REFUSED,
            f"the rectification window {closed}: nothing was stored",
            rectify_by=None if deadline is None else deadline.isoformat(),
        )
    filings = open_rectifications(store, vault, sealing=True)
    try:
        return filings.add(commitment, stored.department, by, on, deadline, text)
    except AppealTextError as exc:
        raise ProblemError(INVALID_REQUEST, str(exc)) from None


def decide_rectification(
    context: ServiceContext,
    filing_id: str,
    *,
    accepted: bool,
    department: str,
    decided_by: str,
    note: str,
) -> Rectification:
    """The department's decision on its filing. Accepted: its rectify action, with the
    department's verifier account (the mismatch becomes KEPT, the filing's id in the note),
    then the filing is marked; a filing made in time may be accepted after the window (the
    lifecycle job waits for it); refused by the chain, nothing changes. Rejected: the filing
    is marked; past the window the next lifecycle job proposes the breach."""
    records = rectification_records(context)
    filing = records.get(filing_id[:64])
    if filing is None:
        raise ProblemError(NOT_FOUND, f"no rectification evidence {filing_id[:64]!r}")
    if filing.department != department:
        raise ProblemError(
            OTHER_DEPARTMENT,
            f"this rectification evidence belongs to another department; "
            f"this token is for {department}",
        )
    if filing.state != "open":
        raise ProblemError(ACTION_REFUSED, f"{filing.id} was already decided ({filing.state})")
    on = context.today()
    verification = context.records.verification(filing.commitment)
    # An earlier attempt that died after its rectify action: its report names the filing.
    done_before = (
        verification is not None
        and verification.state == "kept"
        and f"rectification evidence {filing.id}:" in json.dumps(verification.report or {})
    )
    if done_before and not accepted:
        raise ProblemError(ACTION_REFUSED, f"{filing.id} was accepted on chain already")
    if accepted and not done_before:
        why = f"rectification evidence {filing.id}: {note}"
        with department_actions(context, department) as actions, engine_refusals():
            if on <= filing.rectify_by:
                actions.rectify(filing.commitment, on, decided_by, why)
            else:  # filed in time, decided after the window: the delay is not the applicant's
                if verification is None or verification.state != "mismatch":
                    raise ProblemError(
                        ACTION_REFUSED, f"{filing.id}'s commitment has no mismatch open any more"
                    )
                actions.decide(filing.commitment, "kept", on, decided_by, why)
    try:
        return records.decide(filing.id, "accepted" if accepted else "rejected", on, decided_by)
    except RecordsError as exc:
        raise ProblemError(ACTION_REFUSED, str(exc)) from None
