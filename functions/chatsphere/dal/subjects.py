"""SubjectsTable: profiles, interactions and identifier lookup items, one partition per subject."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from chatsphere.dal import keyspace
from chatsphere.dal.data_keys import create_key_op
from chatsphere.dal.dynamo import (
    DynamoTable,
    backstop_expiry,
    deserialise,
    serialise,
)
from chatsphere.dal.requests import request_ops, status_ops
from chatsphere.dal.tombstones import tombstone_check_op
from chatsphere.day_index import DAY_SHARDS, LATE, shard_of
from chatsphere.models.items import IdentifierKind, InteractionItem, ProfileAdmission, ProfileItem
from chatsphere.models.reconcile import StoredRef
from chatsphere.models.refs import InteractionPosition, ItemRef
from chatsphere.models.requests import ProfileRecords, RequestItem, as_records

IDENTIFIER_INDEX = "IdentifierIndex"
MEMBER_INDEX = "MemberIndex"
DAY_INDEX = "DayIndex"
LOOKUP_PREFIX = keyspace.lookup_sk("")


def interaction_index(item: InteractionItem) -> dict[str, Any]:
    """An interaction's day index entry and TTL. One that arrives two or more days after the day it occurred
    (a back-dated import) goes to the late bucket: its day may already be behind the watermark."""
    late = date.fromisoformat(item.occurred_at[:10]) <= date.fromisoformat(item.received_at[:10]) - timedelta(days=2)
    entry = keyspace.day_entry(item.tenant_id, "interactions", item.occurred_at, item.interaction_id, late)
    return {**entry, "expires_at": backstop_expiry(item.occurred_at)}


def profile_index(profile: ProfileItem) -> dict[str, Any]:
    """A profile's day index entry (from its last known activity) while it can expire, and its hold marker.
    No TTL: a profile ends by an erasure, with its receipt, never silently. Every profile is a member of its tenant
    (MemberIndex), whatever its status, until the erasure removes it."""
    attributes: dict[str, Any] = {"member_pk": keyspace.member_pk(profile.tenant_id, shard_of(profile.subject_id))}
    if profile.status not in ("erasing", "restricted"):  # neither expires: the one ends, the other awaits its hold
        at = profile.active_at or profile.created_at
        # Retention re-files a profile it found active into the late bucket (its new day may be behind the
        # watermark); a new profile's own day is never behind it.
        late = profile.active_at is not None
        attributes.update(keyspace.day_entry(profile.tenant_id, "inactive_profiles", at, profile.subject_id, late))
    if profile.legal_hold:
        attributes["held_pk"] = keyspace.held_pk(profile.tenant_id)
    return attributes


def _days(first: str, last: str) -> list[str]:
    """Every day from `first` to `last`, both included (YYYY-MM-DD)."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def item_sk(ref: ItemRef) -> str:
    """The sort key of the item a ref names (its partition is the subject's)."""
    if ref.kind == "profile":
        return keyspace.PROFILE_SK
    if ref.kind == "interaction":
        return keyspace.interaction_sk(ref.at, ref.name)
    if ref.kind == "lookup":
        return keyspace.lookup_sk(ref.name)
    if ref.kind == "activity":
        return keyspace.activity_sk(ref.at)
    return ref.name


def item_ref(tenant_id: str, subject_id: str, sk: str) -> ItemRef:
    """What the item under sort key `sk` of the subject's partition is (item_sk's inverse)."""
    if sk == keyspace.PROFILE_SK:
        return ItemRef(tenant_id, subject_id, "profile")
    if sk.startswith(keyspace.INTERACTION_PREFIX):
        occurred_at, _, interaction_id = sk.removeprefix(keyspace.INTERACTION_PREFIX).partition("#")
        return ItemRef(tenant_id, subject_id, "interaction", interaction_id, occurred_at)
    if sk.startswith(LOOKUP_PREFIX):
        return ItemRef(tenant_id, subject_id, "lookup", sk.removeprefix(LOOKUP_PREFIX))
    if sk.startswith(keyspace.ACTIVITY_PREFIX):
        return ItemRef(tenant_id, subject_id, "activity", at=sk.removeprefix(keyspace.ACTIVITY_PREFIX))
    return ItemRef(tenant_id, subject_id, "other", sk)


def item_key(ref: ItemRef) -> dict[str, str]:
    return {"pk": keyspace.subject_pk(ref.tenant_id, ref.subject_id), "sk": item_sk(ref)}


def indexed_digest(ref: ItemRef, ipk: str | None) -> str | None:
    """The keyed hash a lookup item's index key (ipk) holds; None for any other item, or an ipk not of its kind."""
    if ref.kind != "lookup" or ipk is None:
        return None
    prefix = keyspace.identifier_pk(ref.tenant_id, ref.name, "")
    return ipk.removeprefix(prefix) if ipk.startswith(prefix) else None


class DynamoSubjectStore(DynamoTable):
    def __init__(self, table_name: str, requests_table: str, keys_table: str, outbox_table: str) -> None:
        super().__init__(table_name)
        self.requests_table = requests_table  # the records of profile changes and a new one's tombstone check
        self.keys_table = keys_table  # a new subject's data key joins its profile's transaction
        self.outbox_table = outbox_table  # each record's ledger entry joins it

    # ------------------------------------------------------------ profiles
    def get_profile(self, tenant_id: str, subject_id: str) -> ProfileItem | None:
        resp = self._ddb.get_item(
            TableName=self.table_name,
            Key=serialise({"pk": keyspace.subject_pk(tenant_id, subject_id), "sk": keyspace.PROFILE_SK}),
            ConsistentRead=True,
        )
        if "Item" not in resp:
            return None
        return ProfileItem.model_validate(deserialise(resp["Item"]))

    def save_profile(
        self,
        profile: ProfileItem,
        expected_version: int | None,
        record: ProfileRecords = None,
        admission: ProfileAdmission | None = None,
    ) -> None:
        """Write the profile, its lookup items and (if given) the request record(s) of the change in one
        transaction, guarded by the version read. Raises Conflict if the profile changed since it was read.

        A new profile's admission joins the transaction: a ConditionCheck on the subject's tombstone
        (RequestsTable) and the Put of its new data key (SubjectKeysTable, if it has none): one write instead of a
        tombstone read before and a key write of its own, and a refused create leaves no key behind."""
        pk = keyspace.subject_pk(profile.tenant_id, profile.subject_id)
        item = {"pk": pk, "sk": keyspace.PROFILE_SK, **profile.model_dump(), **profile_index(profile)}
        put: dict[str, Any] = {"TableName": self.table_name, "Item": serialise(item)}
        if expected_version is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = serialise({":v": expected_version})
        ops: list[dict[str, Any]] = [{"Put": put}]
        kinds: tuple[IdentifierKind, ...] = ("email", "phone")
        for kind in kinds:
            lookup_key = {"pk": pk, "sk": keyspace.lookup_sk(kind)}
            digest = profile.lookups.get(kind)
            if digest is None:
                ops.append({"Delete": {"TableName": self.table_name, "Key": serialise(lookup_key)}})
            else:
                ipk = keyspace.identifier_pk(profile.tenant_id, kind, digest)
                lookup = {**lookup_key, "ipk": ipk, "subject_id": profile.subject_id}
                ops.append({"Put": {"TableName": self.table_name, "Item": serialise(lookup)}})
        ops.extend(request_ops(self.requests_table, self.outbox_table, *as_records(record)))
        if admission is not None:
            if expected_version is not None:
                raise ValueError("an admission is for a new profile only")
            tenant_id, subject_id = profile.tenant_id, profile.subject_id
            ops.append(
                tombstone_check_op(self.requests_table, tenant_id, admission.subject_hash, admission.reuse_deleted_id)
            )
            if admission.wrapped_key is not None:
                ops.append(
                    create_key_op(
                        self.keys_table, tenant_id, subject_id, admission.wrapped_key, admission.key_created_at
                    )
                )
        self._transact(ops)

    def restrict(self, record: RequestItem, hold_request_id: str) -> None:
        """Complete a deletion with exceptions and make its subject `restricted`, in one transaction, only while
        the legal hold it kept data for still stands (placed by `hold_request_id`), the profile is closed for this
        deletion and the record is in progress. A lift that landed first fails it (Conflict): the job then goes
        on to remove what the hold had kept. The version moves, so a lift that read the profile before re-reads."""
        profile = {
            "Update": {
                "TableName": self.table_name,
                "Key": serialise(
                    {"pk": keyspace.subject_pk(record.tenant_id, record.subject_id), "sk": keyspace.PROFILE_SK}
                ),
                "UpdateExpression": "SET #s = :restricted, version = version + :one",
                "ConditionExpression": "#s = :erasing AND deletion_request_id = :rid AND legal_hold.request_id = :hold",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": serialise(
                    {
                        ":restricted": "restricted",
                        ":erasing": "erasing",
                        ":one": 1,
                        ":rid": record.request_id,
                        ":hold": hold_request_id,
                    }
                ),
            }
        }
        completed = status_ops(self.requests_table, self.outbox_table, record, ("in_progress",))
        self._transact([profile, *completed], "the legal hold was lifted, or the deletion is no longer in progress")

    def find_subjects(self, tenant_id: str, kind: IdentifierKind, digest: str) -> list[str]:
        ipk = keyspace.identifier_pk(tenant_id, kind, digest)
        found: list[str] = []
        paginator = self._ddb.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            IndexName=IDENTIFIER_INDEX,
            KeyConditionExpression="ipk = :ipk",
            ExpressionAttributeValues=serialise({":ipk": ipk}),
        )
        for page in pages:
            found.extend(deserialise(i)["subject_id"] for i in page["Items"])
        return sorted(set(found))

    # -------------------------------------------------------- interactions
    def add_interaction(self, item: InteractionItem, accepts: str | None = None) -> None:
        """Store one interaction, in one transaction with a check that the subject is active: the
        subject's status is part of the write's own condition, so an interaction that raced a
        deactivation (or a deletion) is refused rather than stored after it.

        `accepts` names a policy version this interaction is the first to accept by continued use:
        the same transaction records it on the profile (bumping its version, so that a concurrent
        profile write re-reads rather than dropping it)."""
        pk = keyspace.subject_pk(item.tenant_id, item.subject_id)
        profile_key = serialise({"pk": pk, "sk": keyspace.PROFILE_SK})
        active = {
            "ConditionExpression": "#s = :active",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": serialise({":active": "active"}),
        }
        guard: dict[str, Any]
        if accepts is None:
            guard = {"ConditionCheck": {"TableName": self.table_name, "Key": profile_key, **active}}
        else:
            acceptance = {"accepted_at": item.occurred_at, "interaction_id": item.interaction_id}
            guard = {
                "Update": {
                    "TableName": self.table_name,
                    "Key": profile_key,
                    "UpdateExpression": "SET accepted_policies.#v = if_not_exists(accepted_policies.#v, :acc), "
                    "version = version + :one",
                    "ConditionExpression": "#s = :active",
                    "ExpressionAttributeNames": {"#s": "status", "#v": accepts},
                    "ExpressionAttributeValues": serialise({":active": "active", ":one": 1, ":acc": acceptance}),
                }
            }
        record = {
            "pk": pk,
            "sk": keyspace.interaction_sk(item.occurred_at, item.interaction_id),
            **item.model_dump(),
            **interaction_index(item),
        }
        put = {
            "Put": {
                "TableName": self.table_name,
                "Item": serialise(record),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        self._transact([guard, put], "the subject does not take interactions now, or the interaction exists")

    def list_interactions(
        self, tenant_id: str, subject_id: str, limit: int, after: InteractionPosition | None
    ) -> tuple[list[InteractionItem], InteractionPosition | None]:
        """Oldest first. Reads one item past the page so that the last page says so (no dangling cursor). A Query
        returns at most 1 MB (some 30 texts stored inline): it goes on from where DynamoDB stopped until it has the
        page and one more, or there is no more."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": serialise(
                {":pk": keyspace.subject_pk(tenant_id, subject_id), ":prefix": keyspace.INTERACTION_PREFIX}
            ),
        }
        if after is not None:
            start = ItemRef(tenant_id, subject_id, "interaction", after.interaction_id, after.occurred_at)
            query["ExclusiveStartKey"] = serialise(item_key(start))
        raw: list[dict[str, Any]] = []
        while True:
            resp = self._ddb.query(**query, Limit=limit + 1 - len(raw))
            raw += resp["Items"]
            if len(raw) > limit or "LastEvaluatedKey" not in resp:
                break
            query["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        items = [InteractionItem.model_validate(deserialise(i)) for i in raw[:limit]]
        more = len(raw) > limit
        last = InteractionPosition(items[-1].occurred_at, items[-1].interaction_id) if more and items else None
        return items, last

    # ------------------------------------------------------------ deletion
    def item_refs(self, tenant_id: str, subject_id: str, limit: int) -> list[ItemRef]:
        """Up to `limit` of everything stored for the subject (profile, lookups, interactions, markers), in sort-key
        order: interactions, lookups, and the profile last."""
        keys = self._partition_keys("pk", keyspace.subject_pk(tenant_id, subject_id), limit)
        return [item_ref(tenant_id, subject_id, k["sk"]) for k in keys]

    def delete_items(self, refs: list[ItemRef]) -> None:
        self._delete_keys([item_key(r) for r in refs])

    def strip_profile(self, tenant_id: str, subject_id: str) -> None:
        self._ddb.update_item(
            TableName=self.table_name,
            Key=serialise({"pk": keyspace.subject_pk(tenant_id, subject_id), "sk": keyspace.PROFILE_SK}),
            UpdateExpression="REMOVE sealed, lookups",
            ConditionExpression="attribute_exists(pk)",
        )

    def subject_ids(
        self, tenant_id: str, shard: int, limit: int, after: str | None = None
    ) -> tuple[list[str], str | None]:
        """Up to `limit` of the tenant's subjects in one MemberIndex shard, after the subject id `after`; and the
        last id if more may follow (None when the shard is done)."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": MEMBER_INDEX,
            "KeyConditionExpression": "member_pk = :m",
            "ExpressionAttributeValues": serialise({":m": keyspace.member_pk(tenant_id, shard)}),
            "Limit": limit,
        }
        if after is not None:
            member = keyspace.member_pk(tenant_id, shard)
            query["ExclusiveStartKey"] = serialise(
                {"member_pk": member, "pk": keyspace.subject_pk(tenant_id, after), "sk": keyspace.PROFILE_SK}
            )
        resp = self._ddb.query(**query)
        ids = [owner[1] for raw in resp["Items"] if (owner := keyspace.parse_subject_pk(deserialise(raw)["pk"]))]
        return ids, (ids[-1] if ids and "LastEvaluatedKey" in resp else None)

    def count_subjects(self, tenant_id: str) -> int:
        """How many subjects the tenant has (every status), by counting queries over MemberIndex: one call per
        shard and per 1 MB of index keys (about 10,000 subjects), never a Scan."""
        total = 0
        for shard in range(DAY_SHARDS):
            pages = self._ddb.get_paginator("query").paginate(
                TableName=self.table_name,
                IndexName=MEMBER_INDEX,
                KeyConditionExpression="member_pk = :m",
                ExpressionAttributeValues=serialise({":m": keyspace.member_pk(tenant_id, shard)}),
                Select="COUNT",
            )
            total += sum(page["Count"] for page in pages)
        return total

    def count_interactions(self, tenant_id: str, first_day: str, last_day: str) -> int:
        """Stored interactions whose occurred_at falls from `first_day` to `last_day` (YYYY-MM-DD, UTC), by counting
        queries over DayIndex: each day's DAY_SHARDS buckets, and the late bucket's (back-dated imports, what a
        legal hold kept) between the two days' bounds. One call per bucket and per 1 MB of index keys; never a Scan."""
        buckets: list[tuple[str, tuple[str, str] | None]] = [
            (keyspace.day_pk(tenant_id, "interactions", day, shard), None)
            for day in _days(first_day, last_day)
            for shard in range(DAY_SHARDS)
        ]
        span = (first_day, keyspace.day_sk_bound(last_day))  # day_sk begins with occurred_at: YYYY-MM-DDT...
        buckets += [(keyspace.day_pk(tenant_id, "interactions", LATE, shard), span) for shard in range(DAY_SHARDS)]
        total = 0
        for day_pk, between in buckets:
            query: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": DAY_INDEX,
                "KeyConditionExpression": "day_pk = :p",
                "Select": "COUNT",
            }
            values: dict[str, str] = {":p": day_pk}
            if between is not None:
                query["KeyConditionExpression"] += " AND day_sk BETWEEN :a AND :b"
                values.update({":a": between[0], ":b": between[1]})
            query["ExpressionAttributeValues"] = serialise(values)
            total += sum(page["Count"] for page in self._ddb.get_paginator("query").paginate(**query))
        return total

    def index_holds(self, tenant_id: str, kind: IdentifierKind, digest: str, subject_id: str) -> bool:
        """Whether the identifier index still maps this digest to the subject (the read-back of a deletion)."""
        return subject_id in self.find_subjects(tenant_id, kind, digest)

    # ------------------------------------------------------------ reconcile
    def scan(self) -> Iterator[StoredRef]:
        """Every item of every subject, keys, timestamps and lookup hashes only (no sealed value is read).

        A full Scan of the table: acceptable for the reconcile command, run by an operator after a restore,
        and for nothing else (every request reads one partition)."""
        names = {"#pk": "pk", "#sk": "sk", "#c": "created_at", "#r": "received_at", "#i": "ipk", "#l": "lookups"}
        pages = self._ddb.get_paginator("scan").paginate(
            TableName=self.table_name,
            ProjectionExpression=", ".join(names),
            ExpressionAttributeNames=names,
            ConsistentRead=True,
        )
        for page in pages:
            for raw in page["Items"]:
                item = deserialise(raw)
                owner = keyspace.parse_subject_pk(item["pk"])
                if owner is None:
                    continue
                ref = item_ref(*owner, item["sk"])
                written = item.get("created_at") if ref.kind == "profile" else item.get("received_at")
                yield StoredRef(
                    ref=ref,
                    written_at=written if ref.kind in ("profile", "interaction") else None,
                    digest=indexed_digest(ref, item.get("ipk")),
                    lookups=dict(item.get("lookups") or {}),
                )
