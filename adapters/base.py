"""What every agency adapter shares: its engine, its tables, batch reads and its errors.

An adapter wraps one agency's legacy database as it is. Reads are batch-shaped: they take
many keys and answer in one statement, one result per key, in the keys' order, where a
result is the record, nothing, or that key's own error::

    permits = await work_permits.permits_by_applicant(["17", "42"], today)
    # -> [RecordList([...]), RecordList([])]
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import ColumnElement, MetaData, Table, case, event, func, literal, select, tuple_
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from adapters.records import Agency, DataProblem, Page

R = TypeVar("R")
K = TypeVar("K", bound=Hashable)


class AdapterError(Exception):
    """Something an agency's source could not give."""

    def __init__(self, agency: Agency, message: str) -> None:
        super().__init__(message)
        self.agency = agency


class SourceDataInvalid(AdapterError):
    """A legacy row whose values cannot be mapped to the graph's."""

    def __init__(self, problem: DataProblem) -> None:
        super().__init__(problem.agency, problem.describe())
        self.problem = problem


class RowWriter(Protocol):
    """How a workflow writes to a legacy table: every change journaled, so it can be undone."""

    async def insert(
        self, conn: AsyncConnection, target: str, table: Table, row: dict[str, Any], key: list[str]
    ) -> None: ...

    async def update(
        self, conn: AsyncConnection, target: str, table: Table, key: dict[str, Any], values: dict[str, Any]
    ) -> None: ...


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


def open_engine(url: str) -> AsyncEngine:
    """An engine for one database; SQLite files get WAL so readers never wait on a writer."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


class SqlSource:
    """One agency's database: its engine and its tables."""

    agency: Agency
    metadata: MetaData

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create_tables(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(self.metadata.create_all)

    async def drop_tables(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(self.metadata.drop_all)

    def connect(self) -> Any:
        return self.engine.connect()

    def problem(self, key: object, error: UnmappableValue) -> DataProblem:
        return DataProblem(self.agency, str(key), error.field, error.rule)

    def map_one(self, key: object, row: Row[Any], mapper: Callable[[Row[Any]], R]) -> R | SourceDataInvalid:
        try:
            return mapper(row)
        except UnmappableValue as error:
            return SourceDataInvalid(self.problem(key, error))


def answer_by_key(
    keys: Sequence[K],
    pairs: Iterable[tuple[K, R | SourceDataInvalid]],
) -> list[R | SourceDataInvalid | None]:
    """One result per asked key, in the keys' order; absent keys answer None."""
    found: dict[K, R | SourceDataInvalid] = dict(pairs)
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


async def fetch_all(conn: AsyncConnection, statement: Any) -> Sequence[Row[Any]]:
    return (await conn.execute(statement)).all()


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


def group_index(
    owner: ColumnElement[Any], groups: Sequence[Group], as_int: bool = False
) -> tuple[Any, list[Any]]:
    """A SQL expression giving each row the index of the group its owner key is in, and the
    flat list of keys for the IN clause."""
    flat: list[Any] = []
    whens: dict[Any, int] = {}
    for index, group in enumerate(groups):
        for key in group:
            value = int(key) if as_int else key
            if value not in whens:
                whens[value] = index
                flat.append(value)
    if not whens:
        return literal(-1), []
    return case(whens, value=owner, else_=-1), flat


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


def paged_per_group(
    columns: Sequence[Any],
    owner: ColumnElement[Any],
    groups: Sequence[Group],
    order: Sequence[ColumnElement[Any]],
    first: int,
    after: tuple[Any, ...] | None,
    source: Any = None,
) -> tuple[Any, int]:
    """One statement that pages every group at once: rows ordered by `order` (all descending,
    newest first), after the keyset position `after`, at most first + 1 per group (the extra
    row tells whether a next page exists). Returns the statement and the group count."""
    group, keys = group_index(owner, groups)
    statement = select(
        *columns,
        group.label("grp"),
        func.row_number().over(partition_by=group, order_by=[c.desc() for c in order]).label("pos"),
    ).where(owner.in_(keys))
    if source is not None:
        statement = statement.select_from(source)
    if after is not None:
        statement = statement.where(tuple_(*order) < tuple_(*after))
    ranked = statement.subquery("ranked")
    return select(ranked).where(ranked.c.pos <= first + 1).order_by(ranked.c.grp, ranked.c.pos), len(groups)


def pages_from_rows(
    count: int,
    first: int,
    rows: Iterable[Any],
    item: Callable[[Any], R | SourceDataInvalid],
    position: Callable[[Any], tuple[str | int, ...]],
) -> list[Page[R | SourceDataInvalid]]:
    """Rows of `paged_per_group` cut into one page per group."""
    gathered: list[list[Any]] = [[] for _ in range(count)]
    for row in rows:
        if 0 <= row.grp < count:
            gathered[row.grp].append(row)
    return [
        Page(
            items=[item(r) for r in group_rows[:first]],
            positions=[position(r) for r in group_rows[:first]],
            has_next=len(group_rows) > first,
        )
        for group_rows in gathered
    ]
