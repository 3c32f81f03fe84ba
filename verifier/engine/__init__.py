"""The verification run: deciding due commitments (`decide`, with the worker processes' entry
points in `worker`), sending outcomes and breaches on chain (`sending`), orchestrated by
`run.VerificationEngine`, built by `run.engine_for` from a `department.Department`; `summary`
counts what a run did. A department's own actions (withdraw, decide, repair, annul, ...) are
`actions.DepartmentActions`, which builds no run; `lifecycle.run_lifecycle` is a department's
daily job over them (deadlines counted again, overdue rectifications, expiries);
`appeals` files and decides objections and repair applications. A FALSE finding is a
proposed breach first: `notices` signs the notice, `notify` delivers it to the department's
messaging gateway, `defence` keeps the applicant's statement and publishes after the
statement-and-defence period or the officer's decision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger import lazy_attributes

if TYPE_CHECKING:
    from verifier.engine.actions import DepartmentActions
    from verifier.engine.appeals import (
        OBJECTION_DECISION_DAYS,
        REPAIR_DECISION_DAYS,
        ObjectionOutcome,
        RepairOutcome,
        apply_for_repair,
        decide_objection,
        decide_repair,
        file_objection,
        flag_overdue_appeals,
    )
    from verifier.engine.decisions import (
        DecisionCounter,
        DecisionDesk,
        DecisionRefusal,
        DecisionRefusedError,
        decision_json,
    )
    from verifier.engine.defence import (
        LAPSED,
        DefenceOutcome,
        confirm_breach,
        decide_statement,
        file_statement,
        publish_lapsed,
    )
    from verifier.engine.department import Department
    from verifier.engine.lifecycle import LifecycleSummary, run_lifecycle
    from verifier.engine.methods import SAMPLING_RULE, sampled, sampling_draw, sampling_threshold
    from verifier.engine.notices import NOTICE_KIND, is_notice
    from verifier.engine.notify import (
        DeliverySummary,
        NoticeDeliverer,
        NoticeGateway,
        NoticePolicy,
    )
    from verifier.engine.run import EngineConfig, VerificationEngine, engine_for
    from verifier.engine.sending import outcome_outbox
    from verifier.engine.summary import RunSummary
    from verifier.engine.tasks import Settled, TaskDesk, joined_outcome
    from verifier.engine.worker import Decision, sign_decision

# Each public name and the module that defines it: loaded on first use, so that
# importing one name does not import the whole package (and web3 with it).
_SURFACE = {
    "apply_for_repair": "verifier.engine.appeals",
    "decide_objection": "verifier.engine.appeals",
    "decide_repair": "verifier.engine.appeals",
    "file_objection": "verifier.engine.appeals",
    "flag_overdue_appeals": "verifier.engine.appeals",
    "OBJECTION_DECISION_DAYS": "verifier.engine.appeals",
    "ObjectionOutcome": "verifier.engine.appeals",
    "REPAIR_DECISION_DAYS": "verifier.engine.appeals",
    "RepairOutcome": "verifier.engine.appeals",
    "Decision": "verifier.engine.worker",
    "DecisionCounter": "verifier.engine.decisions",
    "DecisionDesk": "verifier.engine.decisions",
    "DecisionRefusal": "verifier.engine.decisions",
    "DecisionRefusedError": "verifier.engine.decisions",
    "decision_json": "verifier.engine.decisions",
    "confirm_breach": "verifier.engine.defence",
    "decide_statement": "verifier.engine.defence",
    "DefenceOutcome": "verifier.engine.defence",
    "DeliverySummary": "verifier.engine.notify",
    "file_statement": "verifier.engine.defence",
    "is_notice": "verifier.engine.notices",
    "LAPSED": "verifier.engine.defence",
    "NOTICE_KIND": "verifier.engine.notices",
    "NoticeDeliverer": "verifier.engine.notify",
    "NoticeGateway": "verifier.engine.notify",
    "NoticePolicy": "verifier.engine.notify",
    "publish_lapsed": "verifier.engine.defence",
    "Department": "verifier.engine.department",
    "DepartmentActions": "verifier.engine.actions",
    "engine_for": "verifier.engine.run",
    "EngineConfig": "verifier.engine.run",
    "LifecycleSummary": "verifier.engine.lifecycle",
    "run_lifecycle": "verifier.engine.lifecycle",
    "outcome_outbox": "verifier.engine.sending",
    "RunSummary": "verifier.engine.summary",
    "sign_decision": "verifier.engine.worker",
    "SAMPLING_RULE": "verifier.engine.methods",
    "sampled": "verifier.engine.methods",
    "sampling_draw": "verifier.engine.methods",
    "sampling_threshold": "verifier.engine.methods",
    "Settled": "verifier.engine.tasks",
    "TaskDesk": "verifier.engine.tasks",
    "joined_outcome": "verifier.engine.tasks",
    "VerificationEngine": "verifier.engine.run",
}

__all__ = [
    "LAPSED",
    "NOTICE_KIND",
    "OBJECTION_DECISION_DAYS",
    "REPAIR_DECISION_DAYS",
    "SAMPLING_RULE",
    "Decision",
    "DecisionCounter",
    "DecisionDesk",
    "DecisionRefusal",
    "DecisionRefusedError",
    "DefenceOutcome",
    "DeliverySummary",
    "Department",
    "DepartmentActions",
    "EngineConfig",
    "LifecycleSummary",
    "NoticeDeliverer",
    "NoticeGateway",
    "NoticePolicy",
    "ObjectionOutcome",
    "RepairOutcome",
    "RunSummary",
    "Settled",
    "TaskDesk",
    "VerificationEngine",
    "apply_for_repair",
    "confirm_breach",
    "decide_objection",
    "decide_repair",
    "decide_statement",
    "decision_json",
    "engine_for",
    "file_objection",
    "file_statement",
    "flag_overdue_appeals",
    "is_notice",
    "joined_outcome",
    "outcome_outbox",
    "publish_lapsed",
    "run_lifecycle",
    "sampled",
    "sampling_draw",
    "sampling_threshold",
    "sign_decision",
]


if not TYPE_CHECKING:  # the type checker sees the imports above, and only those names
    __getattr__ = lazy_attributes(__name__, _SURFACE)
