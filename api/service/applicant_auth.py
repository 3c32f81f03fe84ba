"""Proof of possession for applicants, no passwords: one-time challenges and short sessions.

The service issues a challenge (32 random bytes) bound to one commitment and an expiry; the
applicant signs `challenge_message(challenge, commitment)` with the key that signed the
commitment, and trades the signature for a session. Both live in memory only, bounded, and
are kept as SHA-256 of their secret: a memory dump shows no challenge or session that works.
Sessions die with the process, which is what a session of minutes may do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ledger import Hash32, SignatureAlgorithm, SigningKey, hex32

CHALLENGE_PREFIX = "commitledger-applicant-challenge:v1"
CHALLENGE_BYTES = 32
CHALLENGE_TTL_S = 300.0  # five minutes to sign and send
SESSION_TTL_S = 900.0  # a quarter of an hour to read and file
MAX_CHALLENGES = 10_000
MAX_SESSIONS = 10_000
SESSIONS_PER_KEY = 5  # an applicant's page, command line and a spare; older ones end
MAX_SCOPE = 200  # commitments one session may see (the applicant's newest)
_CHALLENGE_HEX = re.compile(r"[0-9a-f]{64}")


def challenge_message(challenge_hex: str, commitment: Hash32) -> bytes:
    """The exact bytes an applicant signs: the UTF-8 of
    `commitledger-applicant-challenge:v1:<challenge>:<commitment>`, where <challenge> is the
    challenge's 64 lowercase hex digits (no 0x) and <commitment> the commitment hash as
    0x and 64 lowercase hex digits."""
    return f"{CHALLENGE_PREFIX}:{challenge_hex.lower()}:{hex32(commitment)}".encode()


def is_challenge_hex(text: str) -> bool:
    """Whether `text` has the form of a challenge: 64 lowercase hex digits."""
    return _CHALLENGE_HEX.fullmatch(text) is not None


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


class ChallengeRefusedError(Exception):
    """The challenge is unknown, used already or expired: one answer for all three."""


class TooManyOutstandingError(Exception):
    """The table of challenges or sessions is full of live entries: try again later."""


@dataclass(frozen=True)
class Challenge:
    """A challenge as issued: its hex (given once, to the caller), what it binds, until when."""

    hex: str
    commitment: Hash32
    expires_at: float


@dataclass(frozen=True)
class ApplicantSession:
    """What one session may see: the commitments of one applicant signed by one key."""

    fingerprint: bytes
    algorithm: SignatureAlgorithm
    public_key_der: bytes
    commitments: tuple[Hash32, ...]
    csrf_token: str
    expires_at: float


class ChallengeBook:
    """Outstanding challenges by SHA-256 of their hex; each is used at most once."""

    def __init__(
        self,
        *,
        ttl: float = CHALLENGE_TTL_S,
        limit: int = MAX_CHALLENGES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl = ttl
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[bytes, tuple[Hash32, float]] = {}

    def issue(self, commitment: Hash32) -> Challenge:
        """A fresh challenge for `commitment`; TooManyOutstandingError when the table is full."""
        value = secrets.token_bytes(CHALLENGE_BYTES).hex()
        with self._lock:
            now = self._clock()
            if len(self._open) >= self.limit:
                self._drop_expired(now)
            if len(self._open) >= self.limit:
                raise TooManyOutstandingError("too many challenges are outstanding")
            expires = now + self.ttl
            self._open[_digest(value)] = (commitment, expires)
        return Challenge(value, commitment, expires)

    def bound(self, challenge_hex: str, commitment: Hash32) -> None:
        """Check, spending nothing, that the challenge is live and binds `commitment`;
        ChallengeRefusedError otherwise (an expired one is dropped)."""
        with self._lock:
            self._live(challenge_hex, commitment)

    def spend(self, challenge_hex: str, commitment: Hash32) -> None:
        """Use the challenge up: it binds `commitment` and is live, or ChallengeRefusedError.
        Of two racing spends one wins; the other is refused."""
        with self._lock:
            self._live(challenge_hex, commitment)
            del self._open[_digest(challenge_hex)]

    def __len__(self) -> int:
        return len(self._open)

    def _live(self, challenge_hex: str, commitment: Hash32) -> None:
        if not is_challenge_hex(challenge_hex):
            raise ChallengeRefusedError("not a challenge this service issued")
        key = _digest(challenge_hex)
        found = self._open.get(key)
        if found is None:
            raise ChallengeRefusedError("the challenge is unknown, used already or expired")
        bound_to, expires = found
        if self._clock() >= expires:
            del self._open[key]
            raise ChallengeRefusedError("the challenge is unknown, used already or expired")
        if not hmac.compare_digest(bound_to, commitment):
            raise ChallengeRefusedError("the challenge was issued for another commitment")

    def _drop_expired(self, now: float) -> None:
        for key in [k for k, (_, expires) in self._open.items() if expires <= now]:
            del self._open[key]


class SessionBook:
    """Live applicant sessions by SHA-256 of their token (the cookie's or the bearer's)."""

    def __init__(
        self,
        *,
        ttl: float = SESSION_TTL_S,
        limit: int = MAX_SESSIONS,
        per_key: int = SESSIONS_PER_KEY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl = ttl
        self.limit = limit
        self.per_key = per_key
        self._clock = clock
        self._lock = threading.Lock()
        self._live: dict[bytes, ApplicantSession] = {}

    def open(
        self,
        fingerprint: bytes,
        algorithm: SignatureAlgorithm,
        public_key_der: bytes,
        commitments: tuple[Hash32, ...],
    ) -> tuple[str, ApplicantSession]:
        """A new session's token (given once) and the session; the key's oldest session
        ends when it has `per_key` already. TooManyOutstandingError when the table is full."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            self._drop_expired(now)
            same_key = sorted(
                (s.expires_at, k)
                for k, s in self._live.items()
                if s.public_key_der == public_key_der and s.fingerprint == fingerprint
            )
            for _, key in same_key[: max(0, len(same_key) - self.per_key + 1)]:
                del self._live[key]
            if len(self._live) >= self.limit:
                raise TooManyOutstandingError("too many applicant sessions are open")
            session = ApplicantSession(
                fingerprint=fingerprint,
                algorithm=algorithm,
                public_key_der=public_key_der,
                commitments=commitments[:MAX_SCOPE],
                csrf_token=secrets.token_urlsafe(32),
                expires_at=now + self.ttl,
            )
            self._live[_digest(token)] = session
        return token, session

    def get(self, token: str) -> ApplicantSession | None:
        """The live session of `token`, or None (unknown, ended or expired)."""
        if not token or len(token) > 128 or not token.isascii():
            return None
        with self._lock:
            key = _digest(token)
            session = self._live.get(key)
            if session is None:
                return None
            if self._clock() >= session.expires_at:
                del self._live[key]
                return None
            return session

    def close(self, token: str) -> bool:
        """End the session of `token`; whether there was one."""
        if not token or len(token) > 128 or not token.isascii():
            return False
        with self._lock:
            return self._live.pop(_digest(token), None) is not None

    def __len__(self) -> int:
        return len(self._live)

    def _drop_expired(self, now: float) -> None:
        for key in [k for k, s in self._live.items() if s.expires_at <= now]:
            del self._live[key]


def csrf_matches(session: ApplicantSession, sent: str | None) -> bool:
    """Whether a form carried the session's CSRF token (compared in constant time)."""
    return sent is not None and hmac.compare_digest(session.csrf_token.encode(), sent.encode())


@dataclass
class ApplicantAuth:
    """The service's challenges and applicant sessions (one of each per app)."""

    challenges: ChallengeBook
    sessions: SessionBook

    @classmethod
    def create(cls, clock: Callable[[], float] = time.time) -> ApplicantAuth:
        """Empty books on `clock` (UNIX seconds)."""
        return cls(ChallengeBook(clock=clock), SessionBook(clock=clock))


def sign_challenge(key: SigningKey, challenge_hex: str, commitment: Hash32) -> str:
    """The applicant's side: base64 of `key`'s signature over the challenge's message."""
    if not is_challenge_hex(challenge_hex.lower()):
        raise ValueError("a challenge is 64 hex digits")
    return base64.b64encode(key.sign(challenge_message(challenge_hex, commitment))).decode()
