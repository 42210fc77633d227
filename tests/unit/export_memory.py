"""Peak memory of one export at a given history size, measured with tracemalloc.

The subject's history is synthetic: each page is generated (and sealed under the subject's real
key) when the export asks for it, and the package goes to an upload that hashes and discards it.
So what is measured is the export's own working set, not the storage around it."""

from __future__ import annotations

import os
import tracemalloc
from datetime import UTC, datetime, timedelta

from chatsphere.logic.crypto import Keyring, SubjectCipher
from chatsphere.logic.export import run_export
from chatsphere.logic.requests import new_request
from chatsphere.models.common import iso
from chatsphere.models.export import ExportJob
from chatsphere.models.items import InteractionItem, ProfileItem, TenantItem
from chatsphere.models.refs import InteractionPosition
from chatsphere.models.requests import ExportDetails, ExportFormat, ExportResult, RequestItem
from chatsphere.models.settings import TenantSettings
from tests.unit.fakes import FakeBlobStore, FakeSubjectStore, FakeUpload, World

TENANT, SUBJECT = "tbench000000000000", "u-bench"
START = datetime(2024, 1, 1, tzinfo=UTC)


class _History(FakeSubjectStore):
    """A subject with `count` interactions, each made when a page asks for it."""

    def __init__(self, count: int, key: bytes) -> None:
        super().__init__()
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
        self, tenant_id: str, subject_id: str, limit: int, after: InteractionPosition | None
    ) -> tuple[list[InteractionItem], InteractionPosition | None]:
        start = int(after.interaction_id, 16) + 1 if after else 0
        items = [self._item(n) for n in range(start, min(start + limit, self.count))]
        more = start + limit < self.count
        return items, InteractionPosition(items[-1].occurred_at, items[-1].interaction_id) if more else None


class _DiscardingBlobs(FakeBlobStore):
    def open_upload(self, key: str, kind: str) -> FakeUpload:
        return _DiscardingUpload(self, key, kind)


class _DiscardingUpload(FakeUpload):
    """Hashes and counts the package instead of keeping it."""

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def close(self) -> str | None:
        self.closed = True
        return None


def _world(count: int, fmt: ExportFormat) -> tuple[World, RequestItem]:
    history = _History(count, os.urandom(32))
    world = World(subjects=history)
    world.keyring = _FixedKeyring(history.cipher)
    world.blobs = _DiscardingBlobs()
    world.tenants.tenants[TENANT] = TenantItem(
        tenant_id=TENANT, name="Bench", created_at=iso(START), hmac_key_wrapped=b"x"
    )
    request = new_request(TenantSettings(), TENANT, SUBJECT, START, ExportDetails(format=fmt))
    world.requests.create(request)
    return world, request


class _FixedKeyring(Keyring):
    """The subject's one key, without KMS."""

    def __init__(self, cipher: SubjectCipher) -> None:
        self._cipher = cipher

    def cipher(self, tenant_id: str, subject_id: str) -> SubjectCipher:
        return self._cipher


def export_peak(count: int, fmt: ExportFormat = "json") -> int:
    """Bytes of peak traced memory while exporting `count` interactions."""
    world, request = _world(count, fmt)
    job, ports = ExportJob.for_request(request), world.export
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        done = run_export(ports, job, START + timedelta(days=1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert done is not None and done.status == "completed" and isinstance(done.result, ExportResult)
    assert done.result.interaction_count == count
    return peak
