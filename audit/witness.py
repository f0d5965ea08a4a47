"""The audit trail's witness: a copy of every signed checkpoint, kept where the hub's writer
cannot rewrite it, so that a trail emptied or cut together with its checkpoints is caught.

Two kinds, chosen by `HUB_AUDIT_WITNESS`: an append-only file (one JSON line per checkpoint,
each written by a single `write()` on a descriptor opened `O_APPEND`, then fsync'd, so lines of
several processes interleave whole), or a table in a database of its own that the hub only
inserts into. What the witness protects against is anyone who can rewrite the audit database;
the witness itself must be append-only for the hub's own account (`chattr +a` on the file, or a
database user with INSERT and SELECT but neither UPDATE nor DELETE).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol

import orjson
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, inspect, make_url, select

from adapters.base import hold_write_lock, open_engine
from audit.chain import Checkpoint, Witnessed

WITNESS_FILE = "audit-witness.jsonl"
WITNESS_LOCK = 0x6875625F7769746E  # "hub_witn": the PostgreSQL advisory lock of its table's creation

metadata = MetaData()

AUDIT_WITNESS = Table(
    "audit_witness",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("signature", String(200), nullable=False),
    Column("sealed_at", String(40), nullable=False),
)


class Witness(Protocol):
    """Where the signed checkpoints are copied to, as each commit seals them.

    >>> witness = FileWitness(Path("var/audit-witness.jsonl"))
    >>> witness.name
    'the witness file var/audit-witness.jsonl'
    """

    @property
    def name(self) -> str:
        """What the witness is, for a person reading `hub audit verify` (never a password)."""
        ...

    async def prepare(self) -> None:
        """Ready to be written to (the database's table), owner-only (the file)."""
        ...

    async def record(self, checkpoint: Checkpoint, sealed_at: str) -> None:
        """Durably add one checkpoint; raise if it cannot be."""
        ...

    async def read(self) -> Witnessed | None:
        """Everything the witness holds, in the order written; None when there is no witness."""
        ...

    async def close(self) -> None: ...


class FileWitness:
    """One JSON object per line: `{"seq": 7, "hash": "...", "signature": "...", "sealed_at": "..."}`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return f"the witness file {self.path}"

    async def prepare(self) -> None:
        if self.path.exists() and self.path.stat().st_mode & 0o077:
            os.chmod(self.path, 0o600)

    async def record(self, checkpoint: Checkpoint, sealed_at: str) -> None:
        line = orjson.dumps(
            {
                "seq": checkpoint.seq,
                "hash": checkpoint.hash,
                "signature": checkpoint.signature,
                "sealed_at": sealed_at,
            }
        )
        await asyncio.to_thread(self._append, line + b"\n")

    def _append(self, line: bytes) -> None:
        created = not self.path.exists()
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            # One write per line: O_APPEND places it whole at the end, whoever else appends.
            if os.write(descriptor, line) != len(line):
                raise OSError(f"{self.path}: the checkpoint was written only in part")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if created:  # the file's own name must survive a crash too
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    async def read(self) -> Witnessed | None:
        try:
            data = await asyncio.to_thread(self.path.read_bytes)
        except FileNotFoundError:
            return None
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()  # the newline that ends the last line
        checkpoints: list[tuple[str, Checkpoint]] = []
        unreadable: list[str] = []
        for number, line in enumerate(lines, start=1):
            checkpoint = _checkpoint_of(line)
            if checkpoint is None:
                unreadable.append(f"line {number}")
            else:
                checkpoints.append((f"line {number}", checkpoint))
        return Witnessed(checkpoints, unreadable)

    async def close(self) -> None:
        return None


class DatabaseWitness:
    """The table `audit_witness` in a database of its own, only ever inserted into."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url)

    @property
    def name(self) -> str:
        return f"the witness database {make_url(self.url).render_as_string(hide_password=True)}"

    async def prepare(self) -> None:
        async with self.engine.begin() as conn:
            await hold_write_lock(conn, WITNESS_LOCK)  # processes starting at once create it once
            await conn.run_sync(metadata.create_all)  # nothing when the table is there already

    async def record(self, checkpoint: Checkpoint, sealed_at: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(AUDIT_WITNESS).values(
                    seq=checkpoint.seq,
                    hash=checkpoint.hash,
                    signature=checkpoint.signature,
                    sealed_at=sealed_at,
                )
            )

    async def read(self) -> Witnessed | None:
        async with self.engine.connect() as conn:
            if not await conn.run_sync(lambda sync: inspect(sync).has_table(AUDIT_WITNESS.name)):
                return None
            rows = (await conn.execute(select(AUDIT_WITNESS).order_by(AUDIT_WITNESS.c.id))).all()
        return Witnessed([(f"row {r.id}", Checkpoint(r.seq, r.hash, r.signature)) for r in rows], [])

    async def close(self) -> None:
        await self.engine.dispose()


def open_witness(location: str) -> Witness:
    """A database witness for an SQLAlchemy URL, else a file witness at that path."""
    if "://" in location:
        return DatabaseWitness(location)
    return FileWitness(Path(location))


def _checkpoint_of(line: bytes) -> Checkpoint | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    seq, digest, signature = value.get("seq"), value.get("hash"), value.get("signature")
    if type(seq) is not int or not isinstance(digest, str) or not isinstance(signature, str):
        return None
    return Checkpoint(seq, digest, signature)
