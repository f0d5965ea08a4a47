"""Connection arguments and opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from resolvers.errors import ClientError

DEFAULT_PAGE = 20
MAX_PAGE = 100


def page_size(first: int | None, field: str = "first") -> int:
    if first is None:
        return DEFAULT_PAGE
    if first < 0 or first > MAX_PAGE:
        raise ClientError(field, f"must be between 0 and {MAX_PAGE}")
    return first


def encode_cursor(kind: str, position: tuple[Any, ...]) -> str:
    raw = json.dumps([kind, *position], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None, field: str = "after") -> tuple[Any, ...] | None:
    """The keyset position a cursor of this connection holds; a foreign cursor is refused."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ClientError(field, "is not a cursor this connection issued") from None
    if not isinstance(value, list) or len(value) < 2 or value[0] != kind:
        raise ClientError(field, "is not a cursor this connection issued")
    return tuple(value[1:])
