"""Running a workflow: all or nothing across the agencies' databases, idempotent, recoverable,
and safe with many processes on the same databases.

Every change a workflow makes goes through its journal, which first writes the row's
before-image durably into the hub's store; then the change is made in the agency's own
database, in that database's transaction, under that database's write lock (so two processes
never interleave half-written records or read the same "next" key). A run that fails (a broken
rule, an unreachable source, a crash) is undone by writing the before-images back, newest first.

A run holds a lease in its row, which its process renews while the run is live. A run whose
lease expired was cut short by a crash: any process undoes it, exactly once, after claiming it
with a conditional update (one claimant wins); a live sibling's run is never claimed, and a run
that lost its lease commits nothing more (each block re-takes the lease before it commits).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import orjson
from sqlalchemy import ColumnElement, CursorResult, Table, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

from adapters.base import SourceGuard, hold_write_lock, insert_tuples
from clock import SYSTEM_CLOCK, Clock
from domain.errors import AdapterError, SourceDataInvalid, UserErrorCode
from identity.store import SCHEMA_LOCK, HubStore
from identity.tables import table_of
from workflows import series
from workflows.tables import WorkflowJournal, WorkflowRun, add_lease_columns

RUN = table_of(WorkflowRun)
JOURNAL = table_of(WorkflowJournal)
HUB_STORE = "HUB_STORE"
RUNNING, UNDOING, DONE, UNDONE = "RUNNING", "UNDOING", "DONE", "UNDONE"
UNFINISHED = (RUNNING, UNDOING)
log = logging.getLogger("hub.workflows")


def write_lock_of(target: str) -> int:
    """The advisory lock a target's write blocks hold on PostgreSQL (a stable key per target)."""
    return int.from_bytes(hashlib.sha256(f"hub workflow writes {target}".encode()).digest()[:7])


def _stored(moment: datetime) -> datetime:
    """A time as the run rows keep it: in UTC, comparable on every database."""
    return moment.astimezone(UTC)


def _new_key(inserted: CursorResult[Any]) -> Any:
    """The primary key an INSERT of one row was given (SQLAlchemy types it optional: None is
    for statements that are no single-row INSERT, never these)."""
    key = inserted.inserted_primary_key
    assert key is not None
    return key[0]


R = TypeVar("R")


class UserFailure(Exception):
    """A broken rule: the run is undone and the caller gets a user error naming the field."""

    def __init__(self, code: UserErrorCode, message: str, field: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def readable(found: R | SourceDataInvalid | None, what: str, field: list[str]) -> R | None:
    """A record a workflow checks, as its agency's adapter read it; one whose row cannot be
    mapped fails the run, naming the field it was looked up by."""
    if isinstance(found, SourceDataInvalid):
        raise UserFailure(UserErrorCode.SOURCE_UNAVAILABLE, f"The {what} cannot be read.", field)
    return found


@dataclass(frozen=True)
class Outcome:
    """What a run answered: its result (ids the payload is built from) or its user errors."""

    result: dict[str, Any] = field(default_factory=dict)
    errors: list[UserFailure] = field(default_factory=list)


def _json_default(value: object) -> object:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot journal a {type(value).__name__}")


def _dump(value: object) -> str:
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_SORT_KEYS).decode()


class _Unchecked:
    """A journal entry whose undo is unconditional (many rows by shared values)."""


UNCHECKED = _Unchecked()


class Journal:
    """The one way a workflow writes: before-image first, then the change."""

    def __init__(self, runner: WorkflowRunner, run_id: int, kind: str = "") -> None:
        self.runner = runner
        self.run_id = run_id
        self.kind = kind
        self.changes = 0
        # Journal entries of an agency's block not yet committed there, per target.
        self._uncommitted: dict[str, list[int]] = {}

    def _changed(self) -> None:
        """Counts the run's changes; a crash drill kills the process after the chosen one."""
        self.changes += 1
        drill = self.runner.crash_after
        if drill is not None and drill == (self.kind, self.changes):
            os.kill(os.getpid(), signal.SIGKILL)

    async def allocate(self, series_name: str, agency_highest: int) -> int:
        return await series.allocate(self.runner.store.engine, series_name, agency_highest)

    @asynccontextmanager
    async def writing(self, target: str) -> AsyncIterator[AsyncConnection]:
        """A transaction on one target's database, committed when the block ends, as that
        database's only writer of workflow changes, across processes (its write lock): a next
        key (max + 1) is read and used by one run only, and no process sees another's
        half-written records. Before it commits, the block re-takes the run's lease; a run
        whose lease was lost (claimed by a sibling for undoing) commits nothing more.

        An agency's block runs within that source's time budget and breaker, and a source
        failure leaves it as SourceUnavailable (never retried here: the run is undone, and
        retried as a whole by its caller). A block that fails before its commit changed nothing
        there, so its journal entries are dropped again: undoing the run then needs no source
        that is down for changes it never took."""
        guard = self.runner.guards.get(target)
        async with self.runner.writer_lock(target):
            async with guard.bounded() if guard is not None else contextlib.nullcontext():
                async with self.runner.engines[target].connect() as conn:
                    await conn.begin()
                    uncommitted = self._uncommitted.setdefault(target, [])
                    try:
                        await hold_write_lock(conn, write_lock_of(target))
                        yield conn
                        await self.runner.renew_lease(self.run_id, conn if target == HUB_STORE else None)
                    except BaseException:
                        await self._forget(uncommitted)
                        raise
                    finally:
                        self._uncommitted.pop(target, None)
                    await conn.commit()

    async def _forget(self, entries: list[int]) -> None:
        """Drop journal entries whose changes were rolled back with their block."""
        if not entries:
            return
        try:
            async with self.runner.store.engine.begin() as conn:
                await conn.execute(delete(JOURNAL).where(JOURNAL.c.id.in_(entries)))
        except Exception:  # kept: the undo finds the row not as journaled, and leaves it
            return

    async def _record(
        self,
        conn: AsyncConnection,
        target: str,
        table: Table,
        key: dict[str, Any],
        before: Any,
        after: dict[str, Any] | None | _Unchecked = UNCHECKED,
    ) -> None:
        """The entry for one change: the row's key, its before-image and what the change
        leaves in it (`after`: the values it sets, None when it removes the row), which the
        undo checks first."""
        row = {
            "run_id": self.run_id,
            "target": target,
            "table_name": table.name,
            "key": _dump({str(k): v for k, v in key.items()}),
            # Column names may be str subclasses (quoted names): the journal keeps plain text.
            "before": None if before is None else _dump({str(k): v for k, v in before._mapping.items()}),
            "after_image": None if isinstance(after, _Unchecked) else _dump(after),
        }
        if target == HUB_STORE:
            await conn.execute(insert(JOURNAL).values(row))  # atomic with the change itself
            return
        async with self.runner.store.engine.begin() as journal:
            entry = _new_key(await journal.execute(insert(JOURNAL).values(row)))
        if target in self._uncommitted:
            self._uncommitted[target].append(entry)

    async def insert(
        self, conn: AsyncConnection, target: str, table: Table, row: dict[str, Any], key: list[str]
    ) -> None:
        await self._record(conn, target, table, {k: row[k] for k in key}, None, row)
        await conn.execute(insert(table).values(row))
        self._changed()

    async def insert_many(
        self,
        conn: AsyncConnection,
        target: str,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        shared: dict[str, Any],
    ) -> None:
        """Many new rows (tuples in `columns` order) that all carry the values `shared`, such
        as a news item's recipients: inserted in batches, journaled once, and undone together
        by deleting every row with those values."""
        await self._record(conn, target, table, shared, None)
        await insert_tuples(conn, table, columns, rows)
        self._changed()

    async def delete(self, conn: AsyncConnection, target: str, table: Table, key: dict[str, Any]) -> None:
        where = and_(*(table.c[k] == v for k, v in key.items()))
        before = (await conn.execute(select(table).where(where))).first()
        if before is not None:
            await self._record(conn, target, table, key, before, None)
            await conn.execute(delete(table).where(where))
            self._changed()

    async def update(
        self, conn: AsyncConnection, target: str, table: Table, key: dict[str, Any], values: dict[str, Any]
    ) -> None:
        where = and_(*(table.c[k] == v for k, v in key.items()))
        before = (await conn.execute(select(table).where(where))).first()
        if before is None:
            raise LookupError(f"{table.name} has no row {key}")
        await self._record(conn, target, table, key, before, values)
        await conn.execute(update(table).where(where).values(values))
        self._changed()


def _in_flight(method: Callable[..., Awaitable[Outcome]]) -> Callable[..., Awaitable[Outcome]]:
    """Counts a run as in flight from its start to its end, for graceful shutdown
    (WorkflowRunner.drain; operations/shutdown.py)."""

    @functools.wraps(method)
    async def counted(self: WorkflowRunner, *args: Any, **kwargs: Any) -> Outcome:
        self.in_flight += 1
        self._idle.clear()
        try:
            return await method(self, *args, **kwargs)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()

    return counted


async def _left_as_written(
    conn: AsyncConnection, table: Table, where: ColumnElement[bool], after: dict[str, Any] | None
) -> bool:
    """Whether the row is as the journaled change left it (None: the change removed it)."""
    current = (await conn.execute(select(table).where(where))).first()
    if after is None or current is None:
        return after is None and current is None
    return all(_same(current._mapping[c], _column_value(table, c, v)) for c, v in after.items())


def _same(actual: Any, written: Any) -> bool:
    """A value read back equals the one written: fixed-width text comes back padded, and a
    time without an offset is UTC."""
    if isinstance(actual, str) and isinstance(written, str):
        return actual.rstrip() == written.rstrip()
    if isinstance(actual, datetime) and isinstance(written, datetime):
        return _utc(actual) == _utc(written)
    return bool(actual == written)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class LeaseLost(Exception):
    """The run's lease expired and a sibling claimed the run to undo it: it commits nothing more."""


class _StillRunning(Exception):
    """The run holding an idempotency key has not finished yet (another request, perhaps in
    another process): the caller waits for its row."""


class WorkflowRunner:
    def __init__(
        self,
        store: HubStore,
        engines: Mapping[str, AsyncEngine],
        tables: Mapping[tuple[str, str], Table],
        crash_after: tuple[str, int] | None = None,
        guards: Mapping[str, SourceGuard] | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        lease: float = 30.0,
        idempotency_wait: float = 10.0,
        shared: bool = False,
    ):
        self.store = store
        # Each agency's time budget and breaker, for the runs' writes (none: unbounded).
        self.guards = dict(guards or {})
        self.engines = {**engines, HUB_STORE: store.engine}
        self.tables = tables
        # A drill: (workflow kind, n) kills the process after the run's n-th change, before it
        # commits, to rehearse recovery (HUB_CRASH_DRILL=kind:n; never set in service).
        self.crash_after = crash_after
        # Leases are on this clock (tests move it); a run's lease lasts `lease` seconds and is
        # renewed a third of that apart. `shared`: other processes run beside this one (with
        # HUB_REDIS_URL), so at start only expired leases are someone's to undo.
        self.clock = clock
        self.lease = lease
        self.idempotency_wait = idempotency_wait
        self.shared = shared
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._live: set[int] = set()  # runs whose lease this process holds and renews
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._writers: dict[str, asyncio.Lock] = {}
        # Runs started and not finished (graceful shutdown waits for them: drain).
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def writer_lock(self, target: str) -> asyncio.Lock:
        """This process's runs queue here for a target before its database's lock."""
        return self._writers.setdefault(target, asyncio.Lock())

    async def drain(self, grace: float) -> bool:
        """Wait until no run is in flight, at most `grace` seconds; whether none is."""
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------ leases

    def _lease_end(self) -> datetime:
        return _stored(self.clock.now()) + timedelta(seconds=self.lease)

    async def renew_lease(self, run_id: int, conn: AsyncConnection | None = None) -> None:
        """Re-take the run's lease (in `conn`'s transaction, or one of its own); LeaseLost when
        a sibling claimed the run meanwhile."""
        statement = (
            update(RUN)
            .where(and_(RUN.c.id == run_id, RUN.c.lease_owner == self.owner, RUN.c.status == RUNNING))
            .values(lease_expires=self._lease_end())
        )
        if conn is not None:
            renewed = (await conn.execute(statement)).rowcount
        else:
            async with self.store.engine.begin() as own:
                renewed = (await own.execute(statement)).rowcount
        if renewed != 1:
            raise LeaseLost(run_id)

    async def renew_leases(self) -> None:
        """Every live run of this process keeps its lease (running or being undone)."""
        if not self._live:
            return
        async with self.store.engine.begin() as conn:
            await conn.execute(
                update(RUN)
                .where(and_(RUN.c.id.in_(sorted(self._live)), RUN.c.lease_owner == self.owner))
                .values(lease_expires=self._lease_end())
            )

    @asynccontextmanager
    async def keeping_leases(self) -> AsyncIterator[None]:
        """While serving: renew this process's leases and undo runs whose lease expired."""

        async def keep() -> None:
            while True:
                # Paced by wall time: a test that moves the hub's clock drives expiry itself
                # (renew_leases, recover), and its count of the clock's sleepers stays its own.
                await asyncio.sleep(self.lease / 3)
                try:
                    await self.renew_leases()
                    await self.recover()
                except Exception:  # the store is down: the next round tries again
                    log.exception("workflow leases not kept this round")

        task = asyncio.create_task(keep())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------ running

    async def run(
        self,
        kind: str,
        client: str,
        idempotency_key: str | None,
        arguments: dict[str, Any],
        body: Callable[[Journal], Awaitable[dict[str, Any]]],
    ) -> Outcome:
        """Run `body` once; with an idempotency key, a retry with the same input answers the
        first outcome and changes nothing, a retry with other input is a CONFLICT. A retry
        while the first run is in flight (here or in another process) waits for its row to
        finish, at most `idempotency_wait` seconds, then answers its outcome."""
        input_hash = hashlib.sha256(_dump({"kind": kind, "input": arguments}).encode()).hexdigest()
        if idempotency_key is None:
            return await self._run_once(kind, client, None, input_hash, body)
        lock = self._locks.setdefault((client, idempotency_key), asyncio.Lock())
        async with lock:  # identical requests in this process queue here; other processes' wait below
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_delay(self.idempotency_wait),
                    wait=wait_random_exponential(multiplier=0.02, max=0.5),
                    retry=retry_if_exception_type(_StillRunning),
                    reraise=True,
                ):
                    with attempt:
                        earlier = await self._earlier(client, idempotency_key)
                        if earlier is not None:
                            if earlier.input_hash == input_hash and earlier.status in UNFINISHED:
                                raise _StillRunning
                            return _replay(earlier, input_hash)
                        try:
                            return await self._run_once(kind, client, idempotency_key, input_hash, body)
                        except _Claimed:
                            raise _StillRunning from None
            except _StillRunning:
                return _busy()
        raise AssertionError("tenacity either returns or raises")  # pragma: no cover

    async def _earlier(self, client: str, key: str) -> Any:
        async with self.store.engine.connect() as conn:
            return (
                await conn.execute(
                    select(RUN).where(and_(RUN.c.client == client, RUN.c.idempotency_key == key))
                )
            ).first()

    @_in_flight
    async def _run_once(
        self,
        kind: str,
        client: str,
        key: str | None,
        input_hash: str,
        body: Callable[[Journal], Awaitable[dict[str, Any]]],
    ) -> Outcome:
        try:
            async with self.store.engine.begin() as conn:
                run_id = _new_key(
                    await conn.execute(
                        insert(RUN).values(
                            kind=kind,
                            client=client,
                            idempotency_key=key,
                            input_hash=input_hash,
                            status=RUNNING,
                            started_at=datetime.now(UTC),
                            lease_owner=self.owner,
                            lease_expires=self._lease_end(),
                        )
                    )
                )
        except IntegrityError:
            raise _Claimed from None
        self._live.add(run_id)
        try:
            return await self._lead(run_id, kind, body)
        finally:
            self._live.discard(run_id)

    async def _lead(
        self, run_id: int, kind: str, body: Callable[[Journal], Awaitable[dict[str, Any]]]
    ) -> Outcome:
        journal = Journal(self, run_id, kind)
        try:
            try:
                result = await body(journal)
            except AdapterError as error:
                if isinstance(error, SourceDataInvalid):
                    raise
                # A source failed, timed out or is cut off: a user error naming it, and no write.
                message = f"{error} Nothing was changed; try again later."
                raise UserFailure(UserErrorCode.SOURCE_UNAVAILABLE, message) from None
        except LeaseLost:
            return _lease_lost()  # the sibling that claimed the run undoes it
        except UserFailure as failure:
            outcome = Outcome(errors=[failure])
            # A broken rule stays broken on retry: its answer is kept; an unreachable source is not.
            kept = failure.code is not UserErrorCode.SOURCE_UNAVAILABLE
            await self._undo_claimed(run_id, outcome, kept, own=True)
            return outcome
        except BaseException:
            await self._undo_claimed(run_id, None, False, own=True)
            raise
        outcome = Outcome(result=result)
        if not await self._finish(run_id, DONE, outcome, forget_key=False):
            return _lease_lost()
        return outcome

    async def _finish(self, run_id: int, status: str, outcome: Outcome | None, forget_key: bool) -> bool:
        """The run's end, written only while this process holds its lease; whether it did."""
        values: dict[str, Any] = {"status": status, "finished_at": datetime.now(UTC), "lease_expires": None}
        if outcome is not None:
            values["result"] = _dump(
                {"result": outcome.result, "errors": [[e.code, e.message, e.field] for e in outcome.errors]}
            )
        if forget_key:
            values["idempotency_key"] = None  # the next retry runs again
        async with self.store.engine.begin() as conn:
            finished = await conn.execute(
                update(RUN)
                .where(
                    and_(RUN.c.id == run_id, RUN.c.lease_owner == self.owner, RUN.c.status.in_(UNFINISHED))
                )
                .values(values)
            )
        return finished.rowcount == 1

    # ------------------------------------------------------------ undoing

    async def undo(self, run_id: int) -> None:
        """Write every before-image of the run back, newest first, each under its database's
        write lock. Only the process that claimed the run (status UNDOING) calls it."""
        async with self.store.engine.connect() as conn:
            entries = (
                await conn.execute(
                    select(JOURNAL).where(JOURNAL.c.run_id == run_id).order_by(JOURNAL.c.id.desc())
                )
            ).all()
        for entry in entries:
            table = self.tables[(entry.target, entry.table_name)]
            key = orjson.loads(entry.key)
            where = and_(*(table.c[k] == _column_value(table, k, v) for k, v in key.items()))
            async with self.engines[entry.target].begin() as conn:
                await hold_write_lock(conn, write_lock_of(entry.target))
                if entry.after_image is not None and not await _left_as_written(
                    conn, table, where, orjson.loads(entry.after_image)
                ):
                    # The change never committed (its block rolled back, or its process died
                    # before the commit) or another run has changed the row since: with other
                    # processes writing, restoring it would overwrite what is theirs.
                    continue
                await conn.execute(delete(table).where(where))
                if entry.before is not None:
                    before = orjson.loads(entry.before)
                    await conn.execute(
                        insert(table).values({k: _column_value(table, k, v) for k, v in before.items()})
                    )

    async def _claim(self, run_id: int, *, own: bool, everything: bool = False) -> bool:
        """Take the run for undoing, by one conditional update that exactly one claimant wins:
        this process's own running run (own), or any run whose lease expired (or every
        unfinished run: `everything`, at the start of the only process)."""
        if own:
            condition = and_(RUN.c.lease_owner == self.owner, RUN.c.status == RUNNING)
        elif everything:
            condition = RUN.c.status.in_(UNFINISHED)
        else:
            expired = or_(RUN.c.lease_expires.is_(None), RUN.c.lease_expires < _stored(self.clock.now()))
            condition = and_(RUN.c.status.in_(UNFINISHED), expired)
        async with self.store.engine.begin() as conn:
            claimed = await conn.execute(
                update(RUN)
                .where(and_(RUN.c.id == run_id, condition))
                .values(status=UNDOING, lease_owner=self.owner, lease_expires=self._lease_end())
            )
        return claimed.rowcount == 1

    async def _undo_claimed(
        self, run_id: int, outcome: Outcome | None, kept: bool, *, own: bool, everything: bool = False
    ) -> bool:
        """Claim the run, undo it and finish it (DONE when its answer is kept, else UNDONE and
        its key forgotten); whether this process was the one to claim it."""
        if not await self._claim(run_id, own=own, everything=everything):
            return False
        self._live.add(run_id)
        try:
            await self.undo(run_id)
            await self._finish(run_id, DONE if kept else UNDONE, outcome, forget_key=not kept)
        finally:
            self._live.discard(run_id)
        return True

    async def recover(self, everything: bool = False) -> int:
        """Undo every unfinished run whose lease expired, its process gone (`everything`: every
        unfinished run, when this process starts alone on the store); how many this process
        undid (a run another process claimed first is that one's)."""
        unfinished: ColumnElement[bool] = RUN.c.status.in_(UNFINISHED)
        if not everything:
            expired = or_(RUN.c.lease_expires.is_(None), RUN.c.lease_expires < _stored(self.clock.now()))
            unfinished = and_(unfinished, expired)
        async with self.store.engine.connect() as conn:
            candidates = (await conn.execute(select(RUN.c.id, RUN.c.kind).where(unfinished))).all()
        undone = 0
        for run_id, kind in candidates:
            if await self._undo_claimed(run_id, None, False, own=False, everything=everything):
                undone += 1
                log.info(
                    "workflow run undone after its process stopped",
                    extra={"run": run_id, "kind": kind, "by": self.owner},
                )
        return undone

    async def start(self) -> int:
        """At start: the run rows get their lease columns (stores made before leases), then
        runs a crash left unfinished are undone: every one when this process is the only one
        (`shared` false), else those whose lease expired; how many."""
        async with self.store.engine.begin() as conn:
            await hold_write_lock(conn, SCHEMA_LOCK)  # processes starting at once add them once
            await add_lease_columns(conn)
        return await self.recover(everything=not self.shared)


class _Claimed(Exception):
    """Another request holds the idempotency key."""


def _replay(earlier: Any, input_hash: str) -> Outcome:
    if earlier.input_hash != input_hash:
        return Outcome(
            errors=[
                UserFailure(
                    UserErrorCode.CONFLICT,
                    "This idempotency key was used with other input.",
                    ["input", "idempotencyKey"],
                )
            ]
        )
    if earlier.status != DONE or earlier.result is None:
        return _busy()
    stored = orjson.loads(earlier.result)
    return Outcome(
        result=stored["result"], errors=[UserFailure(UserErrorCode(c), m, f) for c, m, f in stored["errors"]]
    )


def _busy() -> Outcome:
    return Outcome(
        errors=[
            UserFailure(
                UserErrorCode.CONFLICT,
                "A request with this idempotency key is still running; retry it later.",
                ["input", "idempotencyKey"],
            )
        ]
    )


def _lease_lost() -> Outcome:
    return Outcome(
        errors=[
            UserFailure(
                UserErrorCode.SOURCE_UNAVAILABLE,
                "The run took longer than its lease and is being undone; nothing is kept. Try again.",
            )
        ]
    )


def _column_value(table: Table, column: str, value: Any) -> Any:
    """JSON gives dates back as text: a Date or DateTime column gets its value again."""
    if not isinstance(value, str):
        return value
    try:
        python_type = table.c[column].type.python_type
    except NotImplementedError:
        return value
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if python_type is date:
        return date.fromisoformat(value)
    return value
