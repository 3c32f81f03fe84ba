"""The anchoring pipeline as a background task of the service.

Each department whose registrar key the service holds is anchored under its own lease,
`anchor:<D>`: of the instances sharing a store, exactly one anchors a department at a
time, and another takes it over when that one dies. One `Anchorer` serves the departments
held here, made afresh whenever a lease is taken or lost: its first step is the recovery
(batches sent but not recorded, recorded but lost), and every batch it forms or sends checks
its department's token in its own transaction. A department without a registrar key here is
left to another instance.

No lock of the service is held for anchoring on a node: the chain client signs with each
account under that account's lock, so a verification run of one department (under its
department's lock) never holds up another department's anchoring. The embedded chain, not
thread-safe, is used under the chain's write lock.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack

from eth_account.signers.local import LocalAccount

from api.service.context import ServiceContext
from api.service.leased_tasks import anchor_lease
from ledger import Anchorer, ChainError, LedgerContract, PipelineConfig

log = logging.getLogger("commitledger.service.anchoring")

TASK_NAME = "anchoring"
IDLE_INTERVAL_S = 0.1


class BackgroundAnchoring:
    """One step at a time of an Anchorer over the departments whose leases are held here."""

    def __init__(self, context: ServiceContext, registrars: dict[str, LocalAccount]) -> None:
        self.context = context
        self.registrars = registrars
        self.config = PipelineConfig(max_age=context.settings.anchor_max_age)
        self._anchorer: Anchorer | None = None
        self._tokens: dict[str, int] = {}  # the tokens the anchorer was made under
        self._after_outage = False
        for department in sorted(registrars):
            context.leases.want(anchor_lease(department))

    def step(self) -> int:
        """Move what can move now; raises while the chain does not answer (retried later).
        Acts under every department's lease: a hand-over of one to another instance (the
        fair share) waits until this step is done."""
        with ExitStack() as acting:
            for department in sorted(self.registrars):
                acting.enter_context(self.context.leases.acting(anchor_lease(department)))
            return self._step()

    def _step(self) -> int:
        link = self.context.chain
        ledger = link.ledger()
        if ledger is None:
            raise ChainError(link.last_error or "the chain does not answer")
        anchorer = self._anchorer_for(ledger)
        if anchorer is None:
            return 0
        with link.read_lock(ledger):  # the write lock on the embedded chain
            try:
                moved = 0
                if self._after_outage:
                    # The node may be back without its state: find batches it lost.
                    moved += anchorer.recheck_anchored(force=True)
                    self._after_outage = False
                moved += anchorer.step()
            except Exception:
                anchorer.chain.forget_nonces()
                self._after_outage = True
                raise
        return moved

    def _anchorer_for(self, ledger: LedgerContract) -> Anchorer | None:
        """The Anchorer of the departments held now, made afresh whenever a lease is taken
        or lost (its first step recovers what the previous holder left); None when none is
        held."""
        keeper = self.context.leases
        held: dict[str, int] = {}
        for department in self.registrars:
            token = keeper.token(anchor_lease(department))
            if token is not None:
                held[department] = token
        if held != self._tokens:
            log.info("anchoring for", extra={"departments": sorted(held), "tokens": held})
            self._tokens = held
            self._anchorer = None
            if held:
                anchorer = Anchorer(
                    self.context.store,
                    ledger,
                    {d: self.registrars[d] for d in held},
                    self.config,
                )
                anchorer.fences = {
                    d: keeper.leases.fence(anchor_lease(d), keeper.holder, token)
                    for d, token in held.items()
                }
                self._anchorer = anchorer
        return self._anchorer


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
