"""The deployment's configuration, read from the environment once per cold start (template.yaml's Globals).

"Settings" in this codebase means a tenant's settings (models/settings.py); this is the environment."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict


class Config(BaseModel):
    """Every variable here is set by template.yaml (Globals.Function.Environment) and by the local stack."""

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

    @property
    def own_buckets(self) -> frozenset[str]:
        return frozenset(b for b in self.stack_buckets.split(",") if b)


@lru_cache(maxsize=1)
def get_config() -> Config:
    return Config.model_validate({k.lower(): v for k, v in os.environ.items()})
