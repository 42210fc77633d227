"""Peak memory of one export at a given history size, measured with tracemalloc.

The subject's history is synthetic: each page is generated (and sealed under the subject's real
key) when the export asks for it, and the package goes to an upload that hashes and discards it.
So what is measured is the export's own working set, not the storage around it."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

from chatsphere.dal import keys
from chatsphere.logic.crypto import SubjectCipher
from chatsphere.logic.export import run_export
from chatsphere.logic.ports import Ports
from chatsphere.models.common import iso
from chatsphere.models.items import InteractionItem, ProfileItem, RequestItem, TenantItem
from chatsphere.models.settings import TenantSettings

TENANT, SUBJECT = "tbench000000000000", "u-bench"
START = datetime(2024, 1, 1, tzinfo=UTC)


class _Key:
    """KMS and the key table, for one subject with one fixed key."""

    def __init__(self) -> None:
        self.key = os.urandom(32)

    def get(self, tenant_id: str, subject_id: str) -> bytes:
        return b"wrapped"

    def unwrap(self, wrapped: bytes, context: dict[str, str]) -> bytes:
        return self.key


class _History:
    """A subject with `count` interactions, each made when a page asks for it."""

    def __init__(self, count: int, key: bytes) -> None:
        self.count = count
        self.cipher = SubjectCipher(key, TENANT, SUBJECT)
        self.cipher_profile = self.cipher.seal("name", b'"Ada Bench"')

    def get_profile(self, tenant_id: str, subject_id: str) -> ProfileItem:
        now = iso(START)
        return ProfileItem(
            tenant_id=TENANT, subject_id=SUBJECT, created_at=now, updated_at=now, sealed={"name": self.cipher_profile}
        )

    def _item(self, n: int) -> InteractionItem:
        interaction_id = f"{n:032x}"
        text = f"message {n}: " + "lorem ipsum dolor sit amet " * 8
        at = iso(START + timedelta(seconds=n))
        return InteractionItem(
            tenant_id=TENANT,
            subject_id=SUBJECT,
            interaction_id=interaction_id,
            conversation_id=f"c-{n // 20}",
            role="customer" if n % 2 else "agent",
            occurred_at=at,
            received_at=at,
            text_bytes=len(text),
            text_sealed=self.cipher.seal(f"interaction:{interaction_id}", text.encode()),
        )

    def list_interactions(
        self, tenant_id: str, subject_id: str, limit: int, after_sk: str | None
    ) -> tuple[list[InteractionItem], str | None]:
        start = int(after_sk.rsplit("#", 1)[1], 16) + 1 if after_sk else 0
        items = [self._item(n) for n in range(start, min(start + limit, self.count))]
        more = start + limit < self.count
        return items, keys.interaction_sk(items[-1].occurred_at, items[-1].interaction_id) if more else None


class _DiscardingUpload:
    def __init__(self) -> None:
        self.size, self.sha256 = 0, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.size += len(data)
        self.sha256.update(data)
        return len(data)

    def flush(self) -> None: ...
    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None: ...
    def abort(self) -> None: ...


class _Blobs:
    def open_upload(self, key: str, kind: str) -> _DiscardingUpload:
        return _DiscardingUpload()


class _Tenants:
    def get_settings(self, tenant_id: str) -> TenantSettings:
        return TenantSettings()

    def get_tenant(self, tenant_id: str) -> TenantItem:
        return TenantItem(tenant_id=TENANT, name="Bench", created_at=iso(START), hmac_key_wrapped=b"x")


class _Requests:
    def __init__(self, item: RequestItem) -> None:
        self.item = item

    def get(self, tenant_id: str, request_id: str) -> RequestItem:
        return self.item

    def save(self, item: RequestItem, expected_status: tuple[str, ...]) -> None:
        assert self.item.status in expected_status
        self.item = item


def _ports(count: int) -> tuple[Ports, RequestItem]:
    key = _Key()
    request = RequestItem(
        tenant_id=TENANT,
        request_id="r" + "0" * 28,
        type="export",
        subject_id=SUBJECT,
        status="received",
        received_at=iso(START),
        due_at=iso(START + timedelta(days=30)),
        details={"format": "json"},
    )
    unused: Any = None
    ports = Ports(
        subjects=_History(count, key.key),  # type: ignore[arg-type]
        subject_keys=key,  # type: ignore[arg-type]
        kms=key,  # type: ignore[arg-type]
        blobs=_Blobs(),  # type: ignore[arg-type]
        tenants=_Tenants(),  # type: ignore[arg-type]
        hmac_key=unused,
        requests=_Requests(request),  # type: ignore[arg-type]
        export_jobs=unused,
        events=unused,
    )
    return ports, request


def export_peak(count: int, fmt: str = "json") -> int:
    """Bytes of peak traced memory while exporting `count` interactions."""
    ports, request = _ports(count)
    request.details["format"] = fmt
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        done = run_export(ports, TENANT, request.request_id, START + timedelta(days=1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert done is not None and done.status == "completed" and done.result is not None
    assert done.result["interaction_count"] == count
    return peak
