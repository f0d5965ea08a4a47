"""Sealed values: what the hub hands out as opaque text (global ids, cursors) and must accept
back only as it issued them.

AES-SIV (RFC 5297, from `cryptography`) is authenticated and deterministic: the same value
always seals to the same text (an object's id never changes), the text reveals nothing of the
value, and any text the hub did not seal (edited, forged, another purpose's) opens to nothing.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from keys.files import load_or_create_secret

SEALING_KEY = "sealed-values"
# Nothing the hub seals is longer; a longer text is refused before any work is done on it.
MAX_SEALED_LENGTH = 512


class Sealer:
    """Seals and opens short byte strings, each under a purpose that separates their uses."""

    def __init__(self, secret: bytes) -> None:
        self._siv = AESSIV(secret)

    def seal(self, purpose: bytes, value: bytes) -> str:
        return base64.urlsafe_b64encode(self._siv.encrypt(value, [purpose])).decode().rstrip("=")

    def open(self, purpose: bytes, text: str) -> bytes | None:
        """The value sealed under `purpose`, or None for any text this hub did not seal so."""
        if not text or len(text) > MAX_SEALED_LENGTH:
            return None
        try:
            sealed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return self._siv.decrypt(sealed, [purpose])
        except (binascii.Error, ValueError, InvalidTag):
            return None


@lru_cache(maxsize=16)
def _sealer_in(directory: Path) -> Sealer:
    return Sealer(load_or_create_secret(directory, SEALING_KEY))


def sealer(data_dir: Path) -> Sealer:
    """The sealer of a data directory, its secret created on first use, loaded once per process."""
    return _sealer_in(data_dir.resolve())
