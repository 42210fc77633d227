"""Envelope encryption: per-subject data keys, ciphertexts bound to tenant, subject and field."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.exceptions import InvalidTag

from chatsphere.logic.crypto import SubjectCipher, keyed_digest
from tests.unit.fakes import World

NOW = "2025-03-01T12:00:00.000000Z"


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


def test_a_sealed_value_opens_to_what_was_sealed(key: bytes) -> None:
    cipher = SubjectCipher(key, "t1", "u-1")
    sealed = cipher.seal("email", b"ada@example.org")
    assert cipher.open_text("email", sealed) == "ada@example.org"
    # and the same cipher rebuilt from the same key (another request) opens it too
    assert SubjectCipher(key, "t1", "u-1").open_text("email", sealed) == "ada@example.org"


def test_sealing_hides_the_value_and_never_repeats(key: bytes) -> None:
    cipher = SubjectCipher(key, "t1", "u-1")
    first, second = cipher.seal("name", b"Ada Lovelace"), cipher.seal("name", b"Ada Lovelace")
    assert b"Ada" not in first
    assert b"Lovelace" not in first
    assert first != second  # a fresh nonce each time: equal values do not show as equal ciphertexts


@pytest.mark.parametrize(
    ("tenant", "subject", "field"),
    [
        pytest.param("t1", "u-2", "email", id="another-subject"),
        pytest.param("t2", "u-1", "email", id="another-tenant"),
        pytest.param("t1", "u-1", "name", id="another-field"),
        pytest.param("t1", "u-1|email", "", id="ambiguous-split"),
    ],
)
def test_a_ciphertext_moved_elsewhere_does_not_open_even_under_the_same_key(
    key: bytes, tenant: str, subject: str, field: str
) -> None:
    # Given a value sealed for tenant t1, subject u-1, field email
    sealed = SubjectCipher(key, "t1", "u-1").seal("email", b"ada@example.org")
    # When it is copied to another place and opened there, with the very same data key
    # Then it fails to open rather than showing up as that place's value
    with pytest.raises(InvalidTag):
        SubjectCipher(key, tenant, subject).open_text(field, sealed)


def test_a_ciphertext_sealed_for_one_interaction_does_not_open_as_another(key: bytes) -> None:
    cipher = SubjectCipher(key, "t1", "u-1")
    sealed = cipher.seal("interaction:" + "a" * 32, b"first message")
    with pytest.raises(InvalidTag):
        cipher.open_text("interaction:" + "b" * 32, sealed)


def test_a_tampered_ciphertext_does_not_open(key: bytes) -> None:
    cipher = SubjectCipher(key, "t1", "u-1")
    sealed = bytearray(cipher.seal("name", b"Ada"))
    sealed[-1] ^= 0x01
    with pytest.raises(InvalidTag):
        cipher.open_text("name", bytes(sealed))


def test_a_ciphertext_of_an_unknown_format_is_refused(key: bytes) -> None:
    cipher = SubjectCipher(key, "t1", "u-1")
    sealed = cipher.seal("name", b"Ada")
    with pytest.raises(ValueError, match="format"):
        cipher.open_text("name", b"\x02" + sealed[1:])


def test_another_subjects_key_does_not_open_a_value() -> None:
    sealed = SubjectCipher(os.urandom(32), "t1", "u-1").seal("name", b"Ada")
    with pytest.raises(InvalidTag):
        SubjectCipher(os.urandom(32), "t1", "u-1").open_text("name", sealed)


# ---------------------------------------------------------------- data keys
def test_each_subject_gets_its_own_data_key_once() -> None:
    # Given a tenant with no subjects
    world = World()
    tenant = world.new_tenant()[0]
    # When two subjects are given ciphers, the first one twice
    first = world.keyring.ensure(tenant, "u-1", NOW)
    again = world.keyring.ensure(tenant, "u-1", NOW)
    other = world.keyring.ensure(tenant, "u-2", NOW)
    # Then each subject has exactly one stored (wrapped) key, and they differ
    assert set(world.data_keys.rows) == {(tenant, "u-1"), (tenant, "u-2")}
    assert world.data_keys.rows[(tenant, "u-1")] != world.data_keys.rows[(tenant, "u-2")]
    # and the second call reused the first key: what one seals, the other opens
    assert again.open_text("name", first.seal("name", b"Ada")) == "Ada"
    # while the other subject's key does not open it, even placed under u-1's scope
    sealed = first.seal("name", b"Ada")
    with pytest.raises(InvalidTag):
        other.open_text("name", sealed)


def test_the_stored_key_is_wrapped_not_the_data_key_itself() -> None:
    world = World()
    tenant = world.new_tenant()[0]
    cipher = world.keyring.ensure(tenant, "u-1", NOW)
    wrapped = world.data_keys.rows[(tenant, "u-1")]
    # the data key that seals is not what the key table holds
    sealed = cipher.seal("name", b"Ada")
    for candidate in (wrapped, wrapped[:32], wrapped[-32:]):
        with pytest.raises((InvalidTag, ValueError)):
            SubjectCipher(candidate, tenant, "u-1").open_text("name", sealed)


def test_a_subject_without_a_key_has_no_cipher() -> None:
    world = World()
    tenant = world.new_tenant()[0]
    assert world.keyring.cipher(tenant, "u-1") is None
    world.keyring.ensure(tenant, "u-1", NOW)
    world.data_keys.destroy(tenant, "u-1")
    assert world.keyring.cipher(tenant, "u-1") is None


# ---------------------------------------------------------------- identifier digests
def test_identifier_digests_are_keyed_per_tenant_and_per_kind() -> None:
    one, two = os.urandom(32), os.urandom(32)
    digest = keyed_digest(one, "email", "ada@example.org")
    assert digest == keyed_digest(one, "email", "ada@example.org")
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert digest != keyed_digest(two, "email", "ada@example.org")  # another tenant's secret
    assert digest != keyed_digest(one, "phone", "ada@example.org")
    assert "ada" not in digest
    # not a plain hash that anyone could compute from a guessed address
    for plain in ("ada@example.org", "email:ada@example.org"):
        assert digest != hashlib.sha256(plain.encode()).hexdigest()
