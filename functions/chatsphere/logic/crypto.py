"""Application-level encryption: AES-GCM under a per-subject data key (envelope encryption).

Each ciphertext is bound by its associated data to its tenant, subject and field, so a
ciphertext copied to another item or subject fails to open instead of leaking."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chatsphere.logic.ports import DataKeyStore, KeyWrapper

FORMAT = b"\x01"  # version byte, so the format can change without ambiguity
NONCE_BYTES = 12
# Every direct KMS call names its purpose in the encryption context under this key. template.yaml grants each
# function kms:Decrypt (and GenerateDataKey) for its own purposes only, by kms:EncryptionContext:purpose.
PURPOSE = "purpose"


def subject_key_context(tenant_id: str) -> dict[str, str]:
    # The KMS encryption context shows in CloudTrail: it holds the tenant and purpose only.
    return {"tenant_id": tenant_id, PURPOSE: "subject-data-key"}


def tenant_hmac_context(tenant_id: str) -> dict[str, str]:
    return {"tenant_id": tenant_id, PURPOSE: "identifier-hmac"}


class SubjectCipher:
    def __init__(self, key: bytes, tenant_id: str, subject_id: str) -> None:
        self._aead = AESGCM(key)
        self._scope = f"chatsphere/v1|{tenant_id}|{subject_id}|"

    def _aad(self, field: str) -> bytes:
        return (self._scope + field).encode()

    def seal(self, field: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return FORMAT + nonce + self._aead.encrypt(nonce, plaintext, self._aad(field))

    def open(self, field: str, sealed: bytes) -> bytes:
        if sealed[:1] != FORMAT:
            raise ValueError("unknown ciphertext format")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        return self._aead.decrypt(nonce, body, self._aad(field))

    def open_text(self, field: str, sealed: bytes) -> str:
        return self.open(field, sealed).decode()


class Keyring:
    """The subjects' ciphers: each data key read from its store and unwrapped by KMS."""

    def __init__(self, data_keys: DataKeyStore, kms: KeyWrapper) -> None:
        self.data_keys = data_keys
        self.kms = kms

    def cipher(self, tenant_id: str, subject_id: str) -> SubjectCipher | None:
        """The subject's cipher, or None when it has no key (never created, or shredded)."""
        wrapped = self.data_keys.get(tenant_id, subject_id)
        if wrapped is None:
            return None
        return SubjectCipher(self.kms.unwrap(wrapped, subject_key_context(tenant_id)), tenant_id, subject_id)

    def new(self, tenant_id: str, subject_id: str) -> tuple[SubjectCipher, bytes]:
        """A fresh data key, not stored: its cipher and its wrapped form, for the caller to store (a new profile's
        transaction stores it only if the subject has no key yet: SubjectStore.save_profile)."""
        plaintext, wrapped = self.kms.generate(subject_key_context(tenant_id))
        return SubjectCipher(plaintext, tenant_id, subject_id), wrapped

    def ensure(self, tenant_id: str, subject_id: str, now: str) -> SubjectCipher:
        """The subject's cipher, creating its data key on first use. Concurrent creators agree on one key."""
        existing = self.cipher(tenant_id, subject_id)
        if existing is not None:
            return existing
        plaintext, wrapped = self.kms.generate(subject_key_context(tenant_id))
        if self.data_keys.put_if_absent(tenant_id, subject_id, wrapped, now):
            return SubjectCipher(plaintext, tenant_id, subject_id)
        winner = self.cipher(tenant_id, subject_id)
        if winner is None:  # created and shredded in between: the subject is being deleted
            raise RuntimeError("subject key vanished during creation")
        return winner


def keyed_digest(secret: bytes, kind: str, normalised: str) -> str:
    """HMAC-SHA256 of a normalised identifier: the only form an identifier takes in any key."""
    return hmac.new(secret, f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()
