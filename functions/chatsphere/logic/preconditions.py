"""Conditional requests (RFC 9110): a versioned resource's ETag, and If-Match as the write's own condition.

The ETag is the stored version, a counter every write of the resource increments, so it is a strong validator.
A write with If-Match reads the version, checks it here, and writes conditioned on that same version (a
DynamoDB ConditionExpression): a writer that lost the race fails the condition, reads again and gets 412."""

from __future__ import annotations

import re
from typing import Literal

from chatsphere.errors import PreconditionFailed
from chatsphere.models.common import worded

ANY: Literal["*"] = "*"
# What If-Match may hold: `*`, or strong and weak entity-tags separated by commas (RFC 9110 section 13.1.1).
IF_MATCH_PATTERN = worded(
    r'^(\*|(W/)?"[!#-~]*"([ \t]*,[ \t]*(W/)?"[!#-~]*")*)$',
    'either * or entity tags separated by commas, each in double quotes (the ETag of a GET, such as "3")',
)
_TAG = re.compile(r'(W/)?"([!#-~]*)"')
_VERSION = re.compile(r"0|[1-9][0-9]{0,17}")

# None: no If-Match; ANY: the resource must exist; else the versions of the strong tags given (possibly none).
IfMatch = frozenset[int] | Literal["*"] | None


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> IfMatch:
    """The versions an If-Match header names. Weak tags never match (If-Match compares strongly), nor does a
    tag that is not one of this API's."""
    if header is None:
        return None
    if header.strip() == ANY:
        return ANY
    return frozenset(int(tag) for weak, tag in _TAG.findall(header) if not weak and _VERSION.fullmatch(tag))


def require(if_match: IfMatch, version: int | None) -> None:
    """Raise 412 unless the stored version (None: the resource does not exist) satisfies If-Match."""
    if if_match is None:
        return
    if version is None or (if_match != ANY and version not in if_match):
        raise PreconditionFailed("If-Match does not name the current version; read it again (GET) for its ETag")
