"""The data bucket. Bodies written here are already AES-GCM ciphertext; SSE-KMS applies on top."""

from __future__ import annotations

from typing import Any

from chatsphere.dal.clients import client


class S3BlobStore:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    @property
    def _s3(self) -> Any:
        return client("s3")

    def put(self, key: str, data: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ServerSideEncryption="aws:kms")

    def get(self, key: str) -> bytes:
        body: bytes = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body
