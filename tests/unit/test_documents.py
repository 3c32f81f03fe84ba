"""The commitment document: valid shapes, each rejection and its message, identity numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError
from support.documents import organisation_commitment, person_commitment, with_change

from ledger import (
    Commitment,
    InvalidDocumentError,
    SignedCommitment,
    canonical_bytes,
    commitment_hash,
    make_resident_id,
    make_uscc,
    new_salt,
    resident_id_check_digit,
    uscc_check_char,
    validate_id_number,
)

# Published examples: GB 11643's sample IDs; credit codes of well-known companies.
RESIDENT_IDS = ["11010519491231002X", "440524188001010014"]
CREDIT_CODES = [
    "914403001922038216",  # Huawei Technologies Co., Ltd.
    "91330100716105852F",  # Alibaba (China) Co., Ltd.
    "9144030071526726XG",  # Shenzhen Tencent Computer Systems Co., Ltd.
    "91350100M000100Y43",  # the worked example in GB 32100-2015 explanations
]


def rejection(obj: object) -> str:
    with pytest.raises(InvalidDocumentError) as caught:
        Commitment.from_json_obj(obj)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- valid documents -----------------------------------------------------------------


@pytest.mark.parametrize("obj", [person_commitment(), organisation_commitment()])
def test_valid_document_round_trips_unchanged(obj: dict[str, Any]) -> None:
    commitment = Commitment.from_json_obj(obj)
    assert commitment.to_json_obj() == obj
    assert commitment.canonical() == canonical_bytes(obj)
    assert commitment.hash() == commitment_hash(obj)


def test_hash_of_a_parsed_file_equals_hash_of_the_document() -> None:
    obj = person_commitment()
    reordered = dict(reversed(list(obj.items())))
    assert Commitment.from_json_obj(reordered).hash() == commitment_hash(obj)


def test_salt_changes_the_hash() -> None:
    first = Commitment.from_json_obj(person_commitment())
    second = Commitment.from_json_obj(with_change(person_commitment(), ["salt"], new_salt()))
    assert first.hash() != second.hash()


def test_commitment_is_frozen() -> None:
    commitment = Commitment.from_json_obj(person_commitment())
    with pytest.raises(ValidationError):
        commitment.channel = "counter"


def test_aware_datetime_is_stored_in_utc_to_the_second() -> None:
    beijing = timezone(timedelta(hours=8))
    obj = person_commitment()
    obj["signed_at"] = datetime(2024, 3, 1, 10, 0, 0, 987_654, tzinfo=beijing)
    commitment = Commitment.model_validate(obj)
    assert commitment.signed_at == datetime(2024, 3, 1, 2, 0, 0, tzinfo=UTC)
    assert commitment.to_json_obj()["signed_at"] == "2024-03-01T02:00:00Z"


def test_new_salt_is_32_fresh_random_bytes() -> None:
    salts = {new_salt() for _ in range(100)}
    assert len(salts) == 100
    assert all(len(bytes.fromhex(salt.removeprefix("0x"))) == 32 for salt in salts)
    assert all(salt.startswith("0x") and salt == salt.lower() for salt in salts)


@pytest.mark.parametrize(
    ("id_type", "id_number"),
    [
        ("passport", "E12345678"),
        ("passport", "G1234567"),
        ("foreign_permanent_resident_id", "USA117912011234"),
        ("foreign_permanent_resident_id", "9" + "11840" + "19800101" + "001" + "5"),
    ],
)
def test_other_identity_documents_are_accepted(id_type: str, id_number: str) -> None:
    obj = with_change(person_commitment(), ["applicant", "id_type"], id_type)
    obj["applicant"]["id_number"] = id_number
    if id_number.startswith("9"):
        obj["applicant"]["id_number"] = id_number[:17] + resident_id_check_digit(id_number[:17])
    assert Commitment.from_json_obj(obj).applicant.id_number == obj["applicant"]["id_number"]


# --- rejections, one field at a time ---------------------------------------------------

REJECTIONS: list[tuple[list[str | int], object, str]] = [
    (["schema_version"], 2, "schema_version: Input should be 1"),
    (["schema_version"], True, "schema_version: must be the integer 1"),
    (["schema_version"], "1", "schema_version: must be the integer 1"),
    (["code"], "1100002024030100000", "code: must be 20 digits"),
    (["code"], "11000020240230000001", "code: date 20240230 is not a valid date"),
    (["code"], "99000020240301000001", "code: region starts with 99, which is no province"),
    (["matter_code"], "", "matter_code: must be letters, digits"),
    (["department"], "bj-hrss", "department: must be a department code like BJ-HRSS"),
    (["applicant", "kind"], "company", "applicant.kind: Input should be 'person' or"),
    (["applicant", "name"], "", "applicant.name: must be non-empty"),
    (["applicant", "name"], "张三 ", "applicant.name: must be non-empty without leading"),
    (["applicant", "name"], "Zoe\u0301", "applicant.name: must be in Unicode normalisation"),
    (["applicant", "id_type"], "uscc", "applicant.id_type: 'uscc' does not fit kind 'person'"),
    (["applicant", "id_type"], "hukou", "applicant.id_type: Input should be"),
    (["applicant", "id_number"], "110105194912310021", "check digit is wrong: expected X, got 1"),
    (["applicant", "id_number"], "11010519491231002x", "then a digit or capital X"),
    (["applicant", "id_number"], "11010519490231002X", "birth date 19490231 is not a valid"),
    (["applicant", "id_number"], "00010519491231002X", "starts with 00, which is no province"),
    (["applicant", "id_number"], 11010519491231002, "applicant.id_number: Input should be a"),
    (["claims"], [], "claims: must hold at least one claim"),
    (["claims"], {"key": "x"}, "claims: Input should be a valid list"),
    (["claims", 0, "key"], "SocialInsurance", "claims[0].key: must be a snake_case identifier"),
    (["claims", 0, "key"], "months__paid", "claims[0].key: must be a snake_case identifier"),
    (["claims", 0, "op"], "=>", "claims[0].op: Input should be '>=', '<='"),
    (["claims", 0, "value"], 84.5, "claims[0].value: must be an integer, a string, a bool"),
    (["claims", 0, "value"], None, "claims[0].value: must be an integer, a string, a bool"),
    (["claims", 0, "value"], 2**53, "claims[0].value: an integer must lie within"),
    (["claims", 0, "value"], "84", "claims[0].value: op '>=' compares integers or YYYY-MM-DD"),
    (["claims", 0, "value"], True, "claims[0].value: op '>=' compares integers or YYYY-MM-DD"),
    (["claims", 3, "value"], "2024-02-30", "claims[3].value: op '<=' compares integers"),
    (["claims", 1, "value"], ["a"], "claims[1].value: a list value needs op 'in', not '=='"),
    (["claims", 2, "value"], [], "claims[2].value: op 'in' needs a non-empty list"),
    (["claims", 2, "value"], ["a", "a"], "claims[2].value: op 'in' needs a list without rep"),
    (["claims", 2, "value"], ["a", 1], "claims[2].value: a list value must hold only strings"),
    (["claims", 2, "value"], "a", "claims[2].value: op 'in' needs a non-empty list"),
    (["claims", 1, "key"], "social_insurance_consecutive_months", "repeated: social_insurance"),
    (["claims", 0, "extra"], 1, "claims[0].extra: Extra inputs are not permitted"),
    (["channel"], "post", "channel: Input should be 'counter' or 'online'"),
    (["signed_at"], "2024-03-01T10:00:00+08:00", "signed_at: must be UTC to the second"),
    (["signed_at"], "2024-03-01T02:00:00.000Z", "signed_at: must be UTC to the second"),
    (["signed_at"], "2024-03-01 02:00:00", "signed_at: must be UTC to the second"),
    (["signed_at"], 1709258400, "signed_at: must be an ISO 8601 string"),
    (["notice_hash"], "0x" + "ab" * 31, "notice_hash: must be 0x and 64 lowercase hex"),
    (["notice_hash"], "ab" * 32, "notice_hash: must be 0x and 64 lowercase hex"),
    (["salt"], "0x" + "AB" * 32, "salt: must be 0x and 64 lowercase hex"),
    (["unexpected"], 1, "unexpected: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    REJECTIONS,
    ids=[f"{'.'.join(map(str, path))}={value!r}"[:60] for path, value, _ in REJECTIONS],
)
def test_each_bad_field_is_named_in_one_line(
    path: list[str | int], value: object, fragment: str
) -> None:
    message = rejection(with_change(person_commitment(), path, value))
    assert message.startswith("invalid commitment: ")
    assert fragment in message


@pytest.mark.parametrize("field", sorted(person_commitment()))
def test_each_missing_field_is_named(field: str) -> None:
    obj = person_commitment()
    del obj[field]
    assert rejection(obj) == f"invalid commitment: {field}: Field required"


def test_a_person_needs_a_personal_id_and_an_organisation_a_credit_code() -> None:
    obj = with_change(organisation_commitment(), ["applicant", "id_type"], "resident_id")
    assert "'resident_id' does not fit kind 'organisation'" in rejection(obj)


def test_a_wrong_credit_code_check_character_is_named() -> None:
    obj = with_change(organisation_commitment(), ["applicant", "id_number"], "914403001922038217")
    assert "credit code check character is wrong: expected 6, got 7" in rejection(obj)


def test_a_non_object_document_is_rejected() -> None:
    assert "Input should be a valid dictionary" in rejection(["not", "an", "object"])


# --- identity numbers ---------------------------------------------------------------------


@pytest.mark.parametrize("number", RESIDENT_IDS)
def test_published_resident_ids_have_the_right_check_digit(number: str) -> None:
    assert resident_id_check_digit(number[:17]) == number[17]
    validate_id_number("resident_id", number)


@pytest.mark.parametrize("code", CREDIT_CODES)
def test_published_credit_codes_have_the_right_check_char(code: str) -> None:
    assert uscc_check_char(code[:17]) == code[17]
    validate_id_number("uscc", code)


@pytest.mark.parametrize("number", RESIDENT_IDS)
def test_any_single_digit_change_in_a_resident_id_is_caught(number: str) -> None:
    for position in range(14, 17):  # sequence digits: the date and region stay valid
        for digit in "0123456789":
            changed = number[:position] + digit + number[position + 1 :]
            if changed != number:
                with pytest.raises(InvalidDocumentError, match="check digit is wrong"):
                    validate_id_number("resident_id", changed)


@pytest.mark.parametrize("code", CREDIT_CODES)
def test_swapping_two_characters_of_a_credit_code_is_caught(code: str) -> None:
    for position in range(2, 16):
        swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
        if swapped != code:
            with pytest.raises(InvalidDocumentError, match="check character is wrong"):
                validate_id_number("uscc", swapped)


def test_made_ids_are_valid_and_match_published_ones() -> None:
    assert make_resident_id("110105", date(1949, 12, 31), 2) == "11010519491231002X"
    assert make_uscc("440300", "19220382") == "914403001922038216"
    assert make_uscc("440300", "71526726") == "9144030071526726XG"
    for sequence in range(0, 1000, 37):
        validate_id_number("resident_id", make_resident_id("310104", date(1990, 6, 1), sequence))


@pytest.mark.parametrize(
    ("id_type", "number", "fragment"),
    [
        ("passport", "E123", "5 to 20 capital letters and digits"),
        ("passport", "e12345678", "5 to 20 capital letters and digits"),
        ("passport", "E" + "1" * 20, "5 to 20 capital letters and digits"),
        ("foreign_permanent_resident_id", "USA117912321234", "791232 is not a valid date"),
        ("foreign_permanent_resident_id", "11010519491231002X", "starting with 9"),
        ("uscc", "91440300192203821I", "18 characters from"),
        ("uscc", "9144030019220382", "18 characters from"),
    ],
)
def test_malformed_identity_numbers_are_rejected(id_type: Any, number: str, fragment: str) -> None:
    with pytest.raises(InvalidDocumentError, match=fragment):
        validate_id_number(id_type, number)


def test_check_helpers_refuse_malformed_prefixes() -> None:
    with pytest.raises(InvalidDocumentError, match="must be digits"):
        resident_id_check_digit("1101051949123100")
    with pytest.raises(InvalidDocumentError, match="must come from"):
        uscc_check_char("91440300192203821O"[:16] + "O")


# --- the signed envelope -------------------------------------------------------------------


def signed_obj() -> dict[str, Any]:
    return {
        "document": person_commitment(),
        "signature": {"algorithm": "ed25519", "public_key": "AAAA", "value": "BBBB"},
    }


def test_signed_commitment_round_trips_and_hashes_only_the_document() -> None:
    signed = SignedCommitment.from_json_obj(signed_obj())
    assert signed.to_json_obj() == signed_obj()
    assert signed.hash() == commitment_hash(person_commitment())


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        (["signature", "algorithm"], "rsa", "signature.algorithm: Input should be 'ed25519'"),
        (["signature", "value"], 12, "signature.value: Input should be a valid string"),
        (["document", "applicant", "name"], "", "document.applicant.name: must be non-empty"),
        (["extra"], {}, "extra: Extra inputs are not permitted"),
    ],
)
def test_signed_commitment_names_the_bad_field(
    path: list[str | int], value: object, fragment: str
) -> None:
    with pytest.raises(InvalidDocumentError, match=r"^invalid signed commitment: ") as caught:
        SignedCommitment.from_json_obj(with_change(signed_obj(), path, value))
    assert fragment in str(caught.value)
