"""The hub's signing keys: generated on first run into the data directory, owner-only.

Each use has its own key (client tokens, audit checkpoints, later QR codes), so that a
signature made for one purpose is never accepted for another."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_DIRECTORY = "keys"


def load_or_create_key(data_dir: Path, name: str) -> Ed25519PrivateKey:
    """The Ed25519 key `name` from `<data_dir>/keys/`, created (0600, directory 0700) if missing."""
    directory = data_dir / KEY_DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / f"{name}.pem"
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Written owner-only from the first byte: never readable by others, not even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return key


def public_key(key: Ed25519PrivateKey) -> Ed25519PublicKey:
    return key.public_key()
