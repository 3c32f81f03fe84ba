"""The government-sharing scope: a credit platform opens the full identity of each record it is
delivered (webhook, pull, export) with its private key; public, restricted and all readers get
none; a ciphertext moved to another record or opened with another key fails; a malformed
platform key stores nothing."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import func, select, text
from support.cli import one_json
from support.feed_world import HRSS, FeedWorld, feed_world
from support.service_keys import write_master_key
from typer.testing import CliRunner

from api.cli import app as cli_app
from api.demo import running
from api.output import EXIT_CODES
from api.service import ServiceContext, Settings, create_app
from ledger import MASTER_KEY_ENV, Chain, Hash32, SignedCommitment, Store, Vault, hex32
from verifier import FeedError
from verifier.feed import (
    GOVERNMENT_SCOPE,
    SEALED_IDENTITY,
    SIGNATURE_HEADER,
    FeedRecord,
    FeedStore,
    SealedIdentityError,
    SharedIdentity,
    Subscriptions,
    feed_subscribers,
    key_id,
    new_platform_key,
    new_secret,
    open_identity,
    open_record_identity,
    parse_platform_key,
    private_key_pem,
    seal_identity,
    shared_page,
    verify_body,
    verify_record,
    without_sealed_identity,
)

PERSON = SharedIdentity("高明远", "resident_id", "110101199003077732", "自然人")
RECORD = "FR-" + "ab" * 12
COMMITMENT = "0x" + "cd" * 32


def raw_b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# ---------------------------------------------------------------------- the scheme


def test_the_platform_opens_what_was_sealed_to_its_key() -> None:
    private, public = new_platform_key()
    sealed = seal_identity(public, PERSON, record_id=RECORD, commitment_hash=COMMITMENT)
    assert set(sealed) == {"alg", "kid", "epk", "nonce", "ciphertext"}
    assert sealed["alg"] == "X25519-HKDF-SHA256-A256GCM" and sealed["kid"] == key_id(public)
    assert PERSON.name not in json.dumps(sealed, ensure_ascii=False)
    opened = open_identity(private, sealed, record_id=RECORD, commitment_hash=COMMITMENT)
    assert opened == PERSON


def test_the_scheme_as_the_readme_writes_it_opens_a_sealed_identity() -> None:
    """An independent decryption from the documented steps, with the primitives alone."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    private, public = new_platform_key()
    sealed = seal_identity(public, PERSON, record_id=RECORD, commitment_hash=COMMITMENT)
    epk = base64.b64decode(sealed["epk"])
    shared = private.exchange(X25519PublicKey.from_public_bytes(epk))
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=epk + public,
        info=b"commitledger/feed/sealed-identity/v1",
    ).derive(shared)
    aad = (
        f'{{"alg":"X25519-HKDF-SHA256-A256GCM","commitment_hash":"{COMMITMENT}",'
        f'"kid":"{sealed["kid"]}","record_id":"{RECORD}"}}'
    ).encode()
    plain = AESGCM(key).decrypt(
        base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ciphertext"]), aad
    )
    assert json.loads(plain) == {
        "category": "自然人",
        "id_number": "110101199003077732",
        "id_type": "resident_id",
        "name": "高明远",
    }


def test_a_ciphertext_moved_to_another_record_does_not_open() -> None:
    private, public = new_platform_key()
    sealed = seal_identity(public, PERSON, record_id=RECORD, commitment_hash=COMMITMENT)
    with pytest.raises(SealedIdentityError, match="does not open"):
        open_identity(private, sealed, record_id="FR-" + "00" * 12, commitment_hash=COMMITMENT)
    with pytest.raises(SealedIdentityError, match="does not open"):
        open_identity(private, sealed, record_id=RECORD, commitment_hash="0x" + "ee" * 32)


def test_another_key_or_an_altered_ciphertext_does_not_open() -> None:
    _private, public = new_platform_key()
    other, _ = new_platform_key()
    sealed = seal_identity(public, PERSON, record_id=RECORD, commitment_hash=COMMITMENT)
    with pytest.raises(SealedIdentityError, match="not to this key"):
        open_identity(other, sealed, record_id=RECORD, commitment_hash=COMMITMENT)
    # The key id is only a label: a forged one does not make another key open it.
    forged = {**sealed, "kid": key_id(other.public_key().public_bytes_raw())}
    with pytest.raises(SealedIdentityError, match="does not open"):
        open_identity(other, forged, record_id=RECORD, commitment_hash=COMMITMENT)
    ciphertext = bytearray(base64.b64decode(sealed["ciphertext"]))
    ciphertext[0] ^= 1
    altered = {**sealed, "ciphertext": raw_b64(bytes(ciphertext))}
    with pytest.raises(SealedIdentityError, match="does not open"):
        open_identity(_private, altered, record_id=RECORD, commitment_hash=COMMITMENT)


def test_a_platform_key_is_taken_as_base64_raw_or_pem() -> None:
    private = X25519PrivateKey.generate()
    raw = private.public_key().public_bytes_raw()
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert parse_platform_key(raw_b64(raw)) == raw
    assert parse_platform_key(pem.decode()) == raw
    assert parse_platform_key(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw


ED25519_PEM = (
    Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
MALFORMED_KEYS = [
    "",
    "not a key at all!",
    raw_b64(b"\x01" * 31),  # short
    raw_b64(b"\x01" * 33),  # long
    raw_b64(bytes(32)),  # the point of order one: every shared secret zero
    ED25519_PEM,  # a signing key, not X25519
    "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n",
    "A" * 5000,  # unbounded input
]


@pytest.mark.parametrize("text", MALFORMED_KEYS)
def test_a_malformed_platform_key_is_refused_clearly(text: str) -> None:
    with pytest.raises(SealedIdentityError, match=r"platform key|PEM|order"):
        parse_platform_key(text)


# ---------------------------------------------------------------------- per subscriber


@pytest.fixture
def fw(tmp_path: Path, embedded_chain: Chain) -> Iterator[FeedWorld]:
    with feed_world(embedded_chain, tmp_path) as opened:
        opened.follower().step()
        yield opened


def count_subscribers(fw: FeedWorld) -> tuple[int, int]:
    with fw.world.store.engine.connect() as connection:
        subscribers = connection.execute(select(func.count()).select_from(feed_subscribers))
        count = int(subscribers.scalar_one())
        keys = connection.execute(text("SELECT count(*) FROM feed_platform_keys"))
        return count, int(keys.scalar_one())


REFUSED = [
    *((GOVERNMENT_SCOPE, text) for text in MALFORMED_KEYS),
    (GOVERNMENT_SCOPE, None),  # the scope needs the platform's key
    ("public", raw_b64(new_platform_key()[1])),  # and only the scope takes one
]


def test_a_subscriber_with_a_malformed_or_misplaced_key_is_refused_storing_nothing(
    fw: FeedWorld,
) -> None:
    subscriptions = fw.follower().subscriptions
    for scope, key in REFUSED:
        with pytest.raises(FeedError):
            subscriptions.add_subscriber(
                "http://127.0.0.1:9/hook", scope, new_secret()[1], platform_key=key
            )
    assert subscriptions.subscribers() == []
    assert count_subscribers(fw) == (0, 0)


def deliveries(fw: FeedWorld, scope: str, platform_key: str | None = None) -> list[str]:
    """The bodies a subscriber of `scope` is sent, in order, through a transport in memory."""
    bodies: list[str] = []
    _shown, secret = new_secret()

    def take(request: httpx.Request) -> httpx.Response:
        # The webhook signature covers the body as sent, sealed identity included.
        assert verify_body(secret, request.headers[SIGNATURE_HEADER], request.content)
        bodies.append(request.content.decode("utf-8"))
        return httpx.Response(200)

    follower = fw.follower(client=httpx.Client(transport=httpx.MockTransport(take)))
    follower.subscriptions.add_subscriber(
        "http://platform.test/hook", scope, secret, platform_key=platform_key
    )
    while follower.deliver():
        pass
    return bodies


def committed_identity(fw: FeedWorld, commitment_hash: str) -> dict[str, Any]:
    """The applicant of the document the store holds, checked to be the committed one."""
    found = fw.world.store.sealed(Hash32(bytes.fromhex(commitment_hash[2:])))
    assert found is not None and found[1] is not None
    digest = bytes.fromhex(commitment_hash[2:])
    plain = fw.world.vault.open(found[0], found[1], associated=digest)
    signed = SignedCommitment.from_json_obj(json.loads(plain))
    assert hex32(signed.hash()) == commitment_hash
    return signed.document.applicant.model_dump()


def test_a_credit_platform_decrypts_the_full_identity_of_each_government_record(
    fw: FeedWorld,
) -> None:
    private, public = new_platform_key()
    bodies = deliveries(fw, GOVERNMENT_SCOPE, raw_b64(public))
    assert len(bodies) == 7  # every record, as the 'all' scope
    for body in bodies:
        record = json.loads(body)
        # The department's signature still covers the record; the identity sits beside it.
        verify_record(
            FeedRecord.from_json_obj(without_sealed_identity(record)), fw.public_key(HRSS)
        )
        identity = open_record_identity(private, record)
        assert identity is not None
        applicant = committed_identity(fw, record["evidence"]["commitment_hash"])
        assert identity.name == applicant["name"]
        assert identity.id_number == applicant["id_number"]
        assert identity.id_type == applicant["id_type"]
        assert identity.category == "自然人"
        assert identity.name not in body and identity.id_number not in body  # sealed only


@pytest.mark.parametrize("scope", ["public", "restricted", "all"])
def test_other_scopes_carry_no_identity_clear_or_sealed(fw: FeedWorld, scope: str) -> None:
    bodies = deliveries(fw, scope)
    assert bodies
    for body in bodies:
        record = json.loads(body)
        assert SEALED_IDENTITY not in record
        applicant = committed_identity(fw, record["evidence"]["commitment_hash"])
        assert applicant["name"] not in body and applicant["id_number"] not in body
        assert record["committer_name"] != applicant["name"]  # masked


def test_a_sealed_identity_moved_onto_another_delivered_record_does_not_open(
    fw: FeedWorld,
) -> None:
    private, public = new_platform_key()
    first, second = (json.loads(b) for b in deliveries(fw, GOVERNMENT_SCOPE, raw_b64(public))[:2])
    second[SEALED_IDENTITY] = first[SEALED_IDENTITY]
    with pytest.raises(SealedIdentityError, match="does not open"):
        open_record_identity(private, second)
    other, _ = new_platform_key()
    with pytest.raises(SealedIdentityError):
        open_record_identity(other, first)


def test_an_erased_commitment_gives_no_sealed_identity(fw: FeedWorld) -> None:
    assert fw.world.store.erase(fw.hashes["kept"])
    _private, public = new_platform_key()
    kept = "0x" + fw.hashes["kept"].hex()
    bodies = [json.loads(b) for b in deliveries(fw, GOVERNMENT_SCOPE, raw_b64(public))]
    assert [SEALED_IDENTITY in r for r in bodies if r["evidence"]["commitment_hash"] == kept] == [
        False
    ]
    assert any(SEALED_IDENTITY in r for r in bodies)


def test_the_platform_key_is_kept_with_its_subscriber(fw: FeedWorld) -> None:
    private = X25519PrivateKey.generate()
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    subscriptions = Subscriptions(fw.follower().feed, fw.world.vault)
    first = subscriptions.add_subscriber(
        "http://platform.test/hook", GOVERNMENT_SCOPE, new_secret()[1], platform_key=pem
    )
    second = subscriptions.add_subscriber("http://other.test/hook", "all", new_secret()[1])
    assert subscriptions.platform_key(first) == private.public_key().public_bytes_raw()
    assert subscriptions.platform_key(second) is None
    assert private_key_pem(private).startswith(b"-----BEGIN PRIVATE KEY-----")


# ---------------------------------------------------------------------- the command line

RUNNER = CliRunner()


def cli(*args: object, code: int = 0) -> Any:
    result = RUNNER.invoke(
        cli_app, [str(a) for a in args], env={MASTER_KEY_ENV: None, "COMMITLEDGER_STORE": None}
    )
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout if code == 0 else result.stderr


def test_a_platform_subscribes_by_its_key_and_opens_the_shared_export(
    fw: FeedWorld, tmp_path: Path
) -> None:
    url = f"sqlite:///{fw.world.db_path}"
    master = tmp_path / "master.key"
    write_master_key(master, fw.world.vault)
    private = tmp_path / "platform.pem"
    made = one_json(cli("feed", "platform-key", "new", "--out", private, "--json"))
    assert private.stat().st_mode & 0o777 == 0o600
    subscribed = one_json(cli("feed", "subscribe", "http://platform.test/hook", "--scope",
                              GOVERNMENT_SCOPE, "--platform-key", made["public_key"],
                              "--store", url, "--master-key-file", master, "--json"))  # fmt: skip
    [status] = one_json(cli("feed", "status", "--store", url, "--json"))["subscribers"]
    assert status["scope"] == GOVERNMENT_SCOPE and status["records_behind"] == 7
    out = tmp_path / "shared.jsonl"
    cli("feed", "export-shared", "--subscriber", subscribed["subscriber"], "--since",
        "2000-01-01", "--store", url, "--master-key-file", master, "--out", out)  # fmt: skip
    assert out.stat().st_mode & 0o777 == 0o600
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 7 and all(SEALED_IDENTITY in r for r in records)
    opened = one_json(cli("feed", "open-identity", out, "--private-key", private, "--json"))
    for record, item in zip(records, opened["records"], strict=True):
        applicant = committed_identity(fw, record["evidence"]["commitment_hash"])
        assert item["id"] == record["id"]
        assert item["identity"]["name"] == applicant["name"]
        assert item["identity"]["id_number"] == applicant["id_number"]
    other = tmp_path / "other.pem"
    cli("feed", "platform-key", "new", "--out", other)
    cli("feed", "open-identity", out, "--private-key", other, code=EXIT_CODES[FeedError])


def test_subscribing_with_a_malformed_platform_key_stores_nothing(
    fw: FeedWorld, tmp_path: Path
) -> None:
    url = f"sqlite:///{fw.world.db_path}"
    master = tmp_path / "master.key"
    write_master_key(master, fw.world.vault)
    for key in ("AAAA", raw_b64(bytes(32)), ED25519_PEM):
        output = cli("feed", "subscribe", "http://platform.test/hook", "--scope",
                     GOVERNMENT_SCOPE, "--platform-key", key, "--store", url,
                     "--master-key-file", master, code=EXIT_CODES[FeedError])  # fmt: skip
        assert "platform key" in output or "PEM" in output or "order" in output
    cli("feed", "subscribe", "http://platform.test/hook", "--scope", GOVERNMENT_SCOPE,
        "--store", url, "--master-key-file", master, code=EXIT_CODES[FeedError])  # fmt: skip
    assert count_subscribers(fw) == (0, 0)


def test_feed_export_points_the_government_scope_to_the_shared_export(fw: FeedWorld) -> None:
    url = f"sqlite:///{fw.world.db_path}"
    output = cli("feed", "export", "--since", "2000-01-01", "--scope", GOVERNMENT_SCOPE,
                 "--store", url, code=EXIT_CODES[FeedError])  # fmt: skip
    assert "export-shared" in output


# ---------------------------------------------------------------------- pulled over HTTP


@contextmanager
def service(fw: FeedWorld) -> Iterator[tuple[str, ServiceContext]]:
    """The HTTP service over the world's store, with the master key, on loopback."""
    settings = Settings(
        data_dir=fw.world.tmp_path / "service",
        store_url=f"sqlite:///{fw.world.db_path}",
        deployment_file=fw.world.tmp_path / "no-deployment.json",
        rate_limit_burst=10_000,
        rate_limit_per_second=1_000.0,
    )
    context = ServiceContext.open(settings, vault=fw.world.vault)
    with running(create_app(settings, context=context)) as url:
        yield url, context


def test_a_government_token_pulls_identities_sealed_to_a_registered_platform_key(
    fw: FeedWorld,
) -> None:
    private, public = new_platform_key()
    fw.follower().subscriptions.add_subscriber(
        "http://platform.test/hook", GOVERNMENT_SCOPE, new_secret()[1], platform_key=raw_b64(public)
    )
    with service(fw) as (url, context):
        government = context.tokens.issue("FEED", "feed", scope=GOVERNMENT_SCOPE).token
        everything = context.tokens.issue("FEED", "feed", scope="all").token

        def get(token: str, **params: object) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"}
            return httpx.get(f"{url}/v1/feed", params={"limit": 100, **params}, headers=headers)

        page = get(government, kid=key_id(public))
        without_kid = get(government)
        unknown_kid = get(government, kid=key_id(new_platform_key()[1]))
        bad_kid = get(government, kid="not-a-kid")
        all_page = get(everything, kid=key_id(public))
    assert page.status_code == 200, page.text
    records = page.json()["records"]
    assert len(records) == 7 and page.json()["scope"] == GOVERNMENT_SCOPE
    for record in records:
        identity = open_record_identity(private, record)
        assert identity is not None
        applicant = committed_identity(fw, record["evidence"]["commitment_hash"])
        assert (identity.name, identity.id_number) == (applicant["name"], applicant["id_number"])
        verify_record(
            FeedRecord.from_json_obj(without_sealed_identity(record)), fw.public_key(HRSS)
        )
    for refused in (without_kid, unknown_kid, bad_kid):
        assert refused.status_code == 422, refused.text
    assert all_page.status_code == 200
    assert all(SEALED_IDENTITY not in r for r in all_page.json()["records"])


def test_platform_keys_are_kept_on_each_backend(store: Store) -> None:
    vault = Vault(os.urandom(32))
    feed = FeedStore(store, vault)
    subscriptions = Subscriptions(feed, vault)
    _private, public = new_platform_key()
    with pytest.raises(FeedError):
        subscriptions.add_subscriber(
            "http://platform.test/hook", GOVERNMENT_SCOPE, new_secret()[1], platform_key="AAAA"
        )
    assert subscriptions.subscribers() == []
    first = subscriptions.add_subscriber(
        "http://platform.test/hook", GOVERNMENT_SCOPE, new_secret()[1], platform_key=raw_b64(public)
    )
    reopened = Subscriptions(FeedStore(store, vault), vault)  # the table is there: kept
    assert reopened.platform_key(first) == public
    assert reopened.platform_key_by_kid(key_id(public)) == public
    assert reopened.platform_key_by_kid(key_id(new_platform_key()[1])) is None
    with pytest.raises(FeedError, match="no government subscriber"):
        shared_page(feed, [], key_id(new_platform_key()[1]))


def test_a_platform_keys_table_another_process_just_made_is_used(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verifier.feed import subscribers as module

    feed = FeedStore(store)
    Subscriptions(feed)  # "the other process": the table is there now
    looks = []
    real_inspect, real_create = module.inspect, module.feed_platform_keys.create

    class MissedIt:  # this process looked just before the other made it
        def __init__(self, connection: Any) -> None:
            self.real = real_inspect(connection)

        def has_table(self, name: str) -> bool:
            looks.append(name)
            return len(looks) > 1 and self.real.has_table(name)

    def create(bind: Any, checkfirst: bool = True) -> None:
        real_create(bind, checkfirst=False)  # as if its own check had raced too

    monkeypatch.setattr(module, "inspect", MissedIt)
    monkeypatch.setattr(module.feed_platform_keys, "create", create)
    subscriptions = Subscriptions(feed)
    assert looks == ["feed_platform_keys", "feed_platform_keys"]
    assert subscriptions.platform_key(1) is None
