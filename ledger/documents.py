"""The commitment document, schema version 1: its fields, their checks, its JSON form and hash.

Over 400 lines: the document schema and every field's bounds (lengths, dates, codes,
salts, invisible characters) sit together, so one read shows what intake accepts.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
)

from ledger.canonical import canonical_bytes_plain, commitment_hash
from ledger.errors import InvalidDocumentError
from ledger.identity import (
    IdType,
    check_date,
    check_province,
    make_resident_id,
    make_uscc,
    resident_id_check_digit,
    uscc_check_char,
    validate_id_number,
)
from ledger.types import Hash32

__all__ = [
    "Applicant",
    "Claim",
    "ClaimOp",
    "Commitment",
    "Signature",
    "SignatureAlgorithm",
    "SignedCommitment",
    "check_salt",
    "make_resident_id",
    "make_uscc",
    "new_salt",
    "resident_id_check_digit",
    "uscc_check_char",
    "validate_id_number",
]

ClaimOp = Literal[">=", "<=", "==", "!=", ">", "<", "in"]
SignatureAlgorithm = Literal["ed25519", "ecdsa-p256"]

_JSON_SAFE_INT = 2**53 - 1

_COMMITMENT_CODE = re.compile(r"[0-9]{20}")
_CLAIM_KEY = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_DEPARTMENT = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*")
_MATTER_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HEX32 = re.compile(r"0x[0-9a-f]{64}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UTC_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
_UTC_SECONDS_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")

# Bounds on what a document may hold: a commitment is a few hundred bytes; without them
# the only limit was the 1 MiB file limit (a 900,000-character name was accepted).
MAX_NAME = 100
MAX_TEXT = 200  # a claim's string value, or one item of its list
MAX_LIST = 50  # items in a claim's list value
MAX_CLAIMS = 50
MAX_ID_NUMBER = 32
MAX_SIGNATURE_FIELD = 256  # base64 of an SPKI public key or a signature: about 100
SHOWN = 40  # characters of a bad value an error quotes
# A signature made a little ahead of this machine's clock is fine; one from the future not.
CLOCK_SKEW = timedelta(minutes=5)
# The code's date is the applicant's day, which begins first at UTC+14.
_EARLIEST_ZONE = timedelta(hours=14)
# Of 32 bytes from a CSPRNG, about 30 are distinct; fewer than 16 is a made-up salt.
MIN_DISTINCT_SALT_BYTES = 16
# Control characters (NUL, ESC, CR, LF), invisible formatting (U+202E right-to-left
# override, U+200B zero-width space), surrogates, private use, line and paragraph separators.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


# --- field checks ------------------------------------------------------------------------


def shown(value: object) -> str:
    """A bad value as an error quotes it: its first SHOWN characters, repr-escaped."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= SHOWN:
        return repr(text)
    return f"{text[:SHOWN]!r}... ({len(text)} characters)"


def _matching(pattern: re.Pattern[str], description: str, longest: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > longest or not pattern.fullmatch(value):
            raise ValueError(f"must be {description}, at most {longest} long; got {shown(value)}")
        return value

    return AfterValidator(check)


def _printable(value: str) -> str:
    # A NUL hid a record from the name search; escapes and CR/LF reached operators'
    # terminals; a right-to-left override or zero-width space makes a name read as another.
    if value.isprintable():
        # str.isprintable, in C: no character is Other or Separator (but the space), so
        # none is of _UNPRINTABLE. The loop decides the rest (an ideographic space, say).
        return value
    for position, char in enumerate(value):
        if unicodedata.category(char) in _UNPRINTABLE:
            raise ValueError(
                f"must not hold control or invisible formatting characters: "
                f"U+{ord(char):04X} at position {position}"
            )
    return value


def _bounded(longest: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > longest:
            raise ValueError(f"must be at most {longest} characters, got {len(value)}")
        return value

    return AfterValidator(check)


def _plain_text(value: str) -> str:
    # Two spellings of one name would give two hashes for one commitment.
    if not value or value != value.strip():
        raise ValueError("must be non-empty without leading or trailing whitespace")
    if unicodedata.normalize("NFC", value) != value:
        raise ValueError("must be in Unicode normalisation form NFC")
    return _printable(value)


def _exact_int_one(value: object) -> object:
    # pydantic accepts True and 1.0 for Literal[1]; JSON 'true' would then hash differently.
    if type(value) is not int:
        raise ValueError("must be the integer 1")
    return value


def _claim_value_type(value: object) -> object:
    # Checked by hand so a wrong type yields one error, not one per union member.
    # First the plain values JSON gives, as the general checks below would take them.
    if type(value) is str:
        _claim_text(value)
        return value
    if type(value) is bool:
        return value
    if type(value) is int and -_JSON_SAFE_INT <= value <= _JSON_SAFE_INT:
        return value
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise ValueError("a list value must hold only strings")
        if len(value) > MAX_LIST:
            raise ValueError(f"a list value may hold at most {MAX_LIST} strings")
        for item in value:
            _claim_text(item)
        return value
    if not isinstance(value, (bool, int, str)):
        raise ValueError("must be an integer, a string, a boolean or a list of strings")
    if isinstance(value, str):
        _claim_text(value)
    if isinstance(value, int) and not -_JSON_SAFE_INT <= value <= _JSON_SAFE_INT:
        raise ValueError("an integer must lie within +/-(2**53 - 1)")
    return value


def _claim_text(value: str) -> None:
    if len(value) > MAX_TEXT:
        raise ValueError(f"a string value must be at most {MAX_TEXT} characters, got {len(value)}")
    _printable(value)


def _utc_whole_seconds(value: object) -> datetime:
    # A string is the serialised form and must already be normal, so hash(file) == hash(doc).
    if isinstance(value, str):
        try:
            if not _UTC_SECONDS_TEXT.fullmatch(value):
                raise ValueError(value)
            # fromisoformat is C and checks the ranges; strptime was a tenth of intake's time
            return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
        except ValueError:
            raise ValueError(
                f"must be UTC to the second, written like 2024-03-01T02:00:00Z, got {shown(value)}"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a time zone")
        return value.astimezone(UTC).replace(microsecond=0)
    raise ValueError("must be an ISO 8601 string like 2024-03-01T02:00:00Z")


PlainText = Annotated[str, _bounded(MAX_NAME), AfterValidator(_plain_text)]
ClaimKey = Annotated[str, _matching(_CLAIM_KEY, "a snake_case identifier", 64)]
ClaimValue = Annotated[int | str | bool | list[str], BeforeValidator(_claim_value_type)]
Hex32Text = Annotated[str, _matching(_HEX32, "0x and 64 lowercase hex digits", 66)]


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


DocumentT = TypeVar("DocumentT", bound=_Document)


# --- the documents -------------------------------------------------------------------------


class Applicant(_Document):
    """Who commits: a person (by resident ID or passport) or an organisation (by USCC)."""

    kind: Literal["person", "organisation"]
    name: PlainText
    id_type: IdType
    id_number: Annotated[str, _bounded(MAX_ID_NUMBER)]

    # Field validators (not a model validator) so an error names the field that is wrong;
    # info.data holds the fields declared above, absent if they failed.
    @field_validator("id_type")
    @classmethod
    def _id_type_fits_kind(cls, id_type: IdType, info: ValidationInfo) -> IdType:
        kind = info.data.get("kind")
        if kind is not None and (kind == "organisation") != (id_type == "uscc"):
            raise ValueError(
                f"{id_type!r} does not fit kind {kind!r}: "
                "organisations use 'uscc', persons an ID card or passport"
            )
        return id_type

    @field_validator("id_number")
    @classmethod
    def _id_number_well_formed(cls, id_number: str, info: ValidationInfo) -> str:
        id_type = info.data.get("id_type")
        if id_type is not None:
            try:
                validate_id_number(id_type, id_number)
            except InvalidDocumentError as exc:
                raise ValueError(str(exc)) from None
        return id_number


class Claim(_Document):
    """One checkable statement, e.g. ``social_insurance_consecutive_months >= 84``."""

    key: ClaimKey
    op: ClaimOp
    value: ClaimValue

    @field_validator("value")
    @classmethod
    def _value_fits_op(cls, value: ClaimValue, info: ValidationInfo) -> ClaimValue:
        op = info.data.get("op")
        if op is None or (op in ("==", "!=") and not isinstance(value, list)):
            return value
        if op == "in":
            _check_membership_list(value)
        elif isinstance(value, list):
            raise ValueError(f"a list value needs op 'in', not {op!r}")
        elif not _is_orderable(value):
            raise ValueError(f"op {op!r} compares integers or YYYY-MM-DD dates, got {shown(value)}")
        return value


def _check_membership_list(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise ValueError("op 'in' needs a non-empty list of strings")
    if len(set(value)) != len(value):
        raise ValueError("op 'in' needs a list without repeated strings")


def _is_orderable(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            return False
        return True
    return False


class Commitment(_Document):
    """A signed promise, schema version 1; ``to_json_obj()`` is exactly what is hashed."""

    schema_version: Annotated[Literal[1], BeforeValidator(_exact_int_one)]
    code: str
    matter_code: Annotated[str, _matching(_MATTER_CODE, "letters, digits, '.', '_' or '-'", 64)]
    department: Annotated[str, _matching(_DEPARTMENT, "a department code like BJ-HRSS", 32)]
    applicant: Applicant
    claims: list[Claim]
    channel: Literal["counter", "online"]
    signed_at: Annotated[datetime, BeforeValidator(_utc_whole_seconds)]
    notice_hash: Hex32Text
    salt: Hex32Text

    @field_validator("code")
    @classmethod
    def _national_code(cls, code: str) -> str:
        if not _COMMITMENT_CODE.fullmatch(code):
            raise ValueError("must be 20 digits: 6-digit region, YYYYMMDD, 6-digit serial")
        try:
            check_province(code[:2], "region")
            check_date(code[6:14], "date")
        except InvalidDocumentError as exc:
            raise ValueError(str(exc)) from None
        today = (datetime.now(UTC) + _EARLIEST_ZONE).date()
        if date(int(code[6:10]), int(code[10:12]), int(code[12:14])) > today:
            raise ValueError(f"its date {code[6:14]} is after today ({today:%Y%m%d})")
        return code

    @field_validator("signed_at")
    @classmethod
    def _not_in_the_future(cls, signed_at: datetime) -> datetime:
        latest = datetime.now(UTC) + CLOCK_SKEW
        if signed_at > latest:
            raise ValueError(
                f"{signed_at:%Y-%m-%dT%H:%M:%SZ} is in the future "
                f"(this clock says {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ})"
            )
        return signed_at

    @field_validator("claims")
    @classmethod
    def _distinct_claims(cls, claims: list[Claim]) -> list[Claim]:
        if not claims:
            raise ValueError("must hold at least one claim")
        if len(claims) > MAX_CLAIMS:
            raise ValueError(f"may hold at most {MAX_CLAIMS} claims, got {len(claims)}")
        keys = [claim.key for claim in claims]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"each key may appear once; repeated: {', '.join(repeated)}")
        return claims

    @field_serializer("signed_at")
    def _signed_at_text(self, value: datetime) -> str:
        return value.strftime(_UTC_SECONDS)

    @classmethod
    def from_json_obj(cls, obj: object) -> Commitment:
        """Validate a parsed JSON value; raise InvalidDocumentError naming the first bad field."""
        return _validated(cls, obj, "commitment")

    def to_json_obj(self) -> dict[str, Any]:
        """Return the plain JSON value (signed_at as YYYY-MM-DDTHH:MM:SSZ)."""
        return self.model_dump(mode="json")

    def canonical(self) -> bytes:
        """Return the RFC 8785 bytes that are hashed and signed."""
        # The schema admits only ASCII keys, bounded integers, strings, booleans and lists
        # of strings: the fast encoder's output is exactly RFC 8785 for such documents.
        return canonical_bytes_plain(self.to_json_obj())

    def hash(self) -> Hash32:
        """Return the commitment hash, the value anchored on chain (``commitment_hash``)."""
        return commitment_hash(self.to_json_obj())


class Signature(_Document):
    """An applicant's signature over a commitment's canonical bytes.

    ``public_key`` is base64 of the DER SubjectPublicKeyInfo (self-describing, the form
    OpenSSL and Web Crypto export as 'spki'); ``value`` is base64 of the raw 64-byte
    Ed25519 signature or of the DER-encoded ECDSA (r, s) over SHA-256. Base64 content
    is checked by ``ledger.signing.verify_signed``, which raises SignatureError.
    """

    algorithm: SignatureAlgorithm
    public_key: Annotated[str, _bounded(MAX_SIGNATURE_FIELD)]
    value: Annotated[str, _bounded(MAX_SIGNATURE_FIELD)]


class SignedCommitment(_Document):
    """A commitment with its signature beside it; the signature is not part of the hash."""

    document: Commitment
    signature: Signature

    @classmethod
    def from_json_obj(cls, obj: object) -> SignedCommitment:
        """Validate ``{"document": {...}, "signature": {...}}``; raise InvalidDocumentError."""
        return _validated(cls, obj, "signed commitment")

    def to_json_obj(self) -> dict[str, Any]:
        """Return the plain JSON value of document and signature."""
        return self.model_dump(mode="json")

    def hash(self) -> Hash32:
        """Return the document's hash (the signature is outside it)."""
        return self.document.hash()


def new_salt() -> str:
    """Return 32 fresh random bytes as 0x-hex, so an anchored hash cannot be brute-forced."""
    return "0x" + secrets.token_bytes(32).hex()


def check_salt(salt: str) -> None:
    """Refuse a salt that is all zero or visibly not random; raise InvalidDocumentError.

    A salt must come from a CSPRNG (``new_salt`` uses ``secrets``): it is what keeps an
    anchored hash from being brute-forced over the few values a document's fields can take.
    Checked when signing and at intake; documents already committed still parse.
    """
    raw = bytes.fromhex(salt.removeprefix("0x"))
    if len(set(raw)) < MIN_DISTINCT_SALT_BYTES:
        raise InvalidDocumentError(
            f"salt: not random (only {len(set(raw))} distinct bytes of {len(raw)}): "
            "make it of 32 bytes from a CSPRNG (ledger.new_salt uses Python's secrets)"
        )


def _validated(cls: type[DocumentT], obj: object, what: str) -> DocumentT:
    try:
        return cls.model_validate(obj)
    except ValidationError as exc:
        raise InvalidDocumentError(f"invalid {what}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where.lstrip('.')}: {message}" if where else message
