"""Chinese identity numbers: resident ID (GB 11643), credit code (GB 32100), check characters."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from ledger.errors import InvalidDocumentError

__all__ = [
    "IdType",
    "check_date",
    "check_province",
    "make_resident_id",
    "make_uscc",
    "resident_id_check_digit",
    "uscc_check_char",
    "validate_id_number",
]

IdType = Literal["resident_id", "passport", "foreign_permanent_resident_id", "uscc"]

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
_RESIDENT_ID = re.compile(r"[0-9]{17}[0-9X]")
_FOREIGN_ID_2023 = re.compile(r"9[0-9]{16}[0-9X]")
_FOREIGN_ID_2017 = re.compile(r"[A-Z]{3}[0-9]{12}")
_PASSPORT = re.compile(r"[A-Z0-9]{5,20}")
_USCC = re.compile(f"[{_USCC_CHARS}]{{18}}")


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
    check_province(number[:2], "resident ID")
    check_date(number[6:14], "resident ID birth date")
    _check_mod11_2(number, "resident ID")


def _check_foreign_permanent_resident_id(number: str) -> None:
    # The 2023 card uses 18 characters with the resident-ID check; the 2017 one has 15.
    if _FOREIGN_ID_2023.fullmatch(number):
        check_province(number[1:3], "permanent residence ID")
        check_date(number[6:14], "permanent residence ID birth date")
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


def check_province(code: str, what: str) -> None:
    if code not in _PROVINCES:
        raise InvalidDocumentError(f"{what} starts with {code}, which is no province code")


def _check_short_date(yymmdd: str, what: str) -> None:
    # The century is not written; the date must exist in one of the two candidates.
    for century in ("19", "20"):
        try:
            _parse_yyyymmdd(century + yymmdd)
        except ValueError:
            continue
        return
    raise InvalidDocumentError(f"{what} {yymmdd} is not a valid date")


def _parse_yyyymmdd(text: str) -> date:
    if len(text) != 8 or not (text.isascii() and text.isdigit()):
        raise ValueError(text)
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def check_date(yyyymmdd: str, what: str) -> None:
    """Raise InvalidDocumentError unless `yyyymmdd` is a real calendar date."""
    try:
        _parse_yyyymmdd(yyyymmdd)
    except ValueError:
        raise InvalidDocumentError(f"{what} {yyyymmdd} is not a valid date") from None
