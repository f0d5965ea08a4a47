"""`expiring-permits-by-week`, aggregate: how many persons' current valid permits end in each
ISO week of the next `withinDays` days, by any of the person index's dimensions (`by`).
Each (week, values) cell is rounded like a `workforceStatistics` cell, by the sum of its
persons' record keys, and left out when it rounds to 0 (docs/statistics.md), so a reporting
job learns no count of 1 to 4 however it slices weeks and dimensions.

The store counts per end date (SQL has no ISO week common to SQLite and PostgreSQL); the
dates come in order, so one week's cells are summed at a time."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import date, timedelta

from access.disclosure import rounded
from domain.records import StatisticsDimension
from exports.table import Batch, Column, Extract, Params, Reader, dimension_column
from resolvers.query import check_within_days

# PERMIT_STATUS is left out: every permit counted is valid.
DIMENSIONS = [d for d in StatisticsDimension if d is not StatisticsDimension.PERMIT_STATUS]
READS = (("Query", "workforceStatistics"),)

Values = tuple[str, ...]


async def open_expiring_by_week(params: Params, reader: Reader) -> Extract:
    within_days = params.integer("withinDays")
    check_within_days(within_days)
    by = params.choices("by", StatisticsDimension, DIMENSIONS)
    params.check_all_read()
    columns = (
        Column("week"),
        Column("weekStarts", "date"),
        *(dimension_column(d) for d in by),
        Column("count", "integer"),
    )
    return Extract(columns, _batches(reader, by, reader.today + timedelta(days=within_days)))


async def _batches(reader: Reader, by: list[StatisticsDimension], until: date) -> AsyncGenerator[Batch, None]:
    week: tuple[int, int] | None = None
    cells: dict[Values, tuple[int, int]] = {}
    async for ends, counted in reader.store.expiring_counts(by, reader.today, until):
        year, number, _day = ends.isocalendar()
        if (year, number) != week:
            if week is not None:
                yield _shown(week, cells)
            week, cells = (year, number), {}
        values = tuple(value for _d, value in counted.keys)
        count, key_sum = cells.get(values, (0, 0))
        cells[values] = (count + counted.count, key_sum + counted.key_sum)
    if week is not None:
        yield _shown(week, cells)


def _shown(week: tuple[int, int], cells: dict[Values, tuple[int, int]]) -> Batch:
    """One week's cells, each rounded by its persons' key sum; those that round to 0 left out."""
    year, number = week
    starts = date.fromisocalendar(year, number, 1)
    rows = []
    for values in sorted(cells):
        shown = rounded(*cells[values])
        if shown > 0:
            rows.append((f"{year}-W{number:02d}", starts, *values, shown))
    return Batch(rows, [])
