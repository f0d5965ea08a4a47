"""Owner-only files: the data directory holds personal data (the SQLite databases, the audit
trail and its witness) and the signing keys, so nobody but the hub's own account may read it.

The process's umask is made 077 before anything is written, so every file the hub creates
(SQLite creates its -wal, -shm and -journal files with the database's own mode) is 0600 and
every directory 0700 whatever the shell's umask; files an earlier run left readable by others
are made owner-only at start."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import make_url

PRIVATE_UMASK = 0o077
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def keep_private(data_dir: Path, files: Iterable[Path]) -> None:
    """Owner-only from now on: the umask, the data directory (created if missing) and the
    hub's files already there (its SQLite databases with their companions, the witness)."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(data_dir, 0o700)
    for path in files:
        if path.exists():
            _tighten(path, 0o600)


def sqlite_files(urls: Iterable[str]) -> list[Path]:
    """The files behind SQLite URLs, each database with its -wal, -shm and -journal files."""
    paths: list[Path] = []
    for url in urls:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
            paths += [Path(parsed.database + suffix) for suffix in SQLITE_COMPANIONS]
    return paths


def _tighten(path: Path, mode: int) -> None:
    if path.stat().st_mode & 0o777 & ~mode:
        os.chmod(path, mode)
