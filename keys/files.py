"""The hub's signing keys: generated on first run into the data directory, owner-only.

Each use has its own key (client tokens, audit checkpoints, QR codes, sealed ids), so that a
signature made for one purpose is never accepted for another."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_DIRECTORY = "keys"


def load_or_create_key(data_dir: Path, name: str) -> Ed25519PrivateKey:
    """The Ed25519 key `name` from `<data_dir>/keys/`, created (0600, directory 0700) if missing."""
    path = _key_directory(data_dir) / f"{name}.pem"
    if not path.exists():
        _create(path)
    elif path.stat().st_mode & 0o077:
        # A key someone loosened (a copy, a restore) is made owner-only again before use.
        os.chmod(path, 0o600)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def _key_directory(data_dir: Path) -> Path:
    directory = data_dir / KEY_DIRECTORY
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    return directory


def _create(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_once(path, pem)


def _write_once(path: Path, content: bytes) -> None:
    """`content` at `path`, written whole before it appears there: two processes starting at
    once (`hub run` and `hub token`) both end up with the one file that won, never a half file."""
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    # Written owner-only from the first byte: never readable by others, not even briefly.
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(draft, path)  # fails if another process created the key first
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links
            if not path.exists():
                os.replace(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def load_or_create_secret(data_dir: Path, name: str, size: int = 64) -> bytes:
    """The random secret `name` (`size` bytes) from `<data_dir>/keys/`, created like the signing
    keys (owner-only, written whole before it appears) when missing."""
    path = _key_directory(data_dir) / f"{name}.key"
    if not path.exists():
        _write_once(path, secrets.token_bytes(size))
    elif path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    secret = path.read_bytes()
    if len(secret) != size:
        raise ValueError(f"{path} does not hold a {size}-byte secret")
    return secret
