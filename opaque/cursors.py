"""Connection arguments and opaque keyset cursors (sealed: a cursor reveals no position and
only a cursor this hub issued for the same connection is accepted)."""

from __future__ import annotations

import json
from typing import Any

from domain.errors import ClientError
from opaque.sealing import Sealer

DEFAULT_PAGE = 20
MAX_PAGE = 100
PURPOSE = b"cursor"


def page_size(first: int | None, field: str = "first") -> int:
    if first is None:
        return DEFAULT_PAGE
    if first < 0 or first > MAX_PAGE:
        raise ClientError(field, f"must be between 0 and {MAX_PAGE}")
    return first


class Cursors:
    """Makes and reads one hub's keyset cursors; each names the connection it belongs to."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def encode(self, kind: str, position: tuple[Any, ...]) -> str:
        raw = json.dumps([kind, *position], separators=(",", ":"), ensure_ascii=False).encode()
        return self._sealer.seal(PURPOSE, raw)

    def decode(self, kind: str, cursor: str | None, field: str = "after") -> tuple[Any, ...] | None:
        """The keyset position a cursor of this connection holds; any other text is refused."""
        if cursor is None:
            return None
        opened = self._sealer.open(PURPOSE, cursor) if isinstance(cursor, str) else None
        value = json.loads(opened) if opened is not None else None
        if not isinstance(value, list) or len(value) < 2 or value[0] != kind:
            raise ClientError(field, "is not a cursor this connection issued")
        return tuple(value[1:])
