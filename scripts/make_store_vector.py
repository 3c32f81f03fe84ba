"""Write a small SQLite store made by today's migrations, and what it holds, under tests/vectors.

The store is a frozen artifact: tests open it with the current code and read it back, so a
migration that cannot open yesterday's stores fails there. Run this only to add a new
generation of stores (a new file name), never to refresh an existing one:

    .venv/bin/python scripts/make_store_vector.py tests/vectors/store-2026-12.sqlite

It builds the feed tests' world on the embedded chain (every kind of status change: kept,
mismatch, breach then repaired, needs-manual, withdrawal), follows the feed once, then
copies the database with VACUUM INTO and writes a manifest beside it (the same name with
.json): the vault's master key (a throwaway test key), and the commitments, verifications,
breach records and feed records the store must still show.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from support.feed_world import FeedWorld, feed_world  # noqa: E402

from ledger import Chain  # noqa: E402
from verifier.feed import FeedStore  # noqa: E402
from verifier.records import breach_records  # noqa: E402


def manifest(fw: FeedWorld, feed: FeedStore) -> dict[str, Any]:
    """What the store holds, in plain JSON, for the reading test to compare."""
    world = fw.world
    store, records = world.store, world.engine.records
    commitments = []
    for kind, digest in sorted(fw.hashes.items()):
        stored = store.get(digest)
        assert stored is not None, kind
        verification = records.verification(digest)
        commitments.append(
            {
                "kind": kind,
                "hash": "0x" + digest.hex(),
                "code": stored.code,
                "matter_code": stored.matter_code,
                "department": stored.department,
                "state": stored.state,
                "batch_id": stored.batch_id,
                "proof": ["0x" + node.hex() for node in stored.proof],
                "verification_state": None if verification is None else verification.state,
                "outcome_status": None if verification is None else verification.outcome_status,
            }
        )
    with store.engine.connect() as connection:
        breach_ids = sorted(connection.execute(select(breach_records.c.id)).scalars())
    breaches = []
    for record_id in breach_ids:
        record = records.breach(record_id)
        assert record is not None
        breaches.append(record.to_public_json())
    rows = [
        {"seq": row.seq, "record_id": row.record_id, "kind": row.kind, "scope": row.scope,
         "department": row.department, "body": row.body}
        for row in feed.stored_rows()
    ]  # fmt: skip
    return {
        "about": "made by scripts/make_store_vector.py; read by tests/unit/test_store_vector.py",
        "vault_master_key": world.vault.master_key.hex(),
        "commitments": commitments,
        "breach_records": breaches,
        "feed": {"head": feed.head(), "head_block": feed.head_block(), "records": rows},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="the .sqlite file to write (must not exist)")
    output = parser.parse_args().output
    if output.exists():
        parser.error(f"{output} exists: a store vector is frozen, write a new file instead")
    scratch = tempfile.TemporaryDirectory()
    with scratch, feed_world(Chain.embedded(), Path(scratch.name)) as fw:
        fw.follower().step()
        feed = FeedStore(fw.world.store)
        described = manifest(fw, feed)
        fw.world.store.close()
        with sqlite3.connect(fw.world.db_path) as connection:
            connection.execute("VACUUM INTO ?", (str(output),))
    output.with_suffix(".json").write_text(
        json.dumps(described, indent=2, ensure_ascii=False, sort_keys=True) + "\n", "utf-8"
    )
    print(f"wrote {output} ({output.stat().st_size} bytes) and {output.with_suffix('.json')}")


if __name__ == "__main__":
    main()
