"""Opaque feed cursors: a position in one feed, authenticated so it cannot be forged or moved."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from verifier.errors import CursorError

CURSOR_VERSION = 1
_ID_BYTES = 16
_TAG_BYTES = 16
_LENGTH = 1 + _ID_BYTES + 8 + _TAG_BYTES
MAX_CURSOR_CHARS = 80


class CursorCodec:
    """Encodes sequence numbers of one feed (`feed_id`) with an HMAC under `key`.

    base64url of: version (1 byte), feed id (16), sequence (8, big-endian), tag (16).
    """

    def __init__(self, feed_id: bytes, key: bytes) -> None:
        if len(feed_id) != _ID_BYTES or len(key) < 32:
            raise ValueError("a feed id is 16 bytes and a cursor key at least 32")
        self.feed_id = feed_id
        self._key = key

    def _tag(self, prefix: bytes) -> bytes:
        return hmac.new(self._key, prefix, hashlib.sha256).digest()[:_TAG_BYTES]

    def encode(self, sequence: int) -> str:
        """The cursor that resumes after `sequence`."""
        prefix = bytes([CURSOR_VERSION]) + self.feed_id + sequence.to_bytes(8, "big")
        return base64.urlsafe_b64encode(prefix + self._tag(prefix)).decode("ascii").rstrip("=")

    def decode(self, cursor: str) -> int:
        """The sequence a cursor of this feed stands for; CursorError otherwise."""
        if len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
            raise CursorError("malformed", "the cursor is not one this service issues")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise CursorError("malformed", "the cursor is not base64url") from None
        if len(raw) != _LENGTH or raw[0] != CURSOR_VERSION:
            raise CursorError("malformed", "the cursor is not one this service issues")
        prefix, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if prefix[1 : 1 + _ID_BYTES] != self.feed_id:
            raise CursorError(
                "foreign", "the cursor belongs to another feed: start again without `after`"
            )
        if not hmac.compare_digest(tag, self._tag(prefix)):
            raise CursorError("forged", "the cursor was altered: use one this feed returned")
        return int.from_bytes(prefix[1 + _ID_BYTES :], "big")
