"""Work the service does beside its requests: named steps repeated in threads until it stops.

`BackgroundTasks.add(name, step, interval_s)` registers a step: a callable that does one
bounded piece of work and returns something truthy when it did some (it runs again at
once) or falsy when there was nothing to do (it waits `interval_s`). An exception is logged
by its type only (messages may hold personal data) and the step is retried with an
exponential backoff, so a node or database outage is ridden out. The app's lifespan starts
the tasks and stops them on shutdown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("commitledger.service.background")

BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 5.0  # a node back after an outage is used again within seconds
JOIN_TIMEOUT_S = 30.0

Step = Callable[[], object]


@dataclass
class TaskState:
    """What `/readyz` shows of one task."""

    name: str
    interval_s: float
    runs: int = 0
    failures: int = 0  # in a row; 0 once a step succeeds again
    last_error: str | None = None


@dataclass
class _Task:
    state: TaskState
    step: Step
    thread: threading.Thread | None = None


@dataclass
class BackgroundTasks:
    """Named steps run each in its own daemon thread between `start()` and `stop()`."""

    _tasks: dict[str, _Task] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _started: bool = False

    def add(self, name: str, step: Step, interval_s: float) -> None:
        """Register `step` under `name`; started at once if the tasks are running already."""
        if name in self._tasks:
            raise ValueError(f"a background task {name!r} exists already")
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        task = _Task(TaskState(name, interval_s), step)
        self._tasks[name] = task
        if self._started:
            self._launch(task)

    def names(self) -> list[str]:
        """The registered tasks' names."""
        return list(self._tasks)

    def states(self) -> list[TaskState]:
        """Each task's counters, for readiness."""
        return [task.state for task in self._tasks.values()]

    def start(self) -> None:
        """Start every registered task (and any added later) in its own thread."""
        if self._started:
            return
        self._started = True
        self._stop.clear()
        for task in self._tasks.values():
            self._launch(task)

    def stop(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Ask every task to stop after its current step, and wait for them."""
        self._stop.set()
        for task in self._tasks.values():
            if task.thread is not None:
                task.thread.join(timeout)
                task.thread = None
        self._started = False

    def _launch(self, task: _Task) -> None:
        task.thread = threading.Thread(
            target=self._loop, args=(task,), name=f"commitledger-{task.state.name}", daemon=True
        )
        task.thread.start()

    def _loop(self, task: _Task) -> None:
        state = task.state
        backoff = BACKOFF_INITIAL_S
        while not self._stop.is_set():
            try:
                did_work = task.step()
            except Exception as exc:  # any failure: log, wait, try again
                state.failures += 1
                state.last_error = type(exc).__name__
                log.warning(
                    "background task failed; retrying",
                    extra={"task": state.name, "reason": type(exc).__name__, "wait_s": backoff},
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, max(BACKOFF_MAX_S, state.interval_s))
                continue
            state.runs += 1
            state.failures = 0
            state.last_error = None
            backoff = BACKOFF_INITIAL_S
            if not did_work:
                self._stop.wait(state.interval_s)
