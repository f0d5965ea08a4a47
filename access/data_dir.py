"""Owner-only files: the data directory holds personal data (the SQLite databases, the audit
trail and its witness) and the signing keys, so nobody but the hub's own account may read it.

The process's umask is made 077 before anything is written, so every file the hub creates
(SQLite creates its -wal, -shm and -journal files with the database's own mode) is 0600 and
every directory 0700 whatever the shell's umask; files an earlier run left readable by others
are made owner-only at start."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import make_url

from settings import Settings

PRIVATE_UMASK = 0o077
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def keep_private(settings: Settings) -> None:
    """Owner-only from now on: the umask, the data directory (created if missing) and the
    files of the hub's own databases and witness already there."""
    os.umask(PRIVATE_UMASK)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(settings.data_dir, 0o700)
    for path in hub_files(settings):
        _tighten(path, 0o600)


def hub_files(settings: Settings) -> list[Path]:
    """The files the hub writes that exist now: each SQLite database with its companions, and
    the audit witness file."""
    urls = [*settings.source_urls.values(), settings.store_url, settings.audit_url]
    paths: list[Path] = []
    witness = settings.witness_location()
    if "://" in witness:
        urls.append(witness)
    else:
        paths.append(Path(witness))
    for url in urls:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
            paths += [Path(parsed.database + suffix) for suffix in SQLITE_COMPANIONS]
    return [path for path in paths if path.exists()]


def _tighten(path: Path, mode: int) -> None:
    if path.stat().st_mode & 0o777 & ~mode:
        os.chmod(path, mode)
