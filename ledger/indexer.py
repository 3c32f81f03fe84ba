"""Indexes the contract's events into the store, confirmed blocks only, undoing reorgs."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, cast

from eth_typing import ABIEvent
from eth_utils.abi import event_abi_to_log_topic
from hexbytes import HexBytes

from ledger.contract import LedgerContract
from ledger.store import Store

log = logging.getLogger("commitledger.indexer")

CURSOR = "events.last_block"
CURSOR_HASH = "events.last_block_hash_prefix"
BLOCKS_PER_QUERY = 2_000
REORG_REWIND = 64  # blocks indexed again when the last indexed block was replaced


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | HexBytes):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class EventIndexer:
    """Copies CommitmentLedger events into the store's `contract_events` table."""

    def __init__(
        self,
        store: Store,
        ledger: LedgerContract,
        confirmations: int = 0,
        on_indexed: Callable[[int], object] | None = None,
    ) -> None:
        """`on_indexed(block)`: called after each sync with the last block indexed, so that
        what follows the confirmed events (the registry's reconciliation) sees them at once."""
        self.store = store
        self.ledger = ledger
        self.confirmations = confirmations
        self.on_indexed = on_indexed
        self._events = {
            HexBytes(event_abi_to_log_topic(cast(ABIEvent, entry))): getattr(
                ledger._contract.events, entry["name"]
            )
            for entry in ledger.abi
            if entry.get("type") == "event"
        }

    def sync(self) -> int:
        """Index every confirmed block not yet indexed; return how many events were added."""
        chain = self.ledger.chain
        head = chain.block_number() - self.confirmations
        last = self.store.cursor(CURSOR)
        if last is not None and not self._still_canonical(last):
            rewind_to = max(0, last - REORG_REWIND)
            log.warning("block %d was replaced: re-indexing from block %d", last, rewind_to)
            self.store.drop_events_from(rewind_to)
            last = rewind_to - 1
        start = 0 if last is None else last + 1
        added = 0
        while start <= head:
            end = min(head, start + BLOCKS_PER_QUERY - 1)
            added += self.store.add_events(self._fetch(start, end))
            self._remember(end)
            start = end + 1
        if self.on_indexed is not None and head >= 0:
            self.on_indexed(head)
        return added

    def _fetch(self, start: int, end: int) -> list[dict[str, Any]]:
        logs = self.ledger.chain.w3.eth.get_logs(
            {"address": self.ledger.address, "fromBlock": start, "toBlock": end}
        )
        rows = []
        for entry in logs:
            event = self._events.get(HexBytes(entry["topics"][0])) if entry["topics"] else None
            if event is None:
                continue
            decoded = event().process_log(entry)
            args = {k: _plain(v) for k, v in decoded["args"].items()}
            subject = args.get("commitment") or args.get("root")
            department = args.get("department")
            rows.append(
                {
                    "block_number": int(entry["blockNumber"]),
                    "block_hash": bytes(entry["blockHash"]),
                    "tx_hash": bytes(entry["transactionHash"]),
                    "log_index": int(entry["logIndex"]),
                    "name": decoded["event"],
                    "subject": bytes.fromhex(subject[2:]) if isinstance(subject, str) else None,
                    "department": (
                        bytes.fromhex(department[2:]) if isinstance(department, str) else None
                    ),
                    "args": json.dumps(args, sort_keys=True),
                }
            )
        return rows

    def _remember(self, block: int) -> None:
        self.store.set_cursor(CURSOR, block)
        block_hash = self.ledger.chain.block_hash(block)
        if block_hash is not None:
            # 7 bytes of the hash (fits a BIGINT) are plenty to notice that the block was replaced.
            self.store.set_cursor(CURSOR_HASH, int.from_bytes(block_hash[:7], "big"))

    def _still_canonical(self, block: int) -> bool:
        remembered = self.store.cursor(CURSOR_HASH)
        current = self.ledger.chain.block_hash(block)
        if remembered is None or current is None:
            return current is not None
        return int.from_bytes(current[:7], "big") == remembered
