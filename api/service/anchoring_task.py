"""The anchoring pipeline as a background task of the service.

One `Anchorer` anchors for every department whose registrar key the service holds; a
department without one is left to another process. The Anchorer's own recovery (sent but
unrecorded, recorded but lost) runs on its first step and after every outage.
"""

from __future__ import annotations

import logging

from eth_account.signers.local import LocalAccount

from api.service.context import ServiceContext
from ledger import Anchorer, ChainError, PipelineConfig

log = logging.getLogger("commitledger.service.anchoring")

TASK_NAME = "anchoring"
IDLE_INTERVAL_S = 0.1


class BackgroundAnchoring:
    """One step of the Anchorer at a time, under the chain's write lock."""

    def __init__(self, context: ServiceContext, registrars: dict[str, LocalAccount]) -> None:
        self.context = context
        self.registrars = registrars
        self.config = PipelineConfig(max_age=context.settings.anchor_max_age)
        self._anchorer: Anchorer | None = None
        self._after_outage = False

    def step(self) -> int:
        """Move what can move now; raises while the chain does not answer (retried later)."""
        link = self.context.chain
        ledger = link.ledger()
        if ledger is None:
            raise ChainError(link.last_error or "the chain does not answer")
        if self._anchorer is None:
            self._anchorer = Anchorer(self.context.store, ledger, self.registrars, self.config)
        anchorer = self._anchorer
        with link.write_lock:
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
