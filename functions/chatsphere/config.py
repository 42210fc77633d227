"""The deployment's configuration, read from the environment once per cold start (template.yaml's Globals).

"Settings" in this codebase means a tenant's settings (models/settings.py); this is the environment."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

# Items, object versions or records an erasure removes per step of one invocation, before it continues through
# DeletionQueue (logic/deletion.CHUNK is this number). Deployed functions take it as is: the template leaves
# DELETION_CHUNK unset. The local stack's tests set a small one, so that a few items span many continuations.
DELETION_CHUNK = 1000
# Due items a retention chunk decides and commits before it acts (logic/retention.RETENTION_CHUNK); a run continues
# through RetentionQueue after each chunk.
RETENTION_CHUNK = 1000


class AwsTarget(BaseModel):
    """Where AWS calls go. Unset fields are boto3's own resolution from the environment, as in the deployed
    functions; the console command names the local stack's endpoint and dummy credentials here."""

    model_config = ConfigDict(frozen=True)

    endpoint_url: str | None = None
    region_name: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None


class Config(BaseModel):
    """Every required variable here is set by template.yaml (Globals.Function.Environment) and by the local
    stack; one with a default may be left unset (tests/infra checks both ways)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: str = "dev"
    subjects_table: str
    subject_keys_table: str
    tenants_table: str
    idempotency_table: str
    data_bucket: str
    data_key_id: str
    requests_table: str
    export_queue_url: str
    deletion_queue_url: str
    event_bus_name: str
    stack_buckets: str  # comma-separated: every bucket of the stack, never a delivery destination
    delivery_role_arn: str
    deletion_chunk: int = Field(default=DELETION_CHUNK, ge=1)
    retention_queue_url: str
    retention_chunk: int = Field(default=RETENTION_CHUNK, ge=1)
    outbox_table: str
    ledger_table: str
    ledger_bucket: str
    ledger_key_id: str
    # Retry-After of a 202, per job (the template's *RetryAfterSeconds parameters, whose defaults these are).
    retry_after_export: int = Field(default=5, ge=1)
    retry_after_deletion: int = Field(default=5, ge=1)
    retry_after_offboarding: int = Field(default=60, ge=1)
    aws: AwsTarget = AwsTarget()  # never from the environment (no variable is named AWS)

    def retry_after(self, job: str) -> int:
        """Seconds a client should wait before polling the record of a job of this request type."""
        return {
            "export": self.retry_after_export,
            "deletion": self.retry_after_deletion,
            "offboarding": self.retry_after_offboarding,
        }[job]

    @property
    def own_buckets(self) -> frozenset[str]:
        return frozenset(b for b in self.stack_buckets.split(",") if b)

    @classmethod
    def naming(cls, aws: AwsTarget, **names: str) -> Config:
        """A config for a console command that names only the resources it uses; any other name is empty, and an
        adapter built from it fails at its first AWS call, so the command checks its own names first."""
        required = {name: "" for name, field in cls.model_fields.items() if field.is_required()}
        return cls.model_validate({**required, **names, "aws": aws})


@lru_cache(maxsize=1)
def get_config() -> Config:
    return Config.model_validate({k.lower(): v for k, v in os.environ.items()})
