"""KMS envelope: data keys are generated and unwrapped under the service's CMK, bound to an encryption context."""

from __future__ import annotations

from typing import Any

from chatsphere.dal.clients import client


class KmsKeyWrapper:
    def __init__(self, key_id: str) -> None:
        self.key_id = key_id

    @property
    def _kms(self) -> Any:
        return client("kms")

    def generate(self, context: dict[str, str]) -> tuple[bytes, bytes]:
        resp = self._kms.generate_data_key(KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=context)
        return bytes(resp["Plaintext"]), bytes(resp["CiphertextBlob"])

    def unwrap(self, wrapped: bytes, context: dict[str, str]) -> bytes:
        resp = self._kms.decrypt(KeyId=self.key_id, CiphertextBlob=wrapped, EncryptionContext=context)
        return bytes(resp["Plaintext"])
