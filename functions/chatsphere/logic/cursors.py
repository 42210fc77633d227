"""Opaque page cursors, signed with the tenant's secret: a cursor names a position, and the API refuses
any it did not issue (edited, truncated, from another tenant or another listing)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from chatsphere.errors import DomainError

TAG_BYTES = 12


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(secret: bytes, scope: str, position: str) -> bytes:
    # Domain-separated from the identifier digests that share the secret.
    return hmac.new(secret, f"cursor\n{scope}\n{position}".encode(), hashlib.sha256).digest()[:TAG_BYTES]


def sign(secret: bytes, scope: str, position: str) -> str:
    """`scope` names the listing (e.g. the subject's interactions); a cursor only fits its own."""
    return f"{_b64(position.encode())}.{_b64(_tag(secret, scope, position))}"


def verify(secret: bytes, scope: str, cursor: str) -> str:
    """The position a cursor names; DomainError (400) for any cursor this API did not issue for `scope`."""
    body, dot, tag = cursor.partition(".")
    try:
        position = _unb64(body).decode() if dot else ""
        given = _unb64(tag) if dot else b""
    except (binascii.Error, ValueError, UnicodeDecodeError):
        position, given = "", b""
    if not position or not hmac.compare_digest(given, _tag(secret, scope, position)):
        raise DomainError("cursor is not one this API returned for this listing")
    return position
