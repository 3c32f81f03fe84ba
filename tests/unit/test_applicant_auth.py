"""Applicants' challenges and sessions in memory: single use, expiry, binding, bounds, and
the exact bytes an applicant signs."""

from __future__ import annotations

import base64
import os

import pytest

from api.service.applicant_auth import (
    ApplicantSession,
    ChallengeBook,
    ChallengeRefusedError,
    SessionBook,
    TooManyOutstandingError,
    challenge_message,
    csrf_matches,
    sign_challenge,
)
from ledger import Hash32, SigningKey, verify_bytes


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def digest() -> Hash32:
    return Hash32(os.urandom(32))


def test_the_signed_bytes_are_the_documented_text() -> None:
    commitment = Hash32(bytes(range(32)))
    message = challenge_message("ab" * 32, commitment)
    expected = "commitledger-applicant-challenge:v1:" + "ab" * 32 + ":0x" + bytes(range(32)).hex()
    assert message == expected.encode("utf-8")


@pytest.mark.parametrize("algorithm", ["ed25519", "ecdsa-p256"])
def test_sign_challenge_verifies_with_the_keys_public_half(algorithm: str) -> None:
    key = SigningKey.generate(algorithm)  # type: ignore[arg-type]
    commitment = digest()
    signature = sign_challenge(key, "cd" * 32, commitment)
    message = challenge_message("cd" * 32, commitment)
    assert verify_bytes(key.algorithm, key.public_key_b64(), signature, message)
    other = challenge_message("ce" * 32, commitment)
    assert not verify_bytes(key.algorithm, key.public_key_b64(), signature, other)
    base64.b64decode(signature, validate=True)


def test_a_challenge_is_spent_once() -> None:
    book = ChallengeBook(clock=Clock())
    commitment = digest()
    challenge = book.issue(commitment)
    assert len(challenge.hex) == 64
    book.bound(challenge.hex, commitment)  # checking spends nothing
    book.spend(challenge.hex, commitment)
    with pytest.raises(ChallengeRefusedError):
        book.spend(challenge.hex, commitment)
    with pytest.raises(ChallengeRefusedError):
        book.bound(challenge.hex, commitment)


def test_a_challenge_expires() -> None:
    clock = Clock()
    book = ChallengeBook(ttl=300, clock=clock)
    commitment = digest()
    challenge = book.issue(commitment)
    clock.now += 299
    book.bound(challenge.hex, commitment)
    clock.now += 1
    with pytest.raises(ChallengeRefusedError):
        book.spend(challenge.hex, commitment)
    assert len(book) == 0  # the expired one was dropped


def test_a_challenge_binds_its_commitment() -> None:
    book = ChallengeBook(clock=Clock())
    commitment = digest()
    challenge = book.issue(commitment)
    with pytest.raises(ChallengeRefusedError):
        book.spend(challenge.hex, digest())
    book.spend(challenge.hex, commitment)  # the refusal changed nothing


def test_unknown_and_malformed_challenges_are_refused() -> None:
    book = ChallengeBook(clock=Clock())
    commitment = digest()
    book.issue(commitment)
    for text in ("00" * 32, "zz" * 32, "AB" * 32, "", "ab" * 33):
        with pytest.raises(ChallengeRefusedError):
            book.spend(text, commitment)


def test_the_challenge_table_is_bounded_and_makes_room_from_expired_ones() -> None:
    clock = Clock()
    book = ChallengeBook(ttl=10, limit=3, clock=clock)
    for _ in range(3):
        book.issue(digest())
    with pytest.raises(TooManyOutstandingError):
        book.issue(digest())
    clock.now += 10
    book.issue(digest())
    assert len(book) == 1


def test_challenges_are_kept_hashed() -> None:
    book = ChallengeBook(clock=Clock())
    challenge = book.issue(digest())
    assert bytes.fromhex(challenge.hex) not in repr(vars(book)).encode()
    assert challenge.hex not in repr(vars(book))


def _open(book: SessionBook, key: bytes = b"key") -> tuple[str, ApplicantSession]:
    return book.open(b"f" * 32, "ed25519", key, (digest(),))


def test_a_session_expires_and_can_be_closed() -> None:
    clock = Clock()
    book = SessionBook(ttl=900, clock=clock)
    token, session = _open(book)
    assert book.get(token) == session
    clock.now += 900
    assert book.get(token) is None
    token, _ = _open(book)
    assert book.close(token)
    assert book.get(token) is None
    assert not book.close(token)


def test_a_key_keeps_its_newest_sessions_only() -> None:
    clock = Clock()
    book = SessionBook(per_key=2, clock=clock)
    tokens = []
    for _ in range(3):
        clock.now += 1
        tokens.append(_open(book)[0])
    assert book.get(tokens[0]) is None
    assert book.get(tokens[1]) is not None and book.get(tokens[2]) is not None
    other, _ = _open(book, key=b"another key")
    assert book.get(other) is not None and book.get(tokens[2]) is not None


def test_the_session_table_is_bounded() -> None:
    book = SessionBook(limit=2, clock=Clock())
    _open(book, b"a")
    _open(book, b"b")
    with pytest.raises(TooManyOutstandingError):
        _open(book, b"c")


def test_odd_tokens_find_nothing() -> None:
    book = SessionBook(clock=Clock())
    _open(book)
    for token in ("", "x" * 500, "ключ"):
        assert book.get(token) is None
        assert not book.close(token)


def test_csrf_must_be_the_sessions() -> None:
    book = SessionBook(clock=Clock())
    _, session = _open(book)
    _, other = _open(book, b"other")
    assert csrf_matches(session, session.csrf_token)
    assert not csrf_matches(session, other.csrf_token)
    assert not csrf_matches(session, None)
    assert not csrf_matches(session, "")
