"""Powertools Logger and Metrics alone, from their own submodules: what the authorizer needs.

The X-Ray Tracer (observability.py) costs a cold start the authorizer would pay on every new container and
never use; the other handlers import observability.py, which re-exports these same two objects."""

from __future__ import annotations

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics

logger = Logger()
metrics = Metrics()
