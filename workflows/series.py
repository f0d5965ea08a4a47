"""Number series the hub hands out in the agencies' formats (permits, notification letters,
cards, e-cards, residence permits, visas), allocated in the hub's store so that no two
processes ever take the same number.

Each series remembers the last number the hub allocated. The next is one past both that and
the agency's own highest (read by the caller in the agency's write transaction), so the series
seeds itself from the agency on first use and never falls behind numbers the agency issued
itself. The allocation is one short transaction under the store's write lock (SQLite's
BEGIN IMMEDIATE, PostgreSQL's advisory transaction lock): the lock is what makes
read-then-write of the last number safe across processes.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel

from adapters.base import hold_write_lock
from identity.tables import table_of

SERIES_LOCK = 0x6875625F736571  # "hub_seq"


class NumberSeries(SQLModel, table=True):
    """The last number the hub allocated in one series (its name says table, column and prefix)."""

    __tablename__ = "number_series"

    name: str = Field(primary_key=True)
    last: int


SERIES = table_of(NumberSeries)


async def allocate(engine: AsyncEngine, name: str, agency_highest: int) -> int:
    """The next number of series `name`, past both its last allocation and `agency_highest`."""
    async with engine.begin() as conn:
        await hold_write_lock(conn, SERIES_LOCK)
        last = (await conn.execute(select(SERIES.c.last).where(SERIES.c.name == name))).scalar_one_or_none()
        number = max(last or 0, agency_highest) + 1
        if last is None:
            await conn.execute(insert(SERIES).values(name=name, last=number))
        else:
            await conn.execute(update(SERIES).where(SERIES.c.name == name).values(last=number))
    return number
