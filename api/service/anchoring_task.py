"""The anchoring pipeline as a background task of the service.

Each department whose registrar key the service holds is anchored under its own lease,
`anchor:<D>`: of the instances sharing a store, exactly one anchors a department at a
time, and another takes it over when that one dies. Each department has its own `Anchorer`,
made afresh with each new fencing token: its first step is the recovery (batches sent but
not recorded, recorded but lost), and every batch it forms or sends checks the token in its
own transaction. A department without a registrar key here is left to another instance.

No lock of the service is held for anchoring on a node: the chain client signs with each
account under that account's lock, so a verification run of one department (under its
department's lock) never holds up another department's anchoring. The embedded chain, not
thread-safe, is used under the chain's write lock.
"""

from __future__ import annotations

import logging

from eth_account.signers.local import LocalAccount

from api.service.context import ServiceContext
from api.service.leased_tasks import anchor_lease
from ledger import Anchorer, ChainError, LedgerContract, PipelineConfig

log = logging.getLogger("commitledger.service.anchoring")

TASK_NAME = "anchoring"
IDLE_INTERVAL_S = 0.1


class BackgroundAnchoring:
    """One step of each held department's Anchorer at a time."""

    def __init__(self, context: ServiceContext, registrars: dict[str, LocalAccount]) -> None:
        self.context = context
        self.registrars = registrars
        self.config = PipelineConfig(max_age=context.settings.anchor_max_age)
        self._anchorers: dict[str, tuple[int, Anchorer]] = {}  # department -> (token, it)
        self._after_outage: set[str] = set()
        for department in sorted(registrars):
            context.leases.want(anchor_lease(department))

    def step(self) -> int:
        """Move what can move now for each department held; raises (after trying each)
        while the chain does not answer (retried later)."""
        link = self.context.chain
        ledger = link.ledger()
        if ledger is None:
            raise ChainError(link.last_error or "the chain does not answer")
        moved = 0
        failed: Exception | None = None
        for department in sorted(self.registrars):
            try:
                moved += self._step(ledger, department)
            except Exception as exc:  # the next department still anchors; retried later
                failed = failed or exc
        if failed is not None:
            raise failed
        return moved

    def _anchorer(self, ledger: LedgerContract, department: str) -> Anchorer | None:
        """The department's Anchorer under the token held now, or None when not held."""
        keeper = self.context.leases
        lease = anchor_lease(department)
        token = keeper.token(lease)
        if token is None:
            if self._anchorers.pop(department, None) is not None:
                log.info("anchoring handed over", extra={"department": department})
            return None
        held = self._anchorers.get(department)
        if held is None or held[0] != token:
            anchorer = Anchorer(
                self.context.store, ledger, {department: self.registrars[department]}, self.config
            )
            anchorer.fence = keeper.leases.fence(lease, keeper.holder, token)
            held = (token, anchorer)
            self._anchorers[department] = held
            log.info("anchoring taken", extra={"department": department, "token": token})
        return held[1]

    def _step(self, ledger: LedgerContract, department: str) -> int:
        anchorer = self._anchorer(ledger, department)
        if anchorer is None:
            return 0
        with self.context.chain.read_lock(ledger):  # the write lock on the embedded chain
            try:
                moved = 0
                if department in self._after_outage:
                    # The node may be back without its state: find batches it lost.
                    moved += anchorer.recheck_anchored(force=True)
                    self._after_outage.discard(department)
                moved += anchorer.step()
            except Exception:
                anchorer.chain.forget_nonces()
                self._after_outage.add(department)
                raise
        return moved


def register_anchoring(context: ServiceContext) -> bool:
    """Add the anchoring task when enabled and some registrar key is present."""
    if not context.settings.anchoring or context.chain.deployment is None:
        return False
    registrars = context.keys.registrars()
    if not registrars:
        return False
    if TASK_NAME in context.background.names():
        return True
    log.info("anchoring in the background", extra={"departments": sorted(registrars)})
    context.background.add(
        TASK_NAME, BackgroundAnchoring(context, registrars).step, IDLE_INTERVAL_S
    )
    return True
