"""RightsFunction: the routes of the rights a tenant serves from records, each capability's a Router of its own:
request records, export requests (the job runs in ExportFunction), tenant settings, policy versions, retention runs,
daily analytics, the evidence ledger's proofs, the request metrics, the record of processing and the tenant's
offboarding."""

from __future__ import annotations

from chatsphere.handlers import (
    analytics_daily,
    export_requests,
    ledger_proofs,
    offboarding_requests,
    policies,
    processing,
    reports,
    requests,
    retention_runs,
    settings,
)
from chatsphere.handlers.http import api_handler, make_resolver

app = make_resolver()
for capability in (
    export_requests,
    requests,
    settings,
    policies,
    retention_runs,
    analytics_daily,
    ledger_proofs,
    reports,
    offboarding_requests,
    processing,
):
    app.include_router(capability.router)

lambda_handler = api_handler(app)
