"""Powertools Logger, Tracer and Metrics: module-level singletons, configured from POWERTOOLS_* variables."""

from __future__ import annotations

import hashlib
import logging

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# Powertools' own DEBUG lines quote each route's arguments, request bodies included: never create them.
logging.getLogger("aws_lambda_powertools.event_handler").setLevel(logging.INFO)


def ref(value: str) -> str:
    """A short, stable stand-in for an identifier in logs: correlatable, never the value itself."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]
