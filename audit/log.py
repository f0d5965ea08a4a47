"""The audit log's own database, its batched writer and its reads.

Writes are group-committed: every response waits until its records are durable, and all
records that arrive while one transaction is being written go into the next one, so that
auditing costs one commit per batch rather than one per response. Each commit seals the new
head of the chain in a signed checkpoint, which also goes to the witness (audit/witness.py)
before the responses waiting on it are released, so a trail emptied or cut is caught.

Any number of processes may append to one trail: each batches its own records, and the head
is serialised by the database itself for the length of one transaction (an immediate
transaction on SQLite, a transaction-scoped advisory lock on PostgreSQL), so no two commits
read the same head and no process waits on a coordinator."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Date,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.base import DEFAULT_POOL, hold_write_lock, open_engine
from audit.chain import (
    GENESIS,
    AuditEntry,
    ChainedEntry,
    Checkpoint,
    link_hash,
    seal,
    verify_against_witness,
    verify_chain,
)
from audit.witness import Witness
from domain.records import CallerRole

AUDIT_KEY = "audit-checkpoints"
# The PostgreSQL advisory lock that serialises the trail's head and its tables' creation.
HEAD_LOCK = 0x6875625F61756474  # "hub_audt"

log = logging.getLogger("hub.audit")

metadata = MetaData()

AUDIT_RECORD = Table(
    "audit_record",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),
    Column("request_id", String(40), nullable=False),
    Column("client", Text, nullable=False),
    Column("role", String(40), nullable=False),
    Column("purpose", String(60)),
    Column("case_reference", String(100)),
    Column("person_id", Integer, nullable=False, index=True),
    Column("fields", Text, nullable=False),
    Column("restricted_until", Date),
    Column("trace_id", String(32)),  # added to existing trails by create_tables
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

AUDIT_CHECKPOINT = Table(
    "audit_checkpoint",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("signature", String(200), nullable=False),
    Column("sealed_at", String(40), nullable=False),
)


class AuditUnavailable(Exception):
    """The records could not be made durable: the data they describe must not be returned."""


class NotWitnessed(Exception):
    """The records were committed, but their checkpoint could not be given to the witness."""


@dataclass(frozen=True)
class AccessRecord:
    """A person's view of one audit record: never the client or the official."""

    seq: int
    at: datetime
    role: CallerRole
    purpose: str
    fields: list[str]


class AuditLog:
    """The trail in its database; `witness` receives every checkpoint (a log opened without
    one only reads and verifies its chain)."""

    def __init__(self, engine: AsyncEngine, key: Ed25519PrivateKey, witness: Witness | None = None) -> None:
        self.engine = engine
        self.witness = witness
        self._key = key
        self._queue: asyncio.Queue[tuple[list[AuditEntry], asyncio.Future[None]]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    def open(
        cls, url: str, key: Ed25519PrivateKey, witness: Witness | None = None, pool: int = DEFAULT_POOL
    ) -> AuditLog:
        return cls(open_engine(url, pool=pool), key, witness)

    async def create_tables(self) -> None:
        async with self.engine.begin() as conn:
            await hold_write_lock(conn, HEAD_LOCK)  # processes starting at once create them once
            await conn.run_sync(metadata.create_all)
            await conn.run_sync(_add_trace_id)
        if self.witness is not None:
            await self.witness.prepare()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self.engine.dispose()
        if self.witness is not None:
            await self.witness.close()

    async def append(self, entries: list[AuditEntry]) -> None:
        """Return once the entries are durable; raise AuditUnavailable if they cannot be."""
        if not entries:
            return
        if self.witness is None:
            raise AuditUnavailable("this audit log was opened without a witness: it only reads")
        if self._writer is None or self._writer.done():
            # In a context of its own: the writer outlives the request that happened to start it.
            self._writer = asyncio.get_running_loop().create_task(
                self._write_batches(), context=contextvars.Context()
            )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((entries, done))
        await done

    async def drain(self, grace: float) -> bool:
        """Wait until every record handed to append() is committed (or has failed), at most
        `grace` seconds; whether the queue emptied (graceful shutdown)."""
        try:
            await asyncio.wait_for(self._queue.join(), grace)
        except TimeoutError:
            return False
        return True

    async def _write_batches(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()  # what drain() waits for

    async def _write(self, batch: list[tuple[list[AuditEntry], asyncio.Future[None]]]) -> None:
        try:
            await self._seal([entry for entries, _ in batch for entry in entries])
        except NotWitnessed as error:
            # Committed, so not written again; the next commit's checkpoint will cover them.
            for _, done in batch:
                _settle(done, error)
            return
        except Exception as error:  # every waiter must learn the write failed
            if len(batch) == 1:
                _settle(batch[0][1], error)
                return
            # One response's records must not withhold the others': each alone, then.
            for entries, done in batch:
                try:
                    await self._seal(entries)
                except Exception as alone:
                    _settle(done, alone)
                else:
                    _settle(done, None)
            return
        for _, done in batch:
            _settle(done, None)

    async def _seal(self, entries: list[AuditEntry]) -> None:
        """Commit the entries with their checkpoint, then hand the checkpoint to the witness."""
        witness = self.witness
        assert witness is not None, "append() writes only with a witness"
        checkpoint, sealed_at = await self._commit(entries)
        try:
            await witness.record(checkpoint, sealed_at)
        except Exception as error:
            log.error("the audit witness could not be written (%s)", type(error).__name__)
            raise NotWitnessed(type(error).__name__) from error

    async def _commit(self, entries: list[AuditEntry]) -> tuple[Checkpoint, str]:
        async with self.engine.begin() as conn:
            await hold_write_lock(conn, HEAD_LOCK)
            head = (
                await conn.execute(
                    select(AUDIT_RECORD.c.seq, AUDIT_RECORD.c.hash)
                    .order_by(AUDIT_RECORD.c.seq.desc())
                    .limit(1)
                )
            ).first()
            seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS)
            rows = []
            for entry in entries:
                seq += 1
                digest = link_hash(prev_hash, entry)
                rows.append(_row(seq, entry, prev_hash, digest))
                prev_hash = digest
            await conn.execute(insert(AUDIT_RECORD), rows)
            checkpoint = Checkpoint(seq, prev_hash, seal(self._key, seq, prev_hash))
            sealed_at = datetime.now(UTC).isoformat()
            await conn.execute(
                insert(AUDIT_CHECKPOINT).values(
                    seq=seq, hash=prev_hash, signature=checkpoint.signature, sealed_at=sealed_at
                )
            )
        return checkpoint, sealed_at

    async def verify(self) -> list[str]:
        """What is wrong with the trail, first break first: its chain and checkpoints, then,
        with a witness, what the witness holds that the trail does not.

        Writers may go on meanwhile (other processes): the witness is read first, then the
        records and checkpoints in one snapshot, so the trail read holds every checkpoint the
        witness had been given (one reaches the witness only after its commit), and every
        record read has its own checkpoint beside it."""
        witnessed = await self.witness.read() if self.witness is not None else None
        async with _snapshot(self.engine) as conn:
            records = (await conn.execute(select(AUDIT_RECORD).order_by(AUDIT_RECORD.c.seq))).all()
            stored = (await conn.execute(select(AUDIT_CHECKPOINT).order_by(AUDIT_CHECKPOINT.c.id))).all()
        checkpoints = [Checkpoint(c.seq, c.hash, c.signature) for c in stored]
        public = self._key.public_key()
        findings = verify_chain(
            (ChainedEntry(r.seq, entry_of(r._mapping), r.prev_hash, r.hash) for r in records),
            checkpoints,
            public,
        )
        if self.witness is not None:
            findings += verify_against_witness(
                {r.seq: r.hash for r in records},
                checkpoints,
                witnessed,
                public,
                self.witness.name,
            )
        return findings

    async def witnessed(self) -> int | None:
        """How many checkpoints the witness holds (None: there is none, or no witness)."""
        held = await self.witness.read() if self.witness is not None else None
        return None if held is None else len(held.checkpoints)

    async def counts(self) -> tuple[int, int]:
        """How many records and checkpoints the log holds."""
        async with self.engine.connect() as conn:
            records = (await conn.execute(select(func.count()).select_from(AUDIT_RECORD))).scalar_one()
            checkpoints = (
                await conn.execute(select(func.count()).select_from(AUDIT_CHECKPOINT))
            ).scalar_one()
        return int(records), int(checkpoints)

    async def access_pages(
        self, person_ids: Sequence[int], first: int, after: int | None, visible_on: date | None
    ) -> list[tuple[list[AccessRecord], bool]]:
        """Each person's records, newest first, in one statement; with `visible_on`,
        restricted records appear only from their date (None: all at once, for the
        data-protection officer)."""
        condition: ColumnElement[bool] = AUDIT_RECORD.c.person_id.in_(list(person_ids))
        if after is not None:
            condition = and_(condition, AUDIT_RECORD.c.seq < after)
        if visible_on is not None:
            condition = and_(
                condition,
                or_(AUDIT_RECORD.c.restricted_until.is_(None), AUDIT_RECORD.c.restricted_until <= visible_on),
            )
        position = func.row_number().over(
            partition_by=AUDIT_RECORD.c.person_id, order_by=AUDIT_RECORD.c.seq.desc()
        )
        ranked = select(AUDIT_RECORD, position.label("pos")).where(condition).subquery()
        statement = select(ranked).where(ranked.c.pos <= first + 1).order_by(ranked.c.person_id, ranked.c.pos)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        grouped: dict[int, list[Row[Any]]] = {person_id: [] for person_id in person_ids}
        for row in rows:
            grouped[row.person_id].append(row)
        return [
            (
                [
                    AccessRecord(
                        r.seq,
                        datetime.fromisoformat(r.at),
                        CallerRole(r.role),
                        r.purpose or "",
                        orjson.loads(r.fields),
                    )
                    for r in grouped[person_id][:first]
                ],
                len(grouped[person_id]) > first,
            )
            for person_id in person_ids
        ]


@contextlib.asynccontextmanager
async def _snapshot(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection whose reads all see the trail as of one moment."""
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN")  # WAL: the snapshot is taken at the first read
        elif conn.dialect.name == "postgresql":
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        yield conn
        await conn.rollback()


def _settle(done: asyncio.Future[None], error: Exception | None) -> None:
    """Tell a waiting response whether its records are durable (a cancelled one has left)."""
    if done.done():
        return
    if error is None:
        done.set_result(None)
    elif isinstance(error, NotWitnessed):
        done.set_exception(AuditUnavailable(f"audit records could not be witnessed ({error})"))
    else:
        done.set_exception(AuditUnavailable(f"audit records could not be written ({type(error).__name__})"))


def _add_trace_id(conn: Connection) -> None:
    """A trail made before records carried their trace gets the column, empty for them."""
    if "trace_id" not in {column["name"] for column in inspect(conn).get_columns(AUDIT_RECORD.name)}:
        conn.execute(text(f"ALTER TABLE {AUDIT_RECORD.name} ADD COLUMN trace_id VARCHAR(32)"))


def _row(seq: int, entry: AuditEntry, prev_hash: str, digest: str) -> dict[str, object]:
    return {
        "seq": seq,
        "at": entry.at.isoformat(),
        "request_id": entry.request_id,
        "client": entry.client,
        "role": entry.role,
        "purpose": entry.purpose,
        "case_reference": entry.case_reference,
        "person_id": entry.person_id,
        "fields": orjson.dumps(list(entry.fields)).decode(),
        "restricted_until": entry.restricted_until,
        "trace_id": entry.trace_id,
        "prev_hash": prev_hash,
        "hash": digest,
    }


def entry_of(row: Mapping[Any, Any]) -> AuditEntry:
    """The entry an `audit_record` row holds, by column name (SQLAlchemy's row mapping, or
    sqlite3's, which gives the date as text)."""
    restricted = row["restricted_until"]
    return AuditEntry(
        at=datetime.fromisoformat(row["at"]),
        request_id=row["request_id"],
        client=row["client"],
        role=row["role"],
        purpose=row["purpose"],
        case_reference=row["case_reference"],
        person_id=row["person_id"],
        fields=tuple(orjson.loads(row["fields"])),
        restricted_until=date.fromisoformat(restricted) if isinstance(restricted, str) else restricted,
        trace_id=row["trace_id"] if "trace_id" in row.keys() else None,  # not in a trail's old copy
    )
