"""The feed's tables on SQLite and PostgreSQL: concurrent appenders give one gapless sequence,
pages and their next positions per scope, cursors broken on purpose."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import Connection, event, select, update

from ledger import (
    Hash32,
    Status,
    Store,
    Vault,
    VaultError,
    commitments,
    department_id,
    is_sealed_secret,
)
from verifier import CursorError
from verifier.feed import (
    CursorCodec,
    Details,
    FeedRecord,
    FeedStore,
    PendingEvent,
    Subscriptions,
    chain_facts,
    department_codes,
    feed_meta,
    feed_records,
    feed_subscribers,
    head_in,
    new_secret,
    sign_body,
    verify_body,
)

CONTRACT = "0x" + "ab" * 20
STATUSES = [Status.KEPT, Status.BREACHED, Status.MISMATCH, Status.REPAIRED]


def add_events(store: Store, count: int, first_block: int = 1) -> None:
    """`count` OutcomeRecorded events, two a block, as the indexer stores them."""
    rows = []
    for n in range(count):
        to = STATUSES[n % len(STATUSES)]
        args = {
            "commitment": "0x" + os.urandom(32).hex(),
            "department": "0x" + department_id("BJ-HRSS").hex(),
            "from": int(Status.ANCHORED if to != Status.REPAIRED else Status.BREACHED),
            "to": int(to),
            "evidence": "0x" + os.urandom(32).hex(),
            "root": "0x" + bytes(32).hex(),
        }
        rows.append(
            {
                "block_number": first_block + n // 2,
                "block_hash": os.urandom(32),
                "tx_hash": os.urandom(32),
                "log_index": n % 2,
                "name": "OutcomeRecorded",
                "subject": bytes.fromhex(args["commitment"][2:]),
                "department": department_id("BJ-HRSS"),
                "args": json.dumps(args),
            }
        )
    store.add_events(rows)


def build(connection: Connection, events: Sequence[PendingEvent]) -> list[FeedRecord]:
    """Unsigned records of the events (the builder signs; the store does not care)."""
    head = head_in(connection)
    departments = department_codes(["BJ-HRSS"])
    return [
        FeedRecord(
            head + n,
            chain_facts(
                chain_id=1,
                contract=CONTRACT,
                transaction="0x" + event.tx_hash.hex(),
                block=event.block_number,
                log_index=event.log_index,
                block_timestamp=1_700_000_000,
                args=json.loads(event.args),
                departments=departments,
            ),
            Details(),
        )
        for n, event in enumerate(events, start=1)
    ]


def test_concurrent_appenders_give_one_gapless_sequence(store: Store) -> None:
    add_events(store, 120)
    handles = [Store(store.url) for _ in range(4)]
    feeds = [FeedStore(handle) for handle in handles]
    assert len({feed.cursors.feed_id for feed in feeds}) == 1  # one feed, opened four times
    errors: list[BaseException] = []

    def append_all(feed: FeedStore) -> None:
        try:
            while feed.append(build, safe_block=10**6, window=64, limit=7):
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append_all, args=(feed,)) for feed in feeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for handle in handles:
        handle.close()
    assert not errors, errors
    feed = FeedStore(store)
    assert feed.sequences() == list(range(1, 121))
    places = [(r["evidence"]["block"], r["evidence"]["log_index"]) for r in
              (json.loads(body) for _, body in feed.bodies())]  # fmt: skip
    assert places == sorted(places) and len(set(places)) == 120


def test_events_beyond_the_safe_block_wait(store: Store) -> None:
    add_events(store, 10)  # blocks 1 to 5
    feed = FeedStore(store)
    assert len(feed.append(build, safe_block=3, window=64, limit=100)) == 6
    assert len(feed.append(build, safe_block=5, window=64, limit=100)) == 4
    assert feed.append(build, safe_block=5, window=64, limit=100) == []


def test_a_page_and_where_the_next_one_starts(store: Store) -> None:
    add_events(store, 8)  # kept, breach, mismatch, repair, twice
    feed = FeedStore(store)
    feed.append(build, safe_block=100, window=64, limit=100)
    public = ("public",)
    bodies, following = feed.page(0, 1, public)
    assert [json.loads(b)["sequence"] for b in bodies] == [2] and following == 2  # full page
    bodies, following = feed.page(2, 10, public)
    assert [json.loads(b)["sequence"] for b in bodies] == [4, 6, 8] and following == 8
    # Nothing left in scope: the next page starts at the head, not back at `after`.
    assert feed.page(8, 10, public) == ([], 8)
    assert feed.page(6, 10, ("restricted",)) == ([], 8)


# ---------------------------------------------------------------------- cursors


@pytest.fixture
def codec() -> CursorCodec:
    return CursorCodec(os.urandom(16), os.urandom(32))


def test_a_cursor_round_trips(codec: CursorCodec) -> None:
    for sequence in (0, 1, 2**40):
        assert codec.decode(codec.encode(sequence)) == sequence


def _raw(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_broken_cursors_are_refused(codec: CursorCodec) -> None:
    good = codec.encode(5)
    raw = _raw(good)
    flipped_sequence = raw[:24] + bytes([raw[24] ^ 1]) + raw[25:]
    flipped_tag = raw[:-1] + bytes([raw[-1] ^ 1])
    other_feed = CursorCodec(os.urandom(16), os.urandom(32)).encode(5)
    same_id_other_key = CursorCodec(codec.feed_id, os.urandom(32)).encode(5)
    vectors = {
        "": "malformed",
        "!!!": "malformed",
        good + "A": "malformed",  # garbage after
        "AAAA" + good: "malformed",  # garbage before
        _text(raw[:-1]): "malformed",  # truncated
        _text(b"\x02" + raw[1:]): "malformed",  # another version
        "é" * 10: "malformed",
        _text(flipped_sequence): "forged",  # moved to another position
        _text(flipped_tag): "forged",
        same_id_other_key: "forged",
        other_feed: "foreign",
    }
    for cursor, problem in vectors.items():
        with pytest.raises(CursorError) as refused:
            codec.decode(cursor)
        assert refused.value.problem == problem, cursor


def test_migration_2_adds_and_fills_the_commitment_columns_of_a_v1_feed(store: Store) -> None:
    add_events(store, 4)
    feed = FeedStore(store)
    feed.append(build, safe_block=100, window=64, limit=100)
    with store.engine.begin() as connection:  # back to the shape version 1 created
        for index in ("personal", "commitment", "published"):
            connection.exec_driver_sql(f"DROP INDEX feed_records_{index}")
        for column in ("personal", "commitment_hash", "ended_by"):
            connection.exec_driver_sql(f"ALTER TABLE feed_records DROP COLUMN {column}")
        connection.exec_driver_sql("DELETE FROM feed_migrations WHERE version IN (2, 4)")

    reopened = FeedStore(Store(store.url))

    with store.engine.connect() as connection:
        rows = connection.execute(
            select(feed_records.c.commitment_hash, feed_records.c.personal, feed_records.c.body)
        ).all()
    assert len(rows) == 4
    for row in rows:
        body = json.loads(row.body)
        assert "0x" + bytes(row.commitment_hash).hex() == body["evidence"]["commitment_hash"]
        assert row.personal is False  # these records name nobody
    reopened.store.close()


def test_a_webhook_signature_covers_the_body_the_time_and_the_secret() -> None:
    _shown, secret = new_secret()
    body = b'{"id":"FR-1"}'
    header = sign_body(secret, body, 1_700_000_000)
    assert verify_body(secret, header, body, now=1_700_000_010)
    assert not verify_body(secret, header, b'{"id":"FR-2"}', now=1_700_000_010)
    assert not verify_body(new_secret()[1], header, body, now=1_700_000_010)
    assert not verify_body(secret, header, body, now=1_700_000_000 + 3600)  # replayed late
    assert not verify_body(secret, header.replace("t=1700000000", "t=1700003600"), body,
                           now=1_700_003_600)  # fmt: skip
    assert not verify_body(secret, "garbage", body)


def test_looking_for_records_to_redact_walks_the_erased_commitments_not_the_feed(
    tmp_path: Path,
) -> None:
    # The follower asks on every round; a scan of every served record grew with the feed
    # (200 ms a round at 100,000 records). Led by migration 3's partial index, it does not.
    store = Store(f"sqlite:///{tmp_path / 'plan.db'}")
    feed = FeedStore(store)
    statements: list[tuple[str, object]] = []

    def seen(_c: object, _cursor: object, statement: str, parameters: object, *_: object) -> None:
        statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", seen)
    assert feed.erased_with_personal_data() == []
    event.remove(store.engine, "before_cursor_execute", seen)
    statement, parameters = statements[-1]
    with store.engine.connect() as connection:
        plan = " | ".join(
            str(row[-1])
            for row in connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement,
                parameters,  # type: ignore[arg-type]
            )
        )
    assert "USING INDEX feed_erased_commitments" in plan, plan
    assert "SCAN feed_records" not in plan, plan
    store.close()


def test_records_to_redact_are_those_naming_an_erased_committer(store: Store) -> None:
    add_events(store, 3)
    feed = FeedStore(store)
    appended = feed.append(build, safe_block=100, window=64, limit=100)
    hashes = [bytes.fromhex(r.facts.evidence.commitment_hash[2:]) for r in appended]
    with store.engine.begin() as connection:
        for n, digest in enumerate(hashes):
            connection.execute(
                commitments.insert().values(
                    hash=digest, code="110000" + "20261127" + f"{n:06d}", matter_code="M",
                    department="BJ-HRSS", applicant_fingerprint=os.urandom(32),
                    received_at=0.0, state="anchored", sealed=b"sealed", wrapped_key=b"key",
                )
            )  # fmt: skip
        connection.execute(update(feed_records).values(personal=True))
    assert feed.erased_with_personal_data() == []
    for digest in hashes[:2]:
        assert store.erase(Hash32(digest))
    with store.engine.begin() as connection:  # the second one's record is redacted already
        connection.execute(
            update(feed_records).where(feed_records.c.seq == 2).values(personal=False)
        )
    assert [seq for seq, _body in feed.erased_with_personal_data()] == [1]


# ---------------------------------------------------------------------- secrets kept sealed


def test_the_cursor_key_is_kept_sealed_and_a_clear_one_is_sealed_on_open(store: Store) -> None:
    vault = Vault(os.urandom(32))
    legacy = FeedStore(store)  # a store from before sealing: the key in clear
    with store.engine.connect() as connection:
        clear = bytes(connection.execute(select(feed_meta.c.cursor_key)).scalar_one())
    assert not is_sealed_secret(clear)
    issued = legacy.cursors.encode(3)

    sealed = FeedStore(Store(store.url), vault)
    with store.engine.connect() as connection:
        kept = bytes(connection.execute(select(feed_meta.c.cursor_key)).scalar_one())
    assert is_sealed_secret(kept) and clear not in kept
    assert sealed.cursors.decode(issued) == 3  # cursors handed out before still resume
    with pytest.raises(VaultError, match="master key"):
        _ = FeedStore(Store(store.url)).cursors


def test_a_webhook_secret_is_kept_sealed_and_a_clear_one_is_sealed_on_open(store: Store) -> None:
    vault = Vault(os.urandom(32))
    feed = FeedStore(store, vault)
    _shown, secret = new_secret()
    with pytest.raises(VaultError):
        Subscriptions(feed).add_subscriber("http://127.0.0.1:9/hook", "public", secret)
    subscriptions = Subscriptions(feed, vault)
    first = subscriptions.add_subscriber("http://127.0.0.1:9/hook", "public", secret)
    _shown, older = new_secret()
    with store.engine.begin() as connection:  # as a store from before sealing holds one
        connection.execute(
            feed_subscribers.insert().values(
                url="http://127.0.0.1:9/old", scope="all", secret=older, created_at=0.0,
                delivered_seq=0, attempts=0, next_attempt_at=0.0, lease_until=0.0, active=True,
            )
        )  # fmt: skip

    reopened = Subscriptions(FeedStore(Store(store.url), vault), vault)

    with store.engine.connect() as connection:
        stored = [bytes(s) for s in connection.execute(select(feed_subscribers.c.secret)).scalars()]
    assert all(is_sealed_secret(value) for value in stored)
    assert not any(secret in value or older in value for value in stored)
    by_id = {s.id: s.secret for s in reopened.subscribers()}
    assert by_id[first] == secret and older in by_id.values()
