"""DynamoDB's key layout: every key in every table begins with the tenant, so no key of one tenant can address
another's. The bucket's layout, which logic needs too, is logic/object_keys.py; the day index's shards and late
bucket, which both plan by, are chatsphere/day_index.py."""

from __future__ import annotations

from chatsphere.day_index import LATE, shard_of

INTERACTION_PREFIX = "I#"
PROFILE_SK = "PROFILE"
TENANT_SK = "TENANT"


def tenant_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}"


def subject_pk(tenant_id: str, subject_id: str) -> str:
    """One partition holds all of one subject's data within a tenant: export and erasure are one Query."""
    return f"T#{tenant_id}#S#{subject_id}"


def parse_subject_pk(pk: str) -> tuple[str, str] | None:
    """(tenant, subject) of a subject partition key T#<tenant>#S#<subject>; None for any other key."""
    tenant, sep, subject = pk.removeprefix("T#").partition("#S#")
    if not pk.startswith("T#") or not sep or not tenant or not subject:
        return None
    return tenant, subject


def interaction_sk(occurred_at: str, interaction_id: str) -> str:
    return f"{INTERACTION_PREFIX}{occurred_at}#{interaction_id}"


def lookup_sk(kind: str) -> str:
    return f"LOOKUP#{kind}"


def identifier_pk(tenant_id: str, kind: str, digest: str) -> str:
    """The lookup index key holds a keyed hash, never the raw identifier."""
    return f"T#{tenant_id}#{kind}#{digest}"


def api_key_sk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


REQUEST_PREFIX = "R#"
SETTINGS_SK = "SETTINGS"
POLICY_PREFIX = "POLICY#"


def request_sk(request_id: str) -> str:
    return f"{REQUEST_PREFIX}{request_id}"


def policy_sk(effective_at: str, version: str) -> str:
    """Sorted by effective time, so the version in force at t is one Query (sk <= t, newest first)."""
    return f"{POLICY_PREFIX}{effective_at}#{version}"


def policy_version_sk(version: str) -> str:
    """A marker item that makes a version id unique per tenant."""
    return f"POLICYVERSION#{version}"


IDEMPOTENCY_SUFFIX = "#idempotency"


def idempotency_pk(tenant_id: str, subject_id: str) -> str:
    """The partition of a subject's idempotency records: deletion finds them with one Query."""
    return f"{subject_pk(tenant_id, subject_id)}{IDEMPOTENCY_SUFFIX}"


def parse_idempotency_pk(pk: str) -> tuple[str, str] | None:
    return parse_subject_pk(pk.removesuffix(IDEMPOTENCY_SUFFIX)) if pk.endswith(IDEMPOTENCY_SUFFIX) else None


TOMBSTONE_PREFIX = "TOMB#"


def tombstone_sk(subject_hash: str) -> str:
    return f"{TOMBSTONE_PREFIX}{subject_hash}"


# ---------------------------------------------------------------- the day index (retention and analytics)
# Items that retention or analytics must find by day carry day_pk/day_sk, which put them in a sparse DayIndex:
#   day_pk = T#<tenant>#D#<category>#<YYYY-MM-DD>#<shard>   the items of one category whose time falls on that day
#   day_pk = T#<tenant>#D#<category>#late#<shard>           items written after their day may have been swept
#                                                            (back-dated imports, and what a legal hold kept)
#   day_sk = <ISO time>#<id>                                  so a Query can stop at a cutoff time
# A category's days are queried once each, oldest first, after a per-tenant watermark; the late bucket is read
# on every run, up to the cutoff only. Shards spread one busy day over several index partitions.
DAY_CATEGORIES = {
    "interactions": "I",
    "inactive_profiles": "P",
    "export_packages": "X",
    "closed_requests": "R",
    "deleted_subjects": "E",  # tombstones the orphan sweep has yet to visit (logic/sweep.py), late bucket only
}


def day_pk(tenant_id: str, category: str, day: str, shard: int) -> str:
    """`day` is YYYY-MM-DD, or LATE."""
    return f"T#{tenant_id}#D#{DAY_CATEGORIES[category]}#{day}#{shard}"


def day_sk(at: str, item_id: str) -> str:
    return f"{at}#{item_id}"


def day_sk_bound(cutoff: str) -> str:
    """The largest day_sk of an item whose time is at or before `cutoff` ('#' sorts before '~')."""
    return f"{cutoff}~"


def day_entry(tenant_id: str, category: str, at: str, item_id: str, late: bool = False) -> dict[str, str]:
    """The index attributes of one item: its day's bucket (or the late bucket) and its sort key."""
    bucket = LATE if late else at[:10]
    return {"day_pk": day_pk(tenant_id, category, bucket, shard_of(item_id)), "day_sk": day_sk(at, item_id)}


def member_pk(tenant_id: str, shard: int) -> str:
    """Every profile carries member_pk (MemberIndex): a tenant's subjects are a Query per shard, never a Scan (the
    offboarding job walks them; the record of processing counts them). Shards as the day index's (shard_of)."""
    return f"T#{tenant_id}#M#{shard}"


def held_pk(tenant_id: str) -> str:
    """Profiles under a legal hold carry held_pk (sparse HoldIndex): a tenant's holds are one Query."""
    return f"T#{tenant_id}#HOLDS"


ACTIVITY_PREFIX = "ACTIVITY#"


def activity_sk(occurred_at: str) -> str:
    """A marker retention leaves in a subject's partition when it removes interactions: the time of the latest
    it removed, so that a profile's inactivity is still measured from it once the interactions are gone."""
    return f"{ACTIVITY_PREFIX}{occurred_at}"


WATERMARK_PREFIX = "WATERMARK#"
RUN_PREFIX = "RUN#"
ANALYTICS_PREFIX = "DAY#"


def watermark_sk(category: str) -> str:
    return f"{WATERMARK_PREFIX}{category}"


def run_sk(run_id: str) -> str:
    return f"{RUN_PREFIX}{run_id}"


def analytics_sk(day: str) -> str:
    return f"{ANALYTICS_PREFIX}{day}"


# ---------------------------------------------------------------- the evidence ledger (dal/ledger.py)
OUTBOX_PREFIX = "O#"  # OutboxTable, under tenant_pk: O#<time>#<entry id>, in the order the actions happened
LEDGER_HEAD_SK = "HEAD"
ENTRY_PREFIX = "E#"  # a leaf: E#<seq>
SIGNED_PREFIX = "H#"  # a signed tree head: H#<size>
MARK_PREFIX = "I#"  # an entry id appended: I#<entry id>
AFTER_ALL = "~"  # sorts after every digit: the end of an E# or H# range


def outbox_sk(at: str, entry_id: str) -> str:
    return f"{OUTBOX_PREFIX}{at}#{entry_id}"


def ledger_pk(tenant_id: str) -> str:
    """A tenant's tree: its head, leaves, marks and signed heads."""
    return f"T#{tenant_id}#L"


def ledger_nodes_pk(tenant_id: str) -> str:
    """A tenant's perfect subtrees' hashes: <level>#<index>."""
    return f"T#{tenant_id}#N"


def numbered_sk(prefix: str, number: int) -> str:
    return f"{prefix}{number:012d}"


def node_sk(level: int, index: int) -> str:
    return f"{level:02d}#{index:012d}"


def entry_type_pk(tenant_id: str, type_: str) -> str:
    """TypeIndex: a tenant's entries of one type."""
    return f"T#{tenant_id}#Y#{type_}"


def entry_request_pk(tenant_id: str, request_id: str) -> str:
    """RequestIndex: a request's entries."""
    return f"T#{tenant_id}#R#{request_id}"


# ---------------------------------------------------------------- request metrics (dal/requests.py)
METRICS_PREFIX = "M#"  # RequestsTable, under tenant_pk: M#<YYYY-MM-DD>, the counts of a day's requests


def metrics_sk(day: str) -> str:
    return f"{METRICS_PREFIX}{day}"


# ---------------------------------------------------------------- offboarding (dal/offboarding.py)
ONCE_PREFIX = "ONCE#"  # RequestsTable, under tenant_pk: ONCE#<name>, the one open request of that name (its id)
OFFBOARDING_SK = "OFFBOARDING"  # RequestsTable, under tenant_pk: the tenant's one offboarding (its request id)
PACKAGE_LINE_PREFIX = "OB#"  # RequestsTable, under tenant_pk: OB#<request id>#<subject id>, a package's line


def package_line_sk(request_id: str, subject_id: str) -> str:
    return f"{PACKAGE_LINE_PREFIX}{request_id}#{subject_id}"


TENANT_REGISTRY = "tenants"  # the TENANT item's `registry` attribute: TenantRegistry lists tenants, no Scan
