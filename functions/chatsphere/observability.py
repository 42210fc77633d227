"""Powertools Logger, Tracer and Metrics: module-level singletons, configured from POWERTOOLS_* variables.

Logger and Metrics are built in telemetry.py (the authorizer imports that alone); these are the same objects."""

from __future__ import annotations

import hashlib
import logging

from aws_lambda_powertools.tracing import Tracer

from chatsphere.telemetry import logger, metrics

__all__ = ["logger", "metrics", "ref", "tracer"]

# AWS calls are the service's only outgoing calls, all through botocore: patch it alone. Patching everything the
# X-Ray SDK knows imports requests, urllib3's and httplib's wrappers too, on every cold start.
tracer = Tracer(patch_modules=("botocore",))

# Powertools' own DEBUG lines quote each route's arguments, request bodies included: never create them.
logging.getLogger("aws_lambda_powertools.event_handler").setLevel(logging.INFO)


def ref(value: str) -> str:
    """A short, stable stand-in for an identifier in logs: correlatable, never the value itself."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]
