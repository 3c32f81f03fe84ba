"""The departments' lifecycle job (`verifier.engine.run_lifecycle`) as a background task of
the service: on start, then once a day, for each department whose verifier and report keys
the service holds; and `run_lifecycles` for `commitledger lifecycle run`.

Under the lease `lifecycle`: one instance of those sharing a store runs the jobs; another
takes over when it dies (and runs the day's jobs again: each step looks at what is left).

A department whose job fails (node away, account not bound) is tried again later without
holding up the others; one done today is not run again until tomorrow. Running it twice in a
day would record nothing twice anyway: each step looks again at what is left.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date

from api.service.context import ServiceContext
from api.service.engines import department_actions
from api.service.leased_tasks import LIFECYCLE_LEASE, LeasedStep
from verifier import default_catalog
from verifier.engine import LifecycleSummary, run_lifecycle

log = logging.getLogger("commitledger.service.lifecycle")

TASK_NAME = "lifecycle"
CHECK_INTERVAL_S = 600.0  # how soon after midnight the next day's job starts


def lifecycle_departments(context: ServiceContext) -> list[str]:
    """The departments whose verifier account and report key the service holds."""
    return [
        department
        for department in sorted(default_catalog().departments())
        if context.keys.has(department, "verifier") and context.keys.has(department, "report")
    ]


def run_lifecycles(
    context: ServiceContext, on: date, departments: Iterable[str]
) -> list[LifecycleSummary]:
    """Each department's lifecycle job on `on`, in turn, each under the chain's write lock;
    the first failure is raised (the departments before it are done)."""
    summaries = []
    for department in departments:
        with department_actions(context, department) as actions:
            summaries.append(run_lifecycle(actions, on))
    return summaries


class BackgroundLifecycle:
    """Runs each department's job once a day (the service's day), the first on start."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self._done: dict[str, date] = {}

    def step(self) -> int:
        """Run the jobs not yet run today; how many ran. Raises after trying every one if
        any failed (the task's backoff retries it)."""
        today = self.context.today()
        failed: Exception | None = None
        ran = 0
        for department in lifecycle_departments(self.context):
            if self._done.get(department) == today:
                continue
            try:
                [summary] = run_lifecycles(self.context, today, [department])
            except Exception as exc:  # the next department still runs; retried later
                failed = failed or exc
                continue
            self._done[department] = today
            ran += 1
            log.info("lifecycle job done", extra=summary.to_json_obj())
        if failed is not None:
            raise failed
        return ran


def register_lifecycle(context: ServiceContext) -> bool:
    """Add the lifecycle task when enabled, with a deployment, the master key and some
    department's verifier and report keys."""
    if not context.settings.lifecycle or context.chain.deployment is None:
        return False
    if context.intake is None or not lifecycle_departments(context):
        return False
    if TASK_NAME not in context.background.names():
        log.info("lifecycle jobs in the background, daily")
        step = LeasedStep(
            context.leases, LIFECYCLE_LEASE, BackgroundLifecycle(context).step, CHECK_INTERVAL_S
        )
        context.background.add(TASK_NAME, step, step.poll_s)
    return True
