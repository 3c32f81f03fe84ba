"""Published breach records for the appeals' tests (no tests here): a commitment anchored,
decided false (proposed, its notice on chain) and confirmed by an officer."""

from __future__ import annotations

from api.service.engines import department_actions
from ledger import Hash32, hex32
from support.deployment import HRSS
from support.service_world import ServiceWorld
from verifier import BreachRecord
from verifier.engine import confirm_breach

GENERAL_MATTERS = {"BJ-HRSS-0001", "BJ-HRSS-0002"}  # general severity: 3 months before repair


def published(world: ServiceWorld) -> tuple[Hash32, BreachRecord]:
    """An HRSS commitment of general severity, anchored, decided false and confirmed on the
    service's today: its published record."""
    signed = world.signed()
    while signed.document.matter_code not in GENERAL_MATTERS:
        signed = world.signed()
    digest = world.submit(signed)
    world.anchor()
    on = world.context.today()
    with department_actions(world.context, HRSS) as actions:
        actions.decide(digest, "false", on, "verifier", "on-site check: the claim was false")
        confirm_breach(actions, digest, on, "officer", "confirmed before its period ends")
    [record] = [
        r
        for r in world.context.records.search_breaches(on).records
        if r.commitment_hash == hex32(digest)
    ]
    return digest, record
