"""The checks a person makes, joined to the engine's decisions: a run opens a commitment's
tasks (if sampling selected it) and its outcome stays NEEDS_MANUAL until every task is done;
the last task's completion decides it with the tasks' results in the signed report. A future
obligation holds the commitment's verification until the obligation falls due.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ledger import Hash32, OutcomeEntry, Status, hex32
from verifier.catalog import Matter
from verifier.engine.actions import STATUS_OF_OUTCOME, DepartmentActions, Entry
from verifier.engine.methods import (
    claims_outcome,
    commitment_day,
    exempt_note,
    obligation_day,
    sampled,
    sampling_note,
    worse,
)
from verifier.engine.worker import ERASED, Decision, sign_decision
from verifier.errors import VerificationError
from verifier.records import TaskRecords, TaskResult, TaskRow, Verification
from verifier.reports import Outcome, SignedReport, outbox_report
from verifier.rules import Comparison

log = logging.getLogger("commitledger.verifier")

# A verification recorded while tasks were open, that their results may still move.
_MOVABLE: dict[str, Outcome] = {"manual": "needs_manual", "mismatch": "mismatch"}
_STANDING: dict[str, Status] = {"manual": Status.NEEDS_MANUAL, "mismatch": Status.MISMATCH}


def joined_outcome(
    matter: Matter, comparisons: Sequence[Comparison], tasks: Sequence[TaskRow]
) -> Outcome:
    """The comparisons' outcome with the tasks': an open task leaves it to a person (at
    least NEEDS_MANUAL), a failed one makes it the task's `on_fail`, the worse one wins."""
    outcome = claims_outcome(matter, comparisons)
    for task in tasks:
        if task.status == "open":
            outcome = worse(outcome, "needs_manual")
        elif task.result == "failed":
            outcome = worse(outcome, task.on_fail)
    return outcome


def _note(
    commitment: Hash32, matter: Matter, comparisons: Sequence[Comparison], tasks: Sequence[TaskRow]
) -> str:
    compared = {c.key for c in comparisons}
    exempt = [s.key for s in matter.claims if s.exempt_when is not None and s.key not in compared]
    open_tasks = [f"{t.key} ({t.kind}): {t.description}" for t in tasks if t.status == "open"]
    failed = [f"{t.key} ({t.kind})" for t in tasks if t.result == "failed"]
    parts = [
        exempt_note(exempt),
        f"Open checks for a person: {'; '.join(open_tasks)}." if open_tasks else "",
        f"Failed checks: {', '.join(failed)}." if failed else "",
        sampling_note(commitment, matter),
    ]
    return " ".join(part for part in parts if part)


@dataclass(frozen=True)
class Settled:
    """What completing a task did: the task, and the outcome recorded if it was the last."""

    task: TaskRow
    outcome: Outcome | None


class TaskDesk:
    """One department's tasks: opened by its runs, completed by its people."""

    def __init__(self, actions: DepartmentActions, records: TaskRecords | None = None) -> None:
        self.actions = actions
        self.code = actions.code
        self.records = records if records is not None else TaskRecords(actions.store)

    # ------------------------------------------------------------------ a run

    def ripe(self, waiting: Sequence[Verification], on: date) -> list[Verification]:
        """The verifications a run decides on `on`: those whose matter's future obligations
        fell due (the others wait, their deadline moved past the obligation's day)."""
        ready = []
        for verification in waiting:
            matter = self.actions.catalog.matter(verification.matter_code)
            if not any(spec.due_after_days for spec in matter.claims):
                ready.append(verification)  # most matters: no store read
                continue
            stored = self.actions.store.get(verification.commitment_hash)
            day = None if stored is None else obligation_day(matter, commitment_day(stored.code))
            if day is None or day <= on:
                ready.append(verification)
                continue
            deadline = self.actions.calendar.add(day, matter.verification_window_days)
            self.records.postpone(verification.commitment_hash, deadline.day)
        return ready

    def apply(self, decision: Decision, on: date) -> Decision:
        """The engine's decision with the matter's tasks joined: opened for a commitment the
        sample selected, their results in the outcome and in the re-signed report."""
        [applied] = self.apply_many([decision], on)
        return applied

    def apply_many(self, decisions: Sequence[Decision], on: date) -> list[Decision]:
        """`apply` of a chunk's decisions, the tasks opened at once."""
        joined = [
            d
            for d in decisions
            if d.matter.tasks and d.outcome != "integrity_failure" and d.note != ERASED
        ]
        if not joined:
            return list(decisions)
        selected = [
            (d.commitment_hash, d.matter.code, d.matter.tasks)
            for d in joined
            if sampled(d.commitment_hash, d.matter)
        ]
        opened = self.records.open_many(selected, self.code, on) if selected else {}
        joining = {id(d) for d in joined}
        result = []
        for decision in decisions:
            if id(decision) not in joining:
                result.append(decision)
                continue
            tasks = opened.get(bytes(decision.commitment_hash), [])
            result.append(
                self._decision(
                    decision.commitment_hash, decision.matter, decision.comparisons, tasks, on
                )
            )
        return result

    def settle_all(self, on: date) -> int:
        """Decide the commitments whose last task was done since their outcome was recorded
        (by the department an assistance request asked, say); how many changed."""
        changed = 0
        for commitment in self.records.all_done(self.code):
            try:
                changed += self.settle(commitment, on) is not None
            except VerificationError as exc:  # the chain moved it meanwhile: a person looks
                log.warning("tasks done, not decided: %s (%s)", hex32(commitment), exc)
        return changed

    def _decision(
        self,
        commitment: Hash32,
        matter: Matter,
        comparisons: tuple[Comparison, ...],
        tasks: Sequence[TaskRow],
        on: date,
    ) -> Decision:
        outcome = joined_outcome(matter, comparisons, tasks)
        note = _note(commitment, matter, comparisons, tasks)
        decision = Decision(commitment, matter, outcome, comparisons, note)
        key = self.actions.department.report_key
        listed = [task.to_report() for task in tasks]
        report = sign_decision(decision, self.code, on, key, "engine", tasks=listed)
        return Decision(commitment, matter, outcome, comparisons, note, report)

    # ------------------------------------------------------------------ people

    def complete(
        self,
        commitment: Hash32,
        key: str,
        result: TaskResult,
        by: str,
        note: str,
        on: date,
    ) -> Settled:
        """Record a task's result (this department's task, or an assistance request it was
        asked); when it was the commitment's last open task, decide the commitment."""
        task = self.records.complete(commitment, key, self.code, result, by, note, on)
        return Settled(task, self.settle(commitment, on) if task.department == self.code else None)

    def settle(self, commitment: Hash32, on: date) -> Outcome | None:
        """Decide a commitment whose tasks are all done, if its outcome was recorded while
        they were open (awaiting verification: the next run decides it); the outcome
        recorded, or None when nothing changed."""
        tasks = self.records.tasks_of(commitment)
        if not tasks or any(task.status == "open" for task in tasks):
            return None
        verification = self.actions.records.verification(commitment)
        if verification is None or verification.department != self.code:
            return None
        current = _MOVABLE.get(verification.state)
        if current is None or not verification.report:
            return None  # awaiting verification, or decided for good
        recorded = outbox_report(dict(verification.report), verification.evidence)
        if not isinstance(recorded, SignedReport):
            return None
        matter = self.actions.catalog.matter(verification.matter_code)
        comparisons = recorded.comparisons()
        decision = self._decision(commitment, matter, comparisons, tasks, on)
        if decision.outcome == current:
            return None
        assert decision.report is not None
        self._record(commitment, decision.outcome, decision.report, verification.state)
        return decision.outcome

    def _record(
        self, commitment: Hash32, outcome: Outcome, report: SignedReport, state: str
    ) -> None:
        actions = self.actions
        actions.flush()  # an earlier attempt's outcome first: never queued twice
        standing = actions.ledger.status_of(actions.department.id, commitment).status
        if standing != _STANDING[state]:
            raise VerificationError(
                f"{hex32(commitment)} is {standing.name} on chain, not {state}: not decided"
            )
        entry: Entry = OutcomeEntry(commitment, STATUS_OF_OUTCOME[outcome], report)
        [queued] = actions.outbox.enqueue(self.code, [entry])
        actions.flush()
        refused = actions.outbox.abandoned([queued.id]).get(queued.id)
        if refused is not None:
            raise VerificationError(f"the contract refuses this outcome: {refused}")
