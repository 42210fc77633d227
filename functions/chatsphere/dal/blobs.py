"""The data bucket. Interaction bodies written here are already AES-GCM ciphertext; SSE-KMS applies on top.

Export packages are the one exception: they are the subject's own copy, so they are plaintext inside
the zip, under SSE-KMS, below the subject's prefix (erasure removes them), and they expire."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chatsphere.dal.clients import client, client_as
from chatsphere.errors import JobError
from chatsphere.models.reconcile import BlobVersion

PART_BYTES = 8 * 1024 * 1024  # S3's minimum part is 5 MiB; 8 MiB keeps a 1 GB package under 128 parts
MAX_PARTS = 10_000  # S3's limit on a multipart upload: 80 GB of package at PART_BYTES
MISSING = ("NoSuchBucket",)
DENIED = ("AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccountProblem")
TOO_LARGE = ("EntityTooLarge", "InvalidRequest")  # a copy source over 5 GiB is an InvalidRequest


def delivery_error(error: ClientError) -> JobError | None:
    """What a delivery's ClientError means for the record, if it is one no retry can mend (None: retry it).
    The messages name no bucket: a destination URI is the tenant's text."""
    code = error.response.get("Error", {}).get("Code", "")
    if code in MISSING:
        return JobError("destination_not_found", "the delivery destination's bucket does not exist", permanent=True)
    if code in DENIED:
        return JobError("access_denied", "the delivery role may not write to the destination's bucket", permanent=True)
    if code in TOO_LARGE:
        return JobError("package_too_large", "the package is larger than S3 can copy (5 GiB)", permanent=True)
    return None


class S3BlobStore:
    def __init__(self, bucket: str, delivery_role_arn: str = "") -> None:
        self.bucket = bucket
        self.delivery_role_arn = delivery_role_arn  # deliveries write under this role alone

    @property
    def _s3(self) -> Any:
        return client("s3")

    def put(self, key: str, data: bytes) -> str | None:
        resp = self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ServerSideEncryption="aws:kms")
        version: str | None = resp.get("VersionId")
        return version

    def get(self, key: str) -> bytes:
        body: bytes = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def open_upload(self, key: str, kind: str) -> MultipartUpload:
        """`kind` becomes the object's chatsphere-kind tag, which the bucket's lifecycle rules expire by."""
        return MultipartUpload(self._s3, self.bucket, key, kind)

    def presign_get(self, key: str, expires_in: int, filename: str) -> str:
        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=expires_in,
        )
        return url

    def deliver(self, key: str, destination_uri: str, filename: str) -> str:
        """Copy a package to another controller's bucket (an allow-listed s3:// URI); returns the target URI.

        The copy runs under the delivery role, which IAM lets write to portability buckets only, never
        into this stack's buckets; the bucket it writes to is the destination's, and no other."""
        bucket, _, prefix = destination_uri.removeprefix("s3://").partition("/")
        if bucket == self.bucket:
            raise PermissionError("a delivery never goes into the service's own bucket")
        target = f"{prefix.rstrip('/')}/{filename}" if prefix else filename
        try:
            s3 = client_as("s3", self.delivery_role_arn, "export-delivery") if self.delivery_role_arn else self._s3
            s3.copy_object(
                Bucket=bucket,
                Key=target,
                CopySource={"Bucket": self.bucket, "Key": key},
                ServerSideEncryption="aws:kms",
                ACL="bucket-owner-full-control",
            )
        except ClientError as error:  # AssumeRole refused is an AccessDenied too
            mapped = delivery_error(error)
            if mapped is None:
                raise
            raise mapped from None  # the botocore message may quote the bucket and key
        return f"s3://{bucket}/{target}"

    def delete_version(self, key: str, version_id: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=key, VersionId=version_id)

    def versions(self, prefix: str, limit: int) -> list[tuple[str, str, bool]]:
        """Up to `limit` (key, version id, is a delete marker) under `prefix`: every version, every marker."""
        found: list[tuple[str, str, bool]] = []
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while len(found) < limit:
            resp = self._s3.list_object_versions(**args, MaxKeys=min(1000, limit - len(found)))
            found += [(v["Key"], v["VersionId"], False) for v in resp.get("Versions", [])]
            found += [(m["Key"], m["VersionId"], True) for m in resp.get("DeleteMarkers", [])]
            if not resp.get("IsTruncated"):
                break
            args.update(KeyMarker=resp["NextKeyMarker"], VersionIdMarker=resp["NextVersionIdMarker"])
        return found[:limit]

    def version_counts(self, prefix: str) -> tuple[int, int]:
        """(objects, versions and delete markers) under `prefix`, counted a page at a time (S3 lists by key, so
        a key's versions are adjacent): memory stays flat however many there are."""
        objects = versions = 0
        last: str | None = None
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            for entry in sorted([*page.get("Versions", []), *page.get("DeleteMarkers", [])], key=lambda v: v["Key"]):
                versions += 1
                objects += entry["Key"] != last
                last = entry["Key"]
        return objects, versions

    def subfolders(self, prefix: str) -> list[str]:
        """The names directly under `prefix` in any version or delete marker (ListObjectVersions, Delimiter /)."""
        names: set[str] = set()
        pages = self._s3.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        )
        for page in pages:
            names.update(p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", []))
        return sorted(n for n in names if n)

    def dated_versions(self, prefix: str) -> list[BlobVersion]:
        """Every version and delete marker under `prefix`, with its LastModified."""
        found: list[BlobVersion] = []
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            found += [BlobVersion(v["Key"], v["VersionId"], False, v["LastModified"]) for v in page.get("Versions", [])]
            found += [
                BlobVersion(m["Key"], m["VersionId"], True, m["LastModified"]) for m in page.get("DeleteMarkers", [])
            ]
        return found

    def delete_versions(self, versions: list[tuple[str, str]]) -> None:
        """Each (key, version id) removed for good: DeleteObjects, up to 1000 a call."""
        for start in range(0, len(versions), 1000):
            chunk = versions[start : start + 1000]
            resp = self._s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k, "VersionId": v} for k, v in chunk], "Quiet": True},
            )
            if resp.get("Errors"):
                raise RuntimeError(f"S3 kept {len(resp['Errors'])} object versions; the job will retry")


class MultipartUpload:
    """A write-only file object over an S3 multipart upload: memory holds at most one part. The upload begins with
    the first full part; a package smaller than one part is one PutObject.

    close() completes the upload; abort() (or an exception inside `with`) discards it."""

    def __init__(self, s3: Any, bucket: str, key: str, kind: str) -> None:
        self._s3, self.bucket, self.key = s3, bucket, key
        self._object = {"ServerSideEncryption": "aws:kms", "ContentType": "application/zip"}
        self._tagging = f"chatsphere-kind={kind}"
        self._upload_id: str | None = None
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self.size = 0

    # zipfile asks these of the file object it writes to
    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        return None

    def write(self, data: bytes) -> int:
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= PART_BYTES:
            self._send(bytes(self._buffer[:PART_BYTES]))
            del self._buffer[:PART_BYTES]
        return len(data)

    def _send(self, chunk: bytes) -> None:
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise JobError("package_too_large", f"the package is larger than {MAX_PARTS} upload parts", permanent=True)
        if self._upload_id is None:
            self._upload_id = self._s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, Tagging=self._tagging, **self._object
            )["UploadId"]
        resp = self._s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=chunk
        )
        self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})

    def close(self) -> str | None:
        if self._upload_id is None:  # under one part: a single PutObject
            resp = self._s3.put_object(
                Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer), Tagging=self._tagging, **self._object
            )
        else:
            if self._buffer:
                self._send(bytes(self._buffer))
            resp = self._s3.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        self._buffer.clear()
        version: str | None = resp.get("VersionId")
        return version

    def abort(self) -> None:
        if self._upload_id is not None:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
