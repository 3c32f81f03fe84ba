"""Signed department data: the sample department signs each answer with its own key, the
HTTP source checks it, and a verification run reports the signature beside the data hash
and logs every lookup (issue 16, "department data leaves no trace")."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import select
from support.deployment import Deployment
from support.service_world import ServiceWorld, open_service
from support.verifier_world import DAY, HRSS, POINTS, TOKEN, World, open_world
from typer.testing import CliRunner

from api.cli import app
from api.demo import Faults, Signer, create_app, planted, published_key, records, running
from api.service import Settings, sign_challenge
from api.service.applicant_models import ApplicantView
from api.service.applicant_page import render_view_page
from api.service.engines import _sources as engine_sources
from ledger import (
    Chain,
    SigningKey,
    Store,
    canonical_bytes,
    hex32,
    keccak256,
    make_resident_id,
)
from verifier import (
    Answer,
    HttpSource,
    SourceError,
    SourceGarbage,
    SourceKey,
    Subject,
    answer_bytes,
    subject_digest,
)
from verifier.records import AccessLog, accesses_of
from verifier.records.accesses import data_accesses

INSURANCE = "hrss_social_insurance"
INSURANCE_FIELDS = ("social_insurance_months", "insured_in_beijing")


def subject_planted(kind: str) -> Subject:
    """The first sample resident whose planted outcome is `kind`."""
    for sequence in range(100_000):
        birth = date(1990, 3, 7) + timedelta(days=sequence // 1000)
        number = make_resident_id("110105", birth, sequence % 1000)
        if planted(number) == kind:
            return Subject("resident_id", number)
    raise AssertionError(f"no sample subject planted {kind!r}")


AGREE = subject_planted("agree")
MISSING = subject_planted("missing")


@pytest.fixture(scope="module")
def signed_service() -> Iterator[tuple[str, Faults, Signer]]:
    faults, signer = Faults(), Signer()
    with running(create_app(TOKEN, faults, signer)) as url:
        yield url, faults, signer


def answers(
    url: str, subjects: Sequence[Subject], key: SourceKey | None, source: str = INSURANCE
) -> list[Answer | SourceError]:
    async def go() -> list[Answer | SourceError]:
        http = HttpSource(source, url, TOKEN, key=key, retries=0)
        try:
            return await http.answers(subjects, INSURANCE_FIELDS)
        finally:
            await http.aclose()

    return asyncio.run(go())


# --- the source ----------------------------------------------------------------------------


def test_the_service_publishes_its_key_under_its_id(
    signed_service: tuple[str, Faults, Signer],
) -> None:
    url, _, signer = signed_service
    key = published_key(url)
    assert key == signer.public
    assert key.key_id == hashlib.sha256(key.public_key).hexdigest()[:16]


def test_a_signed_answer_verifies_and_keeps_its_signature_and_key_id(
    signed_service: tuple[str, Faults, Signer],
) -> None:
    url, faults, signer = signed_service
    faults.reset()
    found, none = answers(url, [AGREE, MISSING], published_key(url))
    assert isinstance(found, Answer) and isinstance(none, Answer)
    assert none.record is None  # "no record" is signed too: it decides claims as well
    for subject, answer in ((AGREE, found), (MISSING, none)):
        assert answer.key_id == signer.key_id and answer.answered_at is not None
        assert answer.signature is not None
        data = answer_bytes(INSURANCE, subject, answer.record, answer.answered_at)
        assert signer.public.verifies(answer.signature, data)
        # The signed bytes name the subject by its digest, never by its ID number.
        assert subject.id_number.encode() not in data
        assert subject_digest(subject).encode() in data


def test_a_tampered_answer_is_refused(signed_service: tuple[str, Faults, Signer]) -> None:
    url, faults, _ = signed_service
    faults.reset()
    faults.tamper(INSURANCE)
    try:
        [refused] = answers(url, [AGREE], published_key(url))
    finally:
        faults.reset()
    assert isinstance(refused, SourceGarbage)
    assert "does not verify" in str(refused) and AGREE.id_number not in str(refused)


def test_an_answer_signed_by_another_key_is_refused(
    signed_service: tuple[str, Faults, Signer],
) -> None:
    url, faults, _ = signed_service
    faults.reset()
    [refused] = answers(url, [AGREE], Signer().public)
    assert isinstance(refused, SourceGarbage) and "not the configured" in str(refused)


def test_without_a_key_answers_carry_no_signature(
    signed_service: tuple[str, Faults, Signer],
) -> None:
    url, faults, _ = signed_service
    faults.reset()
    [answer] = answers(url, [AGREE], None)
    assert isinstance(answer, Answer) and answer.signature is None and answer.key_id is None


def test_an_unsigned_answer_is_refused_when_the_source_has_a_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": [{"found": True, "fields": {}}]})

    async def go() -> list[Answer | SourceError]:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        http = HttpSource(INSURANCE, "http://dept", TOKEN, client=client, key=Signer().public)
        try:
            return await http.answers([AGREE], INSURANCE_FIELDS)
        finally:
            await client.aclose()

    [refused] = asyncio.run(go())
    assert isinstance(refused, SourceGarbage) and "not signed" in str(refused)


def test_a_source_key_reads_as_pem_or_raw_base64(tmp_path: Path) -> None:
    signer = Signer()
    raw = base64.b64encode(signer.public.public_key).decode()
    assert SourceKey.from_text(raw) == signer.public
    pem = tmp_path / "department.pub"
    key = SigningKey.generate("ed25519")
    pem.write_text(
        "-----BEGIN PUBLIC KEY-----\n" + key.public_key_b64() + "\n-----END PUBLIC KEY-----\n"
    )
    assert SourceKey.from_file(pem).key_id == SourceKey.from_text(pem.read_text()).key_id
    pem.write_text("not a key")
    with pytest.raises(ValueError, match=r"department\.pub"):
        SourceKey.from_file(pem)


# --- a verification run --------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path, embedded_chain: Chain) -> Iterator[World]:
    with open_world(embedded_chain, tmp_path) as opened:
        yield opened


def signed_engine(world: World) -> None:
    """The world's engine, its sources checking the sample department's published key."""
    key = published_key(world.url)
    sources = world.sources()
    for source in sources.values():
        source.key = key
    world.engine = world.new_engine(sources=sources)


def comparisons(world: World, commitment: bytes) -> list[dict[str, object]]:
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.report is not None
    found: list[dict[str, object]] = verification.report["report"]["comparisons"]
    return found


def test_a_run_reports_each_answers_signature_beside_its_data_hash(world: World) -> None:
    signed_engine(world)
    commitment, document = world.commit_kind("agree")
    world.engine.run(DAY)
    subject = Subject(document.applicant.id_type, document.applicant.id_number)
    key = published_key(world.url)
    compared = comparisons(world, commitment)
    assert compared
    matter = world.catalog.matter(POINTS)
    for comparison in compared:
        assert comparison["data_key_id"] == key.key_id
        source = str(comparison["source"])
        fields = sorted({s.source_field for s in matter.claims if s.source == source})
        full = records(subject, source)
        record = None if full is None else {f: full[f] for f in fields if f in full}
        # The department's signature covers exactly the record whose hash the report holds.
        assert comparison["data_hash"] == hex32(keccak256(canonical_bytes(record)))
        answered_at = comparison["answered_at"]
        assert isinstance(answered_at, int)
        data = answer_bytes(source, subject, record, answered_at)
        assert key.verifies(str(comparison["data_signature"]), data)


def test_a_tampered_answer_makes_the_claim_undecidable_never_a_breach(world: World) -> None:
    signed_engine(world)
    commitment, _ = world.commit_kind("mismatch")  # its true record would be a mismatch
    world.faults.tamper(INSURANCE)
    summary = world.engine.run(DAY)
    assert summary.outcomes["needs_manual"] == 1 and not summary.breaches
    assert summary.outcomes["mismatch"] == 0 and summary.outcomes["false"] == 0
    tampered = [c for c in comparisons(world, commitment) if c["source"] == INSURANCE]
    assert tampered and all(c["verdict"] == "undecidable" for c in tampered)
    assert all("data_signature" not in c and c["data_hash"] is None for c in tampered)


def test_every_lookup_of_a_run_is_logged_without_the_id_number(world: World) -> None:
    made = [world.commit_kind(kind) for kind in ("agree", "mismatch", "missing")]
    world.engine.run(DAY)
    matter = world.catalog.matter(POINTS)
    sources = {spec.source for spec in matter.claims}
    logged = accesses_of(world.store, [h for h, _ in made])
    assert sum(len(found) for found in logged.values()) == len(made) * len(sources)
    for commitment, _ in made:
        found = logged[bytes(commitment)]
        assert {a.source for a in found} == sources
        assert {(a.department, a.purpose) for a in found} == {(HRSS, "verification")}
        assert len({a.requested_by for a in found}) == 1
        assert found[0].requested_by.startswith("run:")
    # Nothing in the table names the applicant: the commitment hash stands for them.
    with world.store.engine.connect() as connection:
        table = json.dumps(
            [list(map(str, row)) for row in connection.execute(select(data_accesses))]
        )
    for _, document in made:
        assert document.applicant.id_number not in table
        assert document.applicant.name not in table
    # The department lists the accesses it made, newest first.
    listed = AccessLog(world.store).of_department(HRSS)
    assert len(listed) == len(made) * len(sources)
    assert AccessLog(world.store).of_department("BJ-OTHER") == []


def test_an_access_log_in_a_new_store_is_empty(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert accesses_of(store, [keccak256(b"x")]) == {}
        AccessLog(store)  # made on first use, then still empty
        assert accesses_of(store, [keccak256(b"x")]) == {}
    finally:
        store.close()


# --- the applicant's view ------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


def test_the_applicant_sees_every_lookup_of_their_own_data(service: ServiceWorld) -> None:
    mine, other = service.submit(service.signed()), service.submit(service.signed())
    log = AccessLog(service.store)
    log.lookups([mine, other], HRSS, "run:0123456789abcdef", ["police_criminal", INSURANCE])
    log.lookups([mine], HRSS, "officer-li", [INSURANCE], purpose="manual_check")
    issued = service.client.post("/v1/applicant/challenge", json={"commitment": hex32(mine)})
    challenge = issued.json()["challenge"]
    opened = service.client.post(
        "/v1/applicant/session",
        json={
            "commitment": hex32(mine),
            "challenge": challenge,
            "signature": sign_challenge(service.applicant_key, challenge, mine),
        },
    )
    token = opened.json()["token"]
    view = service.client.get(
        "/v1/applicant/commitments", headers={"Authorization": f"Bearer {token}"}
    ).json()
    [shown] = [c for c in view["commitments"] if c["hash"] == hex32(mine)]
    listed = [(a["source"], a["requested_by"], a["purpose"]) for a in shown["data_accesses"]]
    assert sorted(listed) == [
        (INSURANCE, "officer-li", "manual_check"),
        (INSURANCE, "run:0123456789abcdef", "verification"),
        ("police_criminal", "run:0123456789abcdef", "verification"),
    ]
    assert all(a["department"] == HRSS for a in shown["data_accesses"])
    # The page shows them too.
    html = render_view_page(ApplicantView.model_validate(view), "csrf")
    assert html.count('<tr class="access">') == 3 and "officer-li" in html


# --- configuration and the department's list ----------------------------------------------


def test_a_department_lists_its_lookups_from_the_command_line(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    first, second = keccak256(b"first"), keccak256(b"second")
    try:
        log = AccessLog(store)
        log.lookups([first, second], HRSS, "run:00000000000000aa", [INSURANCE])
        log.lookups([first], "BJ-SAMR", "run:00000000000000bb", ["samr_training"])
    finally:
        store.close()
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    listed = CliRunner().invoke(
        app, ["verify", "accesses", "--department", HRSS, "--store", url, "--json"]
    )
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)["accesses"]
    assert sorted(r["commitment"] for r in rows) == sorted([hex32(first), hex32(second)])
    assert {(r["source"], r["requested_by"]) for r in rows} == {(INSURANCE, "run:00000000000000aa")}
    only = ["--commitment", hex32(second)]
    one = CliRunner().invoke(
        app, ["verify", "accesses", "--department", HRSS, "--store", url, "--json", *only]
    )
    assert [r["commitment"] for r in json.loads(one.stdout)["accesses"]] == [hex32(second)]


def test_the_service_checks_answers_with_the_configured_key(tmp_path: Path) -> None:
    token, key = tmp_path / "token", tmp_path / "department.pub"
    token.write_text("a-token\n")
    key.write_text(base64.b64encode(Signer().public.public_key).decode())
    settings = Settings(
        sources_url="http://127.0.0.1:9", sources_token_file=token, sources_key_file=key
    )
    context = SimpleNamespace(settings=settings)
    sources = engine_sources(context)  # type: ignore[arg-type]
    assert sources and all(
        isinstance(s, HttpSource) and s.key == SourceKey.from_file(key) for s in sources.values()
    )
    with pytest.raises(ValueError, match="sources_key_file needs sources_url"):
        Settings(sources_key_file=key)
