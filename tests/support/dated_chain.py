"""An anvil node whose clock starts on a chosen day and moves to later ones: a verification
run is dated the chain's day (api.run_start), so a story over several days moves the chain."""

from __future__ import annotations

import json
import urllib.request
from datetime import date, datetime, time
from typing import Any

from api.run_start import PLATFORM_TIME
from ledger import AnvilNode

# Mid-morning in Beijing: the same calendar day in UTC, and hours from either midnight.
MORNING = time(10, 0)


def block_time_on(day: date) -> int:
    """A Unix time on `day`, mid-morning in Beijing."""
    return int(datetime.combine(day, MORNING, PLATFORM_TIME).timestamp())


class DatedAnvil(AnvilNode):
    """anvil whose genesis block, and clock, start on `day` (its clock runs on from there)."""

    def __init__(self, day: date, **options: Any) -> None:
        super().__init__(**options)
        self.day = day

    def command(self) -> list[str]:
        """anvil's command line, with the genesis time on `day`."""
        return [*super().command(), "--timestamp", str(block_time_on(self.day))]

    def move_to(self, day: date) -> None:
        """Set the node's clock to `day` (later than its own): the next blocks are on it."""
        self._rpc("anvil_setTime", [block_time_on(day)])
        self.day = day

    def block_timestamp(self, block: int | str) -> int:
        """The timestamp of block `block` (a number, or "latest", "pending")."""
        tag = hex(block) if isinstance(block, int) else block
        found = self._rpc("eth_getBlockByNumber", [tag, False])
        return int(found["timestamp"], 16)

    def _rpc(self, method: str, params: list[Any]) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        request = urllib.request.Request(
            self.url, body.encode(), {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]
