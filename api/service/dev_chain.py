"""The warning that the service runs on a development chain, for `/readyz` and the page.

A managed anvil (`--chain anvil`, the default and the demo's) or the embedded chain holds
the ledger on this machine: any local process can rewrite its history (`anvil_setStorageAt`
turns a breach into a kept promise with no event, `anvil_reorg` replaces blocks), so what
it shows proves nothing to anyone else. A chain given by URL is someone else's to vouch for.
"""

from __future__ import annotations

from api.service.settings import Settings

WARNING_ZH = (
    "开发链：本机任何进程都可以改写这条链的历史（例如 anvil_setStorageAt），"
    "此处显示的记录不能作为证据。"
)
WARNING_EN = (
    "Development chain: any local process can rewrite this chain's history (for instance "
    "with anvil_setStorageAt), so the records shown here are not evidence."
)


def development_chain(settings: Settings) -> str | None:
    """The warning (English) when the service runs on a managed anvil or the embedded
    chain; None on a chain given by URL."""
    if settings.chain in ("anvil", "embedded"):
        return WARNING_EN
    return None
