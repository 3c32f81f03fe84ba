"""Signed webhook bodies: `t=<unix>,v1=<hex>`, the HMAC-SHA256 under a shared secret of
"<t>." followed by the body. The feed's webhooks and the notices to applicants use it."""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["sign_webhook_body", "verify_webhook_body"]


def sign_webhook_body(secret: bytes, body: bytes, timestamp: int) -> str:
    """The signature header value of `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_webhook_body(
    secret: bytes, header: str, body: bytes, now: float | None = None, tolerance_s: float = 300
) -> bool:
    """Whether a signature header is `secret`'s over `body` and recent (for receivers)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        expected = sign_webhook_body(secret, body, timestamp)
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    return abs(current - timestamp) <= tolerance_s and hmac.compare_digest(expected, header)
