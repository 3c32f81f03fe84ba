"""Delivering notices of proposed breaches (`verifier.engine.NoticeDeliverer`) as a
background task of the service, to each department's messaging gateway of the settings
(`notice_gateways`), under the lease `notices` (one instance of those sharing a store
delivers at a time); and `notice_gateways` for `commitledger notices deliver`."""

from __future__ import annotations

import logging

from api.service.context import ServiceContext
from api.service.leased_tasks import NOTICES_LEASE, LeasedStep
from api.service.settings import Settings, SettingsError
from verifier import default_calendar, default_catalog
from verifier.engine import NoticeDeliverer, NoticeGateway

log = logging.getLogger("commitledger.service.notices")

TASK_NAME = "notices"
INTERVAL_S = 30.0  # how soon a notice queued (or a retry due) is tried when idle


def notice_gateways(settings: Settings) -> dict[str, NoticeGateway]:
    """The gateways of the settings, signed with its secret, with its bearer token."""
    secret = None
    if settings.notice_gateway_secret is not None:
        text = settings.notice_gateway_secret.get_secret_value().strip()
        try:
            secret = bytes.fromhex(text.removeprefix("whsec_"))
        except ValueError:
            raise SettingsError("notice_gateway_secret: 64 hexadecimal digits") from None
        if len(secret) != 32:
            raise SettingsError("notice_gateway_secret: 64 hexadecimal digits")
    token = settings.notice_gateway_token
    return {
        department: NoticeGateway(
            url, secret=secret, token=None if token is None else token.get_secret_value()
        )
        for department, url in settings.notice_gateways.items()
    }


def notice_deliverer(context: ServiceContext) -> NoticeDeliverer:
    """A deliverer over the service's store, its gateways and its day."""
    return NoticeDeliverer(
        context.store,
        notice_gateways(context.settings),
        catalog=default_catalog(),
        calendar=default_calendar(),
        today=context.today,
    )


def register_notices(context: ServiceContext) -> bool:
    """Add the delivery task when some department has a gateway."""
    if not context.settings.notice_gateways or TASK_NAME in context.background.names():
        return False
    deliverer = notice_deliverer(context)

    def step() -> int:
        summary = deliverer.deliver()
        return summary.delivered + summary.failed + summary.dead

    log.info("notices of proposed breaches delivered in the background")
    leased = LeasedStep(context.leases, NOTICES_LEASE, step, INTERVAL_S)
    context.background.add(TASK_NAME, leased, leased.poll_s)
    return True
