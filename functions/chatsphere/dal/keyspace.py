"""Every key in every table and the bucket begins with the tenant, so no key of one tenant can address another's."""

from __future__ import annotations

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


def subject_prefix(tenant_id: str, subject_id: str) -> str:
    return f"{subjects_folder(tenant_id)}{subject_id}/"


def interaction_blob_key(tenant_id: str, subject_id: str, interaction_id: str) -> str:
    return f"{subject_prefix(tenant_id, subject_id)}interactions/{interaction_id}"


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


def export_package_key(tenant_id: str, subject_id: str, request_id: str) -> str:
    """Under the subject's prefix, so erasure removes packages with the rest of the subject's objects."""
    return f"{subject_prefix(tenant_id, subject_id)}exports/{request_id}.zip"


IDEMPOTENCY_SUFFIX = "#idempotency"


def idempotency_pk(tenant_id: str, subject_id: str) -> str:
    """The partition of a subject's idempotency records: deletion finds them with one Query."""
    return f"{subject_pk(tenant_id, subject_id)}{IDEMPOTENCY_SUFFIX}"


def parse_idempotency_pk(pk: str) -> tuple[str, str] | None:
    return parse_subject_pk(pk.removesuffix(IDEMPOTENCY_SUFFIX)) if pk.endswith(IDEMPOTENCY_SUFFIX) else None


def subjects_folder(tenant_id: str) -> str:
    """Where each subject of a tenant has its own prefix (subject_prefix) in the bucket."""
    return f"tenants/{tenant_id}/subjects/"


TOMBSTONE_PREFIX = "TOMB#"


def tombstone_sk(subject_hash: str) -> str:
    return f"{TOMBSTONE_PREFIX}{subject_hash}"
