"""The vault: AES-GCM under a data key per commitment, wrapped by the master key."""

from __future__ import annotations

import base64
import secrets

import pytest

from ledger import (
    MASTER_KEY_ENV,
    ErasedError,
    LedgerError,
    Sealed,
    Vault,
    VaultError,
    is_sealed_secret,
)

ASSOCIATED = bytes.fromhex("ab" * 32)  # a commitment hash
PLAIN = "王伟 110101199003071234 the signed document".encode()


@pytest.fixture
def vault() -> Vault:
    return Vault(secrets.token_bytes(32))


def flip(data: bytes, index: int) -> bytes:
    """`data` with one bit of byte `index` flipped."""
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


# ---------------------------------------------------------------------- seal and open


def test_seal_open_round_trip(vault: Vault) -> None:
    sealed = vault.seal(PLAIN, associated=ASSOCIATED)
    assert vault.open(sealed.ciphertext, sealed.wrapped_key, associated=ASSOCIATED) == PLAIN


def test_seal_without_associated_data(vault: Vault) -> None:
    sealed = vault.seal(b"")
    assert vault.open(sealed.ciphertext, sealed.wrapped_key) == b""


def test_sealed_shape_and_no_plaintext(vault: Vault) -> None:
    sealed = vault.seal(PLAIN, associated=ASSOCIATED)
    assert isinstance(sealed, Sealed)
    # version 2: version byte + 12-byte nonce + deflated ciphertext + 16-byte tag; an RFC
    # 3394 wrap of 32 bytes is 40 bytes
    assert sealed.ciphertext[0] == 2
    assert len(sealed.ciphertext) < 1 + 12 + len(PLAIN) + 16
    assert len(sealed.wrapped_key) == 40
    assert PLAIN not in sealed.ciphertext
    assert "王伟".encode() not in sealed.ciphertext
    assert b"110101199003071234" not in sealed.ciphertext


def test_a_signed_document_is_deflated_to_about_half() -> None:
    from ledger.vault import _DEFLATE_DICTIONARY

    vault = Vault(secrets.token_bytes(32))
    document = _DEFLATE_DICTIONARY.replace(b'""', b'"' + secrets.token_hex(20).encode() + b'"')
    sealed = vault.seal(document, associated=ASSOCIATED)
    assert len(sealed.ciphertext) < len(document) // 2
    assert vault.open(sealed.ciphertext, sealed.wrapped_key, associated=ASSOCIATED) == document


def test_data_sealed_before_version_2_still_open(vault: Vault) -> None:
    old = vault.seal_v1(PLAIN, associated=ASSOCIATED)
    assert len(old.ciphertext) == 12 + len(PLAIN) + 16
    assert vault.open(old.ciphertext, old.wrapped_key, associated=ASSOCIATED) == PLAIN
    with pytest.raises(VaultError):
        vault.open(flip(old.ciphertext, 20), old.wrapped_key, associated=ASSOCIATED)
    with pytest.raises(VaultError):
        vault.open(old.ciphertext, old.wrapped_key, associated=b"other")


def test_an_old_nonce_starting_with_the_version_byte_still_opens(vault: Vault) -> None:
    # 1 in 256 version 1 values start with the version byte: tried as version 2, then 1.
    while True:
        old = vault.seal_v1(PLAIN, associated=ASSOCIATED)
        if old.ciphertext[0] == 2:
            break
    assert vault.open(old.ciphertext, old.wrapped_key, associated=ASSOCIATED) == PLAIN
    with pytest.raises(VaultError):
        vault.open(flip(old.ciphertext, 30), old.wrapped_key, associated=ASSOCIATED)


def test_a_version_2_value_does_not_open_as_version_1(vault: Vault) -> None:
    sealed = vault.seal(PLAIN, associated=ASSOCIATED)
    with pytest.raises(VaultError):  # without its version byte
        vault.open(sealed.ciphertext[1:], sealed.wrapped_key, associated=ASSOCIATED)


def test_each_seal_has_its_own_data_key_and_nonce(vault: Vault) -> None:
    one = vault.seal(PLAIN, associated=ASSOCIATED)
    two = vault.seal(PLAIN, associated=ASSOCIATED)
    assert one.wrapped_key != two.wrapped_key
    assert one.ciphertext[1:13] != two.ciphertext[1:13]
    assert one.ciphertext != two.ciphertext
    # a data key opens only its own ciphertext
    with pytest.raises(VaultError):
        vault.open(one.ciphertext, two.wrapped_key, associated=ASSOCIATED)


def test_wrong_master_key_does_not_open(vault: Vault) -> None:
    sealed = vault.seal(PLAIN, associated=ASSOCIATED)
    other = Vault(secrets.token_bytes(32))
    with pytest.raises(VaultError, match="wrong master key or altered"):
        other.open(sealed.ciphertext, sealed.wrapped_key, associated=ASSOCIATED)


@pytest.mark.parametrize(
    "index", [0, 11, 12, 20, -1], ids=["nonce0", "nonce11", "body", "b", "tag"]
)
def test_tampered_ciphertext_does_not_open(vault: Vault, index: int) -> None:
    sealed = vault.seal(PLAIN, associated=ASSOCIATED)
    with pytest.raises(VaultError):
        vault.open(flip(sealed.ciphertext, index), sealed.wrapped_key, associated=ASSOCIATED)


@pytest.mark.parametrize("index", [0, 8, -1])
def test_tampered_wrapped_key_does_not_open(vault: Vault, index: int) -> None:
    sealed = vault.seal(PLAIN, associated=ASSOCIATED)
    with pytest.raises(VaultError):
        vault.open(sealed.ciphertext, flip(sealed.wrapped_key, index), associated=ASSOCIATED)


@pytest.mark.parametrize("keep", [40, 28, 20, 12])
def test_truncated_ciphertext_does_not_open(vault: Vault, keep: int) -> None:
    sealed = vault.seal(PLAIN, associated=ASSOCIATED)
    with pytest.raises(VaultError):
        vault.open(sealed.ciphertext[:keep], sealed.wrapped_key, associated=ASSOCIATED)


@pytest.mark.parametrize("keep", [0, 5, 7])
def test_very_short_ciphertext_is_a_vault_error(vault: Vault, keep: int) -> None:
    sealed = vault.seal(PLAIN, associated=ASSOCIATED)
    with pytest.raises(VaultError):
        vault.open(sealed.ciphertext[:keep], sealed.wrapped_key, associated=ASSOCIATED)


@pytest.mark.parametrize("wrapped", [b"", b"\x00" * 16, b"\x00" * 41], ids=["empty", "16", "41"])
def test_malformed_wrapped_key_does_not_open(vault: Vault, wrapped: bytes) -> None:
    sealed = vault.seal(PLAIN, associated=ASSOCIATED)
    with pytest.raises(VaultError):
        vault.open(sealed.ciphertext, wrapped, associated=ASSOCIATED)


def test_associated_data_mismatch_does_not_open(vault: Vault) -> None:
    sealed = vault.seal(PLAIN, associated=ASSOCIATED)
    with pytest.raises(VaultError):
        vault.open(sealed.ciphertext, sealed.wrapped_key, associated=flip(ASSOCIATED, 0))
    with pytest.raises(VaultError):
        vault.open(sealed.ciphertext, sealed.wrapped_key)  # none given


def test_ciphertext_moved_to_another_commitment_does_not_open(vault: Vault) -> None:
    """The commitment hash is the associated data: a sealed document cannot be swapped."""
    a = vault.seal(b"document a", associated=b"a" * 32)
    with pytest.raises(VaultError):
        vault.open(a.ciphertext, a.wrapped_key, associated=b"b" * 32)


def test_erased_key_raises_erased_error(vault: Vault) -> None:
    sealed = vault.seal(PLAIN, associated=ASSOCIATED)
    with pytest.raises(ErasedError, match="erased"):
        vault.open(sealed.ciphertext, None, associated=ASSOCIATED)
    with pytest.raises(ErasedError):
        vault.open(b"", None, associated=ASSOCIATED)


def test_error_hierarchy() -> None:
    assert issubclass(ErasedError, VaultError)
    assert issubclass(VaultError, LedgerError)
    assert issubclass(VaultError, ValueError)


# ---------------------------------------------------------------------- master keys


def test_new_master_key_is_base64_of_32_random_bytes() -> None:
    text = Vault.new_master_key()
    assert len(base64.b64decode(text, validate=True)) == 32
    assert Vault.new_master_key() != text
    Vault.from_text(text)


def test_from_text_base64_and_hex_give_the_same_vault() -> None:
    raw = secrets.token_bytes(32)
    as_b64 = Vault.from_text(base64.b64encode(raw).decode())
    as_hex = Vault.from_text("0x" + raw.hex())
    as_upper_hex = Vault.from_text("0x" + raw.hex().upper())
    padded = Vault.from_text("  " + base64.b64encode(raw).decode() + "\n")  # as a key file holds it
    for vault in (as_b64, as_hex, as_upper_hex, padded):
        assert vault.master_key == raw
    sealed = as_b64.seal(PLAIN)
    assert as_hex.open(sealed.ciphertext, sealed.wrapped_key) == PLAIN


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        base64.b64encode(bytes(16)).decode(),  # 16 bytes
        base64.b64encode(bytes(31)).decode(),
        base64.b64encode(bytes(33)).decode(),
        "0x" + "00" * 31,
        "0x" + "00" * 33,
        "0x" + "zz" * 32,
        "0x" + "0" * 63,  # odd number of hex digits
        "not base64 at all!",
        base64.b64encode(bytes(32)).decode()[:-1],  # bad padding
    ],
    ids=[
        "empty",
        "blank",
        "b64-16",
        "b64-31",
        "b64-33",
        "hex-31",
        "hex-33",
        "hex-junk",
        "hex-odd",
        "junk",
        "b64-padding",
    ],
)
def test_from_text_refuses_bad_keys(text: str) -> None:
    with pytest.raises(VaultError):
        Vault.from_text(text)


@pytest.mark.parametrize("length", [0, 16, 24, 31, 33, 64])
def test_constructor_refuses_wrong_length(length: int) -> None:
    with pytest.raises(VaultError, match="32 bytes"):
        Vault(bytes(length))


def test_bad_key_message_does_not_echo_the_key() -> None:
    secret = "0x" + "ab" * 31
    with pytest.raises(VaultError) as caught:
        Vault.from_text(secret)
    assert "ab" * 31 not in str(caught.value)


def test_from_environment_reads_the_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = secrets.token_bytes(32)
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(raw).decode())
    assert Vault.from_environment().master_key == raw
    monkeypatch.setenv(MASTER_KEY_ENV, "0x" + raw.hex())
    assert Vault.from_environment().master_key == raw


@pytest.mark.parametrize("value", [None, ""])
def test_from_environment_without_a_key(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(MASTER_KEY_ENV, value)
    with pytest.raises(VaultError, match=MASTER_KEY_ENV) as caught:
        Vault.from_environment()
    assert "keys new --kind master" in str(caught.value)


def test_from_environment_with_a_malformed_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, "0x1234")
    with pytest.raises(VaultError):
        Vault.from_environment()


# ---------------------------------------------------------------------- fingerprints


def test_fingerprint_is_deterministic_and_keyed() -> None:
    raw = secrets.token_bytes(32)
    one, same = Vault(raw), Vault(raw)
    other = Vault(secrets.token_bytes(32))
    fp = one.fingerprint("resident_id", "110101199003071234")
    assert len(fp) == 32
    assert fp == same.fingerprint("resident_id", "110101199003071234")
    assert fp != other.fingerprint("resident_id", "110101199003071234")


def test_fingerprint_separates_identities() -> None:
    vault = Vault(secrets.token_bytes(32))
    base = vault.fingerprint("resident_id", "110101199003071234")
    assert base != vault.fingerprint("resident_id", "110101199003071242")
    assert base != vault.fingerprint("passport", "110101199003071234")


def test_fingerprint_reveals_neither_the_id_nor_a_plain_hash() -> None:
    import hashlib

    vault = Vault(secrets.token_bytes(32))
    number = "110101199003071234"
    fp = vault.fingerprint("resident_id", number)
    assert number.encode() not in fp
    for plain in (number, f"resident_id:{number}"):
        assert fp != hashlib.sha256(plain.encode()).digest()
    # and it is not an HMAC under the master key itself (a separate derived key)
    import hmac

    direct = hmac.new(vault.master_key, f"resident_id:{number}".encode(), hashlib.sha256)
    assert fp != direct.digest()


def test_a_stored_secret_is_sealed_for_one_purpose_under_the_master_key(vault: Vault) -> None:
    secret = secrets.token_bytes(32)
    sealed = vault.seal_secret(secret, b"webhook")
    assert is_sealed_secret(sealed) and not is_sealed_secret(secret)
    assert secret not in sealed
    assert vault.open_secret(sealed, b"webhook") == secret
    with pytest.raises(VaultError, match="does not open"):
        vault.open_secret(sealed, b"cursor")  # not movable to another use
    with pytest.raises(VaultError, match="does not open"):
        Vault(secrets.token_bytes(32)).open_secret(sealed, b"webhook")
    with pytest.raises(VaultError, match="not a sealed secret"):
        vault.open_secret(secret, b"webhook")
