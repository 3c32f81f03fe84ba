"""The verification run: deciding due commitments (`decide`, with the worker processes' entry
points in `worker`), sending outcomes and breaches on chain (`sending`), orchestrated by
`run.VerificationEngine`, built by `run.engine_for` from a `department.Department`; `summary`
counts what a run did. A department's own actions (withdraw, decide, repair, annul, ...) are
`actions.DepartmentActions`, which builds no run; `lifecycle.run_lifecycle` is a department's
daily job over them (deadlines counted again, overdue rectifications, expiries)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger import lazy_attributes

if TYPE_CHECKING:
    from verifier.engine.actions import DepartmentActions
    from verifier.engine.department import Department
    from verifier.engine.lifecycle import LifecycleSummary, run_lifecycle
    from verifier.engine.run import EngineConfig, VerificationEngine, engine_for
    from verifier.engine.sending import outcome_outbox
    from verifier.engine.summary import RunSummary
    from verifier.engine.worker import Decision, sign_decision

# Each public name and the module that defines it: loaded on first use, so that
# importing one name does not import the whole package (and web3 with it).
_SURFACE = {
    "Decision": "verifier.engine.worker",
    "Department": "verifier.engine.department",
    "DepartmentActions": "verifier.engine.actions",
    "engine_for": "verifier.engine.run",
    "EngineConfig": "verifier.engine.run",
    "LifecycleSummary": "verifier.engine.lifecycle",
    "run_lifecycle": "verifier.engine.lifecycle",
    "outcome_outbox": "verifier.engine.sending",
    "RunSummary": "verifier.engine.summary",
    "sign_decision": "verifier.engine.worker",
    "VerificationEngine": "verifier.engine.run",
}

__all__ = [
    "Decision",
    "Department",
    "DepartmentActions",
    "EngineConfig",
    "LifecycleSummary",
    "RunSummary",
    "VerificationEngine",
    "engine_for",
    "outcome_outbox",
    "run_lifecycle",
    "sign_decision",
]


if not TYPE_CHECKING:  # the type checker sees the imports above, and only those names
    __getattr__ = lazy_attributes(__name__, _SURFACE)
