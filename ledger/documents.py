"""The commitment document, schema version 1: its fields, their checks, its JSON form and hash."""

from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import UTC, date, datetime
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

from .canonical import canonical_bytes, keccak256
from .errors import InvalidDocumentError
from .types import Hash32

__all__ = [
    "Applicant",
    "Claim",
    "ClaimOp",
    "Commitment",
    "Signature",
    "SignatureAlgorithm",
    "SignedCommitment",
    "make_resident_id",
    "make_uscc",
    "new_salt",
    "resident_id_check_digit",
    "uscc_check_char",
    "validate_id_number",
]

IdType = Literal["resident_id", "passport", "foreign_permanent_resident_id", "uscc"]
ClaimOp = Literal[">=", "<=", "==", "!=", ">", "<", "in"]
SignatureAlgorithm = Literal["ed25519", "ecdsa-p256"]

# GB/T 2260 province-level codes, plus 83 which Taiwan residents' permits use.
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "  # noqa: SIM905
    "50 51 52 53 54 61 62 63 64 65 71 81 82 83".split()
)
# ISO 7064 MOD 11-2 as GB 11643 applies it: weight of position i is 2**(17-i) mod 11.
_RESIDENT_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_RESIDENT_CHECK = "10X98765432"
# GB 32100-2015: 31 characters (no I, O, Z, S, V), weight of position i is 3**i mod 31.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_ORGANISATION_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714
_JSON_SAFE_INT = 2**53 - 1

_RESIDENT_ID = re.compile(r"[0-9]{17}[0-9X]")
_FOREIGN_ID_2023 = re.compile(r"9[0-9]{16}[0-9X]")
_FOREIGN_ID_2017 = re.compile(r"[A-Z]{3}[0-9]{12}")
_PASSPORT = re.compile(r"[A-Z0-9]{5,20}")
_USCC = re.compile(f"[{_USCC_CHARS}]{{18}}")
_COMMITMENT_CODE = re.compile(r"[0-9]{20}")
_CLAIM_KEY = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_DEPARTMENT = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*")
_MATTER_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HEX32 = re.compile(r"0x[0-9a-f]{64}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UTC_SECONDS = "%Y-%m-%dT%H:%M:%SZ"


# --- identity numbers ------------------------------------------------------------------


def resident_id_check_digit(first17: str) -> str:
    """Return the 18th character (0-9 or X) of a resident ID from its first 17 digits."""
    if not re.fullmatch(r"[0-9]{17}", first17):
        raise InvalidDocumentError("a resident ID's first 17 characters must be digits")
    total = sum(
        int(digit) * weight for digit, weight in zip(first17, _RESIDENT_WEIGHTS, strict=True)
    )
    return _RESIDENT_CHECK[total % 11]


def uscc_check_char(first17: str) -> str:
    """Return the 18th character of a unified social credit code from its first 17."""
    if not re.fullmatch(f"[{_USCC_CHARS}]{{17}}", first17):
        raise InvalidDocumentError(
            f"a credit code's first 17 characters must come from {_USCC_CHARS}"
        )
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[-total % 31]


def make_resident_id(region: str, birth: date, sequence: int) -> str:
    """Build a well-formed resident ID (for demos and tests): region + birth + seq + check."""
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first17 + resident_id_check_digit(first17)


def make_uscc(region: str, organisation_body: str, authority: str = "91") -> str:
    """Build a well-formed credit code (for demos and tests) from an 8-character body.

    ``authority`` is the registering authority and entity type (91: a company registered
    with market regulation); the body gets its GB 11714 check digit, the code its GB 32100 one.
    """
    first17 = f"{authority}{region}{organisation_body}{_organisation_check(organisation_body)}"
    return first17 + uscc_check_char(first17)


def _organisation_check(body: str) -> str:
    if not re.fullmatch(r"[0-9A-Z]{8}", body):
        raise InvalidDocumentError("an organisation code body is 8 digits or capital letters")
    total = sum(int(c, 36) * w for c, w in zip(body, _ORGANISATION_WEIGHTS, strict=True))
    return "0123456789X0"[11 - total % 11]


def validate_id_number(id_type: IdType, id_number: str) -> None:
    """Check an identity number's format and check character; raise InvalidDocumentError."""
    if id_type == "resident_id":
        _check_resident_id(id_number)
    elif id_type == "foreign_permanent_resident_id":
        _check_foreign_permanent_resident_id(id_number)
    elif id_type == "uscc":
        _check_uscc(id_number)
    elif not _PASSPORT.fullmatch(id_number):
        raise InvalidDocumentError("a passport number is 5 to 20 capital letters and digits")


def _check_resident_id(number: str) -> None:
    if not _RESIDENT_ID.fullmatch(number):
        raise InvalidDocumentError(
            "a resident ID is 17 digits then a digit or capital X (18 characters)"
        )
    _check_province(number[:2], "resident ID")
    _check_date(number[6:14], "resident ID birth date")
    _check_mod11_2(number, "resident ID")


def _check_foreign_permanent_resident_id(number: str) -> None:
    # The 2023 card uses 18 characters with the resident-ID check; the 2017 one has 15.
    if _FOREIGN_ID_2023.fullmatch(number):
        _check_province(number[1:3], "permanent residence ID")
        _check_date(number[6:14], "permanent residence ID birth date")
        _check_mod11_2(number, "permanent residence ID")
    elif _FOREIGN_ID_2017.fullmatch(number):
        _check_short_date(number[5:11], "permanent residence ID birth date")
    else:
        raise InvalidDocumentError(
            "a foreign permanent residence ID is 18 characters starting with 9 (2023 card) "
            "or 3 capital letters and 12 digits (2017 card)"
        )


def _check_uscc(code: str) -> None:
    if not _USCC.fullmatch(code):
        raise InvalidDocumentError(
            f"a unified social credit code is 18 characters from {_USCC_CHARS}"
        )
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise InvalidDocumentError(
            f"credit code check character is wrong: expected {expected}, got {code[17]}"
        )


def _check_mod11_2(number: str, what: str) -> None:
    expected = resident_id_check_digit(number[:17])
    if number[17] != expected:
        raise InvalidDocumentError(
            f"{what} check digit is wrong: expected {expected}, got {number[17]}"
        )


def _check_province(code: str, what: str) -> None:
    if code not in _PROVINCES:
        raise InvalidDocumentError(f"{what} starts with {code}, which is no province code")


def _check_short_date(yymmdd: str, what: str) -> None:
    # The century is not written; the date must exist in one of the two candidates.
    for century in ("19", "20"):
        try:
            datetime.strptime(century + yymmdd, "%Y%m%d")
        except ValueError:
            continue
        return
    raise InvalidDocumentError(f"{what} {yymmdd} is not a valid date")


def _check_date(yyyymmdd: str, what: str) -> None:
    try:
        datetime.strptime(yyyymmdd, "%Y%m%d")
    except ValueError:
        raise InvalidDocumentError(f"{what} {yyyymmdd} is not a valid date") from None


# --- field checks ------------------------------------------------------------------------


def _matching(pattern: re.Pattern[str], description: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"must be {description}, got {value!r}")
        return value

    return AfterValidator(check)


def _plain_text(value: str) -> str:
    # Two spellings of one name would give two hashes for one commitment.
    if not value or value != value.strip():
        raise ValueError("must be non-empty without leading or trailing whitespace")
    if unicodedata.normalize("NFC", value) != value:
        raise ValueError("must be in Unicode normalisation form NFC")
    return value


def _exact_int_one(value: object) -> object:
    # pydantic accepts True and 1.0 for Literal[1]; JSON 'true' would then hash differently.
    if type(value) is not int:
        raise ValueError("must be the integer 1")
    return value


def _claim_value_type(value: object) -> object:
    # Checked by hand so a wrong type yields one error, not one per union member.
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise ValueError("a list value must hold only strings")
        return value
    if not isinstance(value, (bool, int, str)):
        raise ValueError("must be an integer, a string, a boolean or a list of strings")
    if isinstance(value, int) and not -_JSON_SAFE_INT <= value <= _JSON_SAFE_INT:
        raise ValueError("an integer must lie within +/-(2**53 - 1)")
    return value


def _utc_whole_seconds(value: object) -> datetime:
    # A string is the serialised form and must already be normal, so hash(file) == hash(doc).
    if isinstance(value, str):
        try:
            return datetime.strptime(value, _UTC_SECONDS).replace(tzinfo=UTC)
        except ValueError:
            raise ValueError(
                f"must be UTC to the second, written like 2024-03-01T02:00:00Z, got {value!r}"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a time zone")
        return value.astimezone(UTC).replace(microsecond=0)
    raise ValueError("must be an ISO 8601 string like 2024-03-01T02:00:00Z")


PlainText = Annotated[str, AfterValidator(_plain_text)]
ClaimKey = Annotated[str, _matching(_CLAIM_KEY, "a snake_case identifier")]
ClaimValue = Annotated[int | str | bool | list[str], BeforeValidator(_claim_value_type)]
Hex32Text = Annotated[str, _matching(_HEX32, "0x and 64 lowercase hex digits")]


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


DocumentT = TypeVar("DocumentT", bound=_Document)


# --- the documents -------------------------------------------------------------------------


class Applicant(_Document):
    """Who commits: a person (by resident ID or passport) or an organisation (by USCC)."""

    kind: Literal["person", "organisation"]
    name: PlainText
    id_type: IdType
    id_number: str

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
            raise ValueError(f"op {op!r} compares integers or YYYY-MM-DD dates, got {value!r}")
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
    matter_code: Annotated[str, _matching(_MATTER_CODE, "letters, digits, '.', '_' or '-'")]
    department: Annotated[str, _matching(_DEPARTMENT, "a department code like BJ-HRSS")]
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
            _check_province(code[:2], "region")
            _check_date(code[6:14], "date")
        except InvalidDocumentError as exc:
            raise ValueError(str(exc)) from None
        return code

    @field_validator("claims")
    @classmethod
    def _distinct_claims(cls, claims: list[Claim]) -> list[Claim]:
        if not claims:
            raise ValueError("must hold at least one claim")
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
        return canonical_bytes(self.to_json_obj())

    def hash(self) -> Hash32:
        """Return keccak256 of the canonical bytes: the value anchored on chain."""
        return keccak256(self.canonical())


class Signature(_Document):
    """An applicant's signature over a commitment's canonical bytes.

    ``public_key`` is base64 of the DER SubjectPublicKeyInfo (self-describing, the form
    OpenSSL and Web Crypto export as 'spki'); ``value`` is base64 of the raw 64-byte
    Ed25519 signature or of the DER-encoded ECDSA (r, s) over SHA-256. Base64 content
    is checked by ``ledger.signing.verify_signed``, which raises SignatureError.
    """

    algorithm: SignatureAlgorithm
    public_key: str
    value: str


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
