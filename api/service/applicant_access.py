"""The applicant's way in, shared by the JSON routes and the page: a challenge for a
commitment, a session for a signature over it, the session a request carries.

Every refusal is a ProblemError and changes nothing: a wrong signature leaves the
challenge as it was (it may be signed again until it expires), and only a session that was
opened spends it.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from fastapi import Request

from api.service.applicant_auth import (
    ApplicantAuth,
    ApplicantSession,
    Challenge,
    ChallengeRefusedError,
    TooManyOutstandingError,
    challenge_message,
    is_challenge_hex,
)
from api.service.applicant_proof import NotProvenError, prove
from api.service.problems import (
    INVALID_HASH,
    NOT_FOUND,
    RATE_LIMITED,
    UNAVAILABLE,
    ProblemError,
    ProblemType,
)
from ledger import Hash32, Intake, InvalidHashError, hex32, to_hash32

log = logging.getLogger("commitledger.service.applicant")

APPLICANT_UNAUTHORIZED = ProblemType(
    "applicant-unauthorized", "Proof of the commitment's signing key is needed", 401
)
CSRF_REFUSED = ProblemType("csrf-refused", "The form did not come from this session's page", 403)
SESSION_COOKIE = "commitledger_applicant"
_CHALLENGE_HEADERS = {"WWW-Authenticate": 'Bearer realm="commitledger-applicant"'}
_auth_lock = threading.Lock()


def applicant_auth(request: Request) -> ApplicantAuth:
    """The app's challenges and sessions, made on first use (a test may set its own)."""
    state = request.app.state
    with _auth_lock:
        auth: ApplicantAuth | None = getattr(state, "applicant_auth", None)
        if auth is None:
            auth = state.applicant_auth = ApplicantAuth.create()
    return auth


def commitment_of(text: str) -> Hash32:
    """A commitment hash from a form or body; 400 problem when it is not one."""
    try:
        return to_hash32(text.strip())
    except InvalidHashError as exc:
        raise ProblemError(INVALID_HASH, f"{exc}: give 0x and 64 hex digits") from None


def require_intake(intake: Intake | None) -> Intake:
    """The intake (its vault opens documents); 503 problem without a master key."""
    if intake is None:
        raise ProblemError(UNAVAILABLE, "the service holds no master key: it cannot open documents")
    return intake


def issue_challenge(auth: ApplicantAuth, intake: Intake, commitment: Hash32) -> Challenge:
    """A challenge for a commitment the store holds; 404 or 503 problem otherwise."""
    stored = intake.store.get(commitment)
    if stored is None or stored.erased:
        raise ProblemError(NOT_FOUND, f"no commitment {hex32(commitment)} with its data is here")
    try:
        return auth.challenges.issue(commitment)
    except TooManyOutstandingError as exc:
        raise ProblemError(RATE_LIMITED, f"{exc}: try again in a minute") from None


def challenge_text(challenge: Challenge) -> str:
    """The message to sign, as text."""
    return challenge_message(challenge.hex, challenge.commitment).decode()


def sign_command(challenge: Challenge) -> str:
    """The command that signs the challenge with the applicant's key file."""
    return (
        "commitledger applicant sign-challenge --key applicant.pem "
        f"--challenge {challenge.hex} --commitment {hex32(challenge.commitment)}"
    )


def expiry(seconds: float) -> datetime:
    """UNIX seconds as an aware UTC time."""
    return datetime.fromtimestamp(seconds, UTC)


def open_session(
    auth: ApplicantAuth, intake: Intake, commitment: Hash32, challenge_hex: str, signature: str
) -> tuple[str, ApplicantSession]:
    """A session for a signature over a live challenge by the commitment's key: its token
    and scope. 401 problem, nothing changed, for a wrong, used or expired challenge or a
    signature that does not verify."""
    refused = ProblemError(
        APPLICANT_UNAUTHORIZED,
        "the challenge is unknown, used or expired, or the signature was not made by the "
        "key that signed this commitment: ask for a new challenge and sign it",
        headers=_CHALLENGE_HEADERS,
    )
    if not is_challenge_hex(challenge_hex):
        raise refused
    try:
        auth.challenges.bound(challenge_hex, commitment)
        proof = prove(intake, commitment, challenge_hex, signature.strip())
        auth.challenges.spend(challenge_hex, commitment)
    except (ChallengeRefusedError, NotProvenError) as exc:
        log.info("applicant proof refused", extra={"reason": type(exc).__name__})
        raise refused from None
    try:
        return auth.sessions.open(
            proof.fingerprint, proof.algorithm, proof.public_key_der, proof.commitments
        )
    except TooManyOutstandingError as exc:
        raise ProblemError(RATE_LIMITED, f"{exc}: try again in a minute") from None


def session_of(auth: ApplicantAuth, token: str | None) -> ApplicantSession:
    """The live session of a token; 401 problem without one."""
    session = auth.sessions.get(token or "")
    if session is None:
        raise ProblemError(
            APPLICANT_UNAUTHORIZED,
            "no live applicant session: prove your key at POST /v1/applicant/challenge "
            "and POST /v1/applicant/session",
            headers=_CHALLENGE_HEADERS,
        )
    return session


def in_scope(session: ApplicantSession, commitment: Hash32) -> None:
    """404 problem unless the session may see `commitment` (another's is not named)."""
    if commitment not in session.commitments:
        raise ProblemError(NOT_FOUND, f"no commitment {hex32(commitment)} of yours is here")
