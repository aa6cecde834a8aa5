"""Opaque page cursors for the local docs store.

A cursor is the sort key of the last item returned (keyset pagination), so pages stay
correct while documents are added or removed between calls. It is tagged with the
listing it belongs to: a cursor from one listing passed to another is refused rather than
silently skipping items.
"""

from __future__ import annotations

import base64
import binascii
import json

from mosaic.errors import InvalidRequest

Key = tuple[int | str, ...]


def encode_cursor(kind: str, key: Key) -> str:
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None, types: tuple[type[int] | type[str], ...]) -> Key | None:
    """The key inside ``cursor`` (values of ``types``), None for the first page."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        data = None
    if (
        not isinstance(data, list)
        or len(data) != len(types) + 1
        or data[0] != kind
        or not all(type(v) is t for v, t in zip(data[1:], types, strict=True))
    ):
        raise InvalidRequest("invalid cursor: pass back the next_cursor of the previous page unchanged",
                             details={"cursor": cursor[:100]})
    return tuple(data[1:])
