"""The bucket's layout: every object key begins with the tenant, and each subject's objects share one prefix, so an
erasure removes them all by that prefix (DynamoDB's keys are dal/keyspace.py's)."""

from __future__ import annotations


def subjects_folder(tenant_id: str) -> str:
    """Where each subject of a tenant has its own prefix (subject_prefix) in the bucket."""
    return f"tenants/{tenant_id}/subjects/"


def subject_prefix(tenant_id: str, subject_id: str) -> str:
    return f"{subjects_folder(tenant_id)}{subject_id}/"


def interaction_blob_key(tenant_id: str, subject_id: str, interaction_id: str) -> str:
    return f"{subject_prefix(tenant_id, subject_id)}interactions/{interaction_id}"


def export_package_key(tenant_id: str, subject_id: str, request_id: str) -> str:
    """Under the subject's prefix, so erasure removes packages with the rest of the subject's objects."""
    return f"{subject_prefix(tenant_id, subject_id)}exports/{request_id}.zip"


def offboarding_prefix(tenant_id: str, request_id: str) -> str:
    """An offboarding's return: each subject's package and the manifest, apart from the subjects' own prefixes (the
    packages outlive each subject's erasure until the offboarding removes them)."""
    return f"tenants/{tenant_id}/offboarding/{request_id}/"
