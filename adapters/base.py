"""What every agency adapter shares: its engine, its tables, batch reads, its guard and its errors.

An adapter wraps one agency's legacy database as it is. Reads are batch-shaped: they take
many keys and answer in one statement, one result per key, in the keys' order, where a
result is the record, nothing, or that key's own error::

    permits = await work_permits.permits_by_applicant(["17", "42"], today)
    # -> [RecordList([...]), RecordList([])]

Every public coroutine method of an adapter is such a read, and runs under its source's
guard (`SourceGuard`) when the source was opened with a time budget: within the budget,
retried when the failure is transient, failing fast while the source's breaker is open, and
failing as `SourceUnavailable` naming the agency.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, Protocol, TypeVar

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import HalfOpenedState, OpenedState
from sqlalchemy import BindParameter, ColumnElement, MetaData, Table, bindparam, event, func, select, tuple_
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from clock import SYSTEM_CLOCK, Clock
from domain.errors import SourceDataInvalid, SourceUnavailable
from domain.evidence import Evidence
from domain.records import AgencyId, DataProblem, Page

try:  # SQLAlchemy 2.1 names it await_; 2.0 await_only
    from sqlalchemy.util import await_ as await_  # re-exported (faults)
except ImportError:  # pragma: no cover
    from sqlalchemy.util import await_only as await_

R = TypeVar("R")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


# Unreadable legacy values met, per agency (rows that could not be mapped, and values that
# failed their check character), since the process started: the metrics read it.
problems_by_agency: Counter[str] = Counter()


class RowWriter(Protocol):
    """How a workflow writes to a legacy table: every change journaled, so it can be undone."""

    async def insert(
        self, conn: AsyncConnection, target: str, table: Table, row: dict[str, Any], key: list[str]
    ) -> None: ...

    async def update(
        self, conn: AsyncConnection, target: str, table: Table, key: dict[str, Any], values: dict[str, Any]
    ) -> None: ...

    async def delete(self, conn: AsyncConnection, target: str, table: Table, key: dict[str, Any]) -> None: ...

    async def allocate(self, series: str, agency_highest: int) -> int:
        """The next number of a series, past the agency's highest, never handed out twice."""
        ...


async def next_in_series(
    writer: RowWriter, conn: AsyncConnection, column: ColumnElement[str], prefix: str, digits: int
) -> str:
    """The next number `prefix` + `digits` digits of a series the agency keeps in `column`,
    allocated by the writer past the agency's highest so that no two processes take the same
    one, and checked against the agency's own numbers: one it issued itself meanwhile is
    skipped, never reused. Call it inside the agency's write transaction."""
    series = f"{column.table.name}.{column.name}:{prefix}"
    while True:
        highest = (await conn.execute(select(func.max(column)).where(column.like(f"{prefix}%")))).scalar_one()
        allocated = await writer.allocate(series, int(highest[len(prefix) :]) if highest else 0)
        number = f"{prefix}{allocated:0{digits}d}"
        if (await conn.execute(select(column).where(column == number).limit(1))).first() is None:
            return number


class UnmappableValue(ValueError):
    """Raised by a mapping function; the adapter turns it into a DataProblem with the row's key."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field} {rule}")
        self.field = field
        self.rule = rule


class RecordList(list[R], Generic[R]):
    """The records of one key that could be mapped, and the rows that could not; `head_problem`
    is set when the first row in the statement's order (the current one) could not be read."""

    def __init__(self, items: Iterable[R] = (), problems: Iterable[DataProblem] = ()) -> None:
        super().__init__(items)
        self.problems: list[DataProblem] = list(problems)
        self.head_problem: DataProblem | None = None


DEFAULT_POOL = 20


def open_engine(url: str, statement_timeout: float | None = None, pool: int = DEFAULT_POOL) -> AsyncEngine:
    """An engine for one database; SQLite files get WAL so readers never wait on a writer.

    A server's engine opens at most `pool` connections and keeps half of them; past that, a
    caller waits for one to come free (HUB_DB_POOL: every process of a hub has its own pools,
    which must fit in the server's connection limit together).

    `statement_timeout` (seconds) is the server's own limit on each statement where the
    engine offers one: PostgreSQL's `statement_timeout`. SQLite has none; there a statement
    whose caller was cancelled (a time budget ran out) is interrupted instead, so the
    connection's worker thread is free again at once rather than when the statement ends.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine.sync_engine, "handle_error")
        def _interrupt_when_cancelled(context: Any) -> None:
            if isinstance(context.original_exception, asyncio.CancelledError):
                _interrupt_sqlite(context.connection)

        return engine
    connect_args: dict[str, Any] = {}
    if statement_timeout is not None and url.startswith("postgresql"):
        milliseconds = max(1, round(statement_timeout * 1000))
        connect_args["server_settings"] = {"statement_timeout": str(milliseconds)}
    return create_async_engine(
        url,
        pool_size=max(1, pool // 2),
        max_overflow=pool - max(1, pool // 2),
        pool_pre_ping=True,
        connect_args=connect_args,
    )


async def hold_write_lock(conn: AsyncConnection, lock: int) -> None:
    """Make this transaction the only writer of what `lock` guards until it ends, across
    processes: SQLite's own write lock, taken at once (the driver would begin the transaction
    only at its first write, after what was read to decide it), or PostgreSQL's
    transaction-scoped advisory lock `lock`. Must be the transaction's first statement. Other
    databases get no lock: there, run one process per database."""
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")  # others wait up to the busy timeout
    elif conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(lock)))


def _interrupt_sqlite(connection: Any) -> None:
    """Interrupt the statement an aiosqlite connection's thread is running (it runs on after
    its awaiting task was cancelled, and the connection could not be closed until it ends)."""
    try:
        driver = connection.connection.driver_connection
        if driver is not None:
            await_(driver.interrupt())
    except Exception:  # already closed or invalidated: nothing runs there
        return


# ---------------------------------------------------------------- time budgets, retries, breakers


@dataclass(frozen=True, slots=True)
class SourceBudget:
    """How long one call to a source may take, how a transient failure is retried, and when
    the source is cut off (settings.py reads these per agency from the environment)."""

    timeout: float | None = 2.0  # seconds per call, retries included; None: no limit (batch jobs)
    attempts: int = 3  # tries of a read whose failure is transient (writes: one)
    breaker_failures: int = 5  # consecutive failed calls that open the breaker
    breaker_pause: float = 10.0  # seconds the open breaker fails fast before it lets a probe through


_TRANSIENT = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # no pooled connection came free in time
    OSError,  # refused, reset, unreachable (TimeoutError is one too)
)
_NOT_THE_SOURCE = (sa_exc.IntegrityError, sa_exc.ProgrammingError, sa_exc.DataError, sa_exc.NotSupportedError)


def is_transient(error: BaseException) -> bool:
    """A failure that may not recur: the connection, the server or a lock, not the statement."""
    return isinstance(error, _TRANSIENT) or (
        isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated
    )


def is_source_failure(error: BaseException) -> bool:
    """A failure of the source rather than of the hub's statement (a statement the database
    refuses for its content, a key violation, is the hub's, and stays an internal error)."""
    return is_transient(error) or (
        isinstance(error, sa_exc.DBAPIError) and not isinstance(error, _NOT_THE_SOURCE)
    )


def _no_failure(error: BaseException) -> bool:
    """What the breaker does not count: anything but an unavailable source (a broken rule, a
    cancelled caller)."""
    return not isinstance(error, SourceUnavailable)


class SourceGuard:
    """One agency's time budget, retries and circuit breaker.

    A read runs within the budget (a timeout on the guard's clock: `asyncio.timeout` in
    service, which cancels the driver's work; the budget includes the retries); a transient
    failure is retried with jittered exponential backoff (tenacity) while the budget lasts; a
    call that still fails counts against the breaker (purgatory), which after
    `breaker_failures` consecutive failed calls opens: calls then fail at once, before any
    connection is taken, until `breaker_pause` has passed by the guard's clock and calls probe
    the source again (half-open): a success closes the breaker, a failure opens it for another
    pause. Writes (`bounded`) share the budget and the breaker but are never retried here: a
    workflow's run is undone and retried as a whole, by its caller.
    """

    def __init__(self, agency: AgencyId, budget: SourceBudget, clock: Clock = SYSTEM_CLOCK) -> None:
        self.agency = agency
        self.budget = budget
        self.clock = clock  # the budget and the pause run on it (tests pass one they move)
        self.calls = 0
        self.failed_calls = 0
        self.consecutive_failures = 0
        self.rejected_calls = 0  # failed fast while the breaker was open
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=max(1, budget.breaker_failures),
            # purgatory would end the pause by time.time(); the guard ends it by its clock
            # instead (`_probe_when_paused`), so purgatory's own pause never ends.
            default_ttl=math.inf,
            exclude=[(BaseException, _no_failure)],
        )
        self._breaker: Any = None
        self._opened_at: float | None = None  # by the clock, when the breaker last opened

    async def _get_breaker(self) -> Any:
        if self._breaker is None:
            self._breaker = await self._breakers.get_breaker(str(self.agency))
        return self._breaker

    def _pause_over(self) -> bool:
        return (
            self._opened_at is not None
            and self.clock.monotonic() >= self._opened_at + self.budget.breaker_pause
        )

    def _probe_when_paused(self, breaker: Any) -> None:
        """Once the open breaker's pause is over, calls probe the source (purgatory's half-open
        state: a success closes the breaker, a failure opens it again)."""
        if breaker.context.state == "opened" and self._pause_over():
            self._opened_at = None
            breaker.context.set_state(HalfOpenedState())

    def _note_opening(self, breaker: Any) -> None:
        """After a failed call: if it opened the breaker (the last failure allowed, or a failed
        probe), the pause starts now."""
        if breaker.context.state == "opened" and self._opened_at is None:
            self._opened_at = self.clock.monotonic()

    def status(self) -> dict[str, Any]:
        """The breaker's state (closed, open, half_open: an open breaker whose pause is over
        lets the next call probe) and its count of consecutive failures, with call counts."""
        state = "closed"
        if self._breaker is not None:
            context = self._breaker.context
            if context.state == "opened":
                state = "half_open" if self._pause_over() else "open"
            elif context.state == "half-opened":
                state = "half_open"
        return {
            "breaker": state,
            "failures": self.consecutive_failures,
            "calls": self.calls,
            "failedCalls": self.failed_calls,
            "rejectedCalls": self.rejected_calls,
            "timeoutSeconds": self.budget.timeout,
        }

    async def read(self, call: Callable[[], Awaitable[R]]) -> R:
        """One batch read: bounded, retried when transient, cut off by the breaker."""
        async with self.bounded():
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(max(1, self.budget.attempts)),
                wait=wait_random_exponential(multiplier=0.05, max=0.5),
                retry=retry_if_exception(is_transient),
                reraise=True,
            ):
                with attempt:
                    return await call()
        raise AssertionError("tenacity either returns or raises")  # pragma: no cover

    @asynccontextmanager
    async def bounded(self) -> AsyncIterator[None]:
        """The block runs within the budget and counts for the breaker; a source failure or
        the budget running out leaves it as SourceUnavailable. Not retried."""
        self.calls += 1
        breaker = await self._get_breaker()
        self._probe_when_paused(breaker)
        try:
            async with breaker:
                try:
                    async with self.clock.timeout(self.budget.timeout):
                        yield
                except TimeoutError:
                    raise SourceUnavailable(
                        self.agency, f"no answer within {self.budget.timeout:g} s"
                    ) from None
                except Exception as error:
                    if is_source_failure(error):
                        raise SourceUnavailable(self.agency, _kind_of(error)) from error
                    raise
            self.consecutive_failures = 0
        except OpenedState as opened:
            opened.__traceback__ = None  # purgatory raises the same instance each time
            self.rejected_calls += 1
            raise SourceUnavailable(self.agency, "cut off after repeated failures; retried later") from None
        except SourceUnavailable:
            self.failed_calls += 1
            self.consecutive_failures += 1
            self._note_opening(breaker)
            raise


def _kind_of(error: BaseException) -> str:
    """Why, in words for the client: never the driver's own message (it may quote SQL)."""
    if isinstance(error, OSError | sa_exc.DisconnectionError | sa_exc.InterfaceError):
        return "connection failed"
    if isinstance(error, sa_exc.TimeoutError):
        return "no connection came free"
    if isinstance(error, sa_exc.OperationalError):
        return "the database failed"
    return "the database failed the statement"


def _guarded(read: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(read)
    async def guarded(self: SqlSource, *args: Any, **kwargs: Any) -> Any:
        guard = self.guard
        if guard is None:
            return await read(self, *args, **kwargs)
        return await guard.read(lambda: read(self, *args, **kwargs))

    guarded.__hub_guarded__ = True  # type: ignore[attr-defined]  # marks the read as guarded
    return guarded


class SqlSource:
    """One agency's database: its engine, its tables and its guard.

    Every public coroutine method a subclass defines is a batch read and is wrapped to run
    under `self.guard` (none: unbounded, as for batch jobs such as `hub link`)."""

    agency: AgencyId
    metadata: MetaData

    def __init__(self, engine: AsyncEngine, guard: SourceGuard | None = None) -> None:
        self.engine = engine
        self.guard = guard

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, member in list(vars(cls).items()):
            if (
                not name.startswith("_")
                and inspect.iscoroutinefunction(member)
                and not getattr(member, "__hub_guarded__", False)
            ):
                setattr(cls, name, _guarded(member))

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a read outside the batch methods (a workflow's check), within the
        source's budget and breaker; not retried."""
        if self.guard is None:
            async with self.engine.connect() as conn:
                yield conn
            return
        async with self.guard.bounded(), self.engine.connect() as conn:
            yield conn

    async def evidence(self) -> Evidence:
        """What the agency's person records say about whose they are (domain/evidence.py);
        an agency without person records yields none."""
        return Evidence()

    def status(self) -> dict[str, Any]:
        if self.guard is None:
            return {"breaker": "closed", "failures": 0, "timeoutSeconds": None}
        return self.guard.status()

    async def create_tables(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(self.metadata.create_all)

    async def has_tables(self) -> bool:
        """Whether every table of the agency's schema exists (an estate was written)."""
        names = list(self.metadata.tables)
        async with self.engine.connect() as conn:
            return await conn.run_sync(lambda sync: all(sa_inspect(sync).has_table(n) for n in names))

    async def drop_tables(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(self.metadata.drop_all)

    def connect(self) -> Any:
        return self.engine.connect()

    def problem(self, key: object, error: UnmappableValue) -> DataProblem:
        return DataProblem(self.agency, str(key), error.field, error.rule)

    def map_one(self, key: object, row: Row[Any], mapper: Callable[[Row[Any]], R]) -> R | SourceDataInvalid:
        try:
            mapped = mapper(row)
        except UnmappableValue as error:
            problems_by_agency[str(self.agency)] += 1
            return SourceDataInvalid(self.problem(key, error))
        checked = getattr(mapped, "problems", None)
        if checked:
            problems_by_agency[str(self.agency)] += len(checked)
        return mapped


def answer_by_key(keys: Sequence[K], pairs: Iterable[tuple[K, V]]) -> list[V | None]:
    """One result per asked key, in the keys' order; absent keys answer None. A value is a
    record or SourceDataInvalid, where the mapping goes through `map_one`."""
    found: dict[K, V] = dict(pairs)
    return [found.get(key) for key in keys]


def group_by_key(
    keys: Sequence[K],
    pairs: Iterable[tuple[K, R | SourceDataInvalid]],
) -> list[RecordList[R]]:
    """Many records per asked key, keeping the statement's order; bad rows become problems."""
    grouped: dict[K, RecordList[R]] = {key: RecordList() for key in keys}
    for key, item in pairs:
        bucket = grouped.get(key)
        if bucket is None:
            continue
        if isinstance(item, SourceDataInvalid):
            bucket.problems.append(item.problem)
        else:
            bucket.append(item)
    return [grouped[key] for key in keys]


async def fetch_all(
    conn: AsyncConnection, statement: Any, parameters: dict[str, Any] | None = None
) -> Sequence[Row[Any]]:
    return (await conn.execute(statement, parameters)).all()


async def insert_rows(
    conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], chunk: int = 20_000
) -> None:
    """A Core insert of many rows given as dicts; a column a row leaves out is NULL (an
    autoincrement key gets its next value)."""
    if rows:
        columns = [c.name for c in table.columns]
        await insert_tuples(conn, table, columns, [tuple(row.get(c) for c in columns) for row in rows], chunk)


async def insert_tuples(
    conn: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    chunk: int = 20_000,
) -> None:
    """A Core insert of many rows given as tuples in `columns` order, in chunks. On SQLite the
    compiled statement goes straight to the driver's executemany: SQLAlchemy's per-row
    parameter processing was half the time of a 100,000-person seed there. Other dialects get
    the ordinary executemany."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        for start in range(0, len(rows), chunk):
            await conn.execute(
                table.insert(), [dict(zip(columns, row, strict=True)) for row in rows[start : start + chunk]]
            )
        return
    compiled = table.insert().compile(dialect=conn.dialect, column_keys=list(columns))
    order = [list(columns).index(name) for name in compiled.positiontup or []]
    reorder = order != list(range(len(columns)))
    statement = str(compiled)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        await conn.exec_driver_sql(
            statement, [tuple(row[i] for i in order) for row in part] if reorder else list(part)
        )


# ---------------------------------------------------------------- legacy formats shared by agencies


def blank_to_none(value: str | None) -> str | None:
    """Legacy text is fixed-width and uses '' for absent: trim, and make empty mean None."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def parse_compact_date(value: str | int | None, field: str) -> date | None:
    """`YYYYMMDD` as text or integer; empty means absent."""
    text = blank_to_none(str(value)) if value is not None else None
    if text is None:
        return None
    if len(text) != 8 or not text.isdigit():
        raise UnmappableValue(field, f"is not a YYYYMMDD date: {text!r}")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise UnmappableValue(field, f"is an impossible date: {text!r}") from None


def parse_separated_date(value: str | None, field: str, separator: str) -> date | None:
    """`YYYY-MM-DD` or `YYYY/MM/DD`; empty means absent."""
    text = blank_to_none(value)
    if text is None:
        return None
    parts = text.split(separator)
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise UnmappableValue(field, f"is not a YYYY{separator}MM{separator}DD date: {text!r}")
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        raise UnmappableValue(field, f"is an impossible date: {text!r}") from None


def parse_timestamp(value: str | None, field: str) -> datetime | None:
    """RFC 3339 with an offset; empty means absent."""
    text = blank_to_none(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UnmappableValue(field, f"is not an RFC 3339 time: {text!r}") from None
    if parsed.tzinfo is None:
        raise UnmappableValue(field, f"has no offset: {text!r}")
    return parsed


def required(value: R | None, field: str) -> R:
    if value is None:
        raise UnmappableValue(field, "is empty")
    return value


def code(mapping: dict[str, R], value: str | None, field: str) -> R:
    """A legacy code mapped through its agency's table, or UnmappableValue naming it."""
    text = (value or "").strip()
    try:
        return mapping[text]
    except KeyError:
        raise UnmappableValue(field, f"has an unknown code {text!r}") from None


# ---------------------------------------------------------------- person-grouped batch reads

Group = tuple[str, ...]
"""The keys one person has in one source (usually one; a lost card or a second exit-entry
record makes more). Person relationships are read per group so that ordering, "current"
and paging are decided per person in SQL, for many persons in one statement."""


# The keys of a batch, as an expanding IN list: a statement built once with it serves every batch.
KEYS: BindParameter[Any] = bindparam("keys", expanding=True)


@dataclass(frozen=True, slots=True)
class GroupIndex:
    """Which group each owner key is in (the first group naming it), and every key once for the
    statement's expanding IN list. Rows are mapped to their groups here, by their owner key,
    rather than by a CASE in SQL: one statement then serves every batch, built once."""

    keys: list[Any]
    count: int
    group_of: dict[Any, int]

    @classmethod
    def of(cls, groups: Sequence[Group], as_int: bool = False) -> GroupIndex:
        group_of: dict[Any, int] = {}
        for index, group in enumerate(groups):
            for key in group:
                group_of.setdefault(int(key) if as_int else key, index)
        return cls(list(group_of), len(groups), group_of)

    def __call__(self, owner: Any) -> int:
        """The group of a row's owner key; -1 for a key no group names."""
        return self.group_of.get(owner, -1)


def split_mapped(results: Iterable[R | SourceDataInvalid]) -> tuple[list[R], list[SourceDataInvalid]]:
    """Mapped records and the rows that could not be mapped, each kept."""
    found: list[R] = []
    bad: list[SourceDataInvalid] = []
    for result in results:
        if isinstance(result, SourceDataInvalid):
            bad.append(result)
        else:
            found.append(result)
    return found, bad


def by_group(count: int, pairs: Iterable[tuple[int, R | SourceDataInvalid]]) -> list[RecordList[R]]:
    """Rows already tagged with their group index, gathered per group in statement order."""
    grouped: list[RecordList[R]] = [RecordList() for _ in range(count)]
    for index, item in pairs:
        if 0 <= index < count:
            bucket = grouped[index]
            if isinstance(item, SourceDataInvalid):
                if not bucket and not bucket.problems:
                    bucket.head_problem = item.problem
                bucket.problems.append(item.problem)
            else:
                bucket.append(item)
    return grouped


def first_of_group(
    count: int, pairs: Iterable[tuple[int, R | SourceDataInvalid]]
) -> list[R | SourceDataInvalid | None]:
    """Rows ranked per group; the first row of each group is its answer."""
    answers: list[R | SourceDataInvalid | None] = [None] * count
    for index, item in pairs:
        if 0 <= index < count and answers[index] is None:
            answers[index] = item
    return answers


class PagedPerGroup:
    """One statement that pages every group at once, built once per shape (first page, or
    after a keyset position): rows ordered by `order` (all descending, newest first; a unique
    key), after the position, at most first + 1 per group (the extra row tells whether a next
    page exists).

    SQL ranks the rows per owner key and keeps first + 1 of each; the statement orders them all
    by `order`, and `pages` keeps the first first + 1 of each group's owners in that order. A
    group's first rows are among its owners' first rows, so a group of several owner keys (a
    lost card's and the new one's payments) is paged exactly as one partition per group was."""

    def __init__(
        self,
        columns: Sequence[Any],
        owner: ColumnElement[Any],
        order: Sequence[ColumnElement[Any]],
        source: Any = None,
    ) -> None:
        self._first_page = self._build(columns, owner, order, source, after=False)
        self._next_page = self._build(columns, owner, order, source, after=True)
        self._after_names = [f"after_{i}" for i in range(len(order))]

    @staticmethod
    def _build(
        columns: Sequence[Any],
        owner: ColumnElement[Any],
        order: Sequence[ColumnElement[Any]],
        source: Any,
        after: bool,
    ) -> Any:
        statement = select(
            *columns,
            owner.label("owner"),
            func.row_number().over(partition_by=owner, order_by=[c.desc() for c in order]).label("pos"),
        ).where(owner.in_(KEYS))
        if source is not None:
            statement = statement.select_from(source)
        if after:
            position = [bindparam(f"after_{i}", type_=c.type) for i, c in enumerate(order)]
            statement = statement.where(tuple_(*order) < tuple_(*position))
        ranked = statement.subquery("ranked")
        return (
            select(ranked)
            .where(ranked.c.pos <= bindparam("per_owner"))
            .order_by(*(ranked.c[c.name].desc() for c in order))
        )

    async def rows(
        self, conn: AsyncConnection, index: GroupIndex, first: int, after: tuple[Any, ...] | None
    ) -> Sequence[Row[Any]]:
        parameters: dict[str, Any] = {"keys": index.keys, "per_owner": first + 1}
        if after is not None:
            parameters.update(zip(self._after_names, after, strict=True))
        return await fetch_all(conn, self._first_page if after is None else self._next_page, parameters)

    @staticmethod
    def pages(
        index: GroupIndex,
        first: int,
        rows: Iterable[Any],
        item: Callable[[Any], R | SourceDataInvalid],
        position: Callable[[Any], tuple[str | int, ...]],
    ) -> list[Page[R | SourceDataInvalid]]:
        """The rows cut into one page per group."""
        gathered: list[list[Any]] = [[] for _ in range(index.count)]
        for row in rows:
            group = index(row.owner)
            if group >= 0 and len(gathered[group]) <= first:
                gathered[group].append(row)
        return [
            Page(
                items=[item(r) for r in group_rows[:first]],
                positions=[position(r) for r in group_rows[:first]],
                has_next=len(group_rows) > first,
            )
            for group_rows in gathered
        ]
