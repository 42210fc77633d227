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
    return f"tenants/{tenant_id}/subjects/{subject_id}/"


def interaction_blob_key(tenant_id: str, subject_id: str, interaction_id: str) -> str:
    return f"{subject_prefix(tenant_id, subject_id)}interactions/{interaction_id}"
