"""`workforce`, aggregate: `workforceStatistics` as a table, one row per shown cell (counts
rounded to multiples of 5 by the same disclosure control, cells that round to 0 left out:
docs/statistics.md). The cells are few (bounded by the dimensions' values, not by persons)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from domain.records import StatisticsDimension, TalentCategory, WorkPermitStatus
from exports.table import Batch, Column, Extract, Params, Reader, dimension_column
from resolvers.query import PersonCriteria, Statistic, shown_statistics

READS = (("Query", "workforceStatistics"),)


async def open_workforce(params: Params, reader: Reader) -> Extract:
    group_by = params.choices("groupBy", StatisticsDimension)
    criteria = PersonCriteria(
        nationality=params.text("nationality"),
        permit_status=params.choice("permitStatus", WorkPermitStatus),
        category=params.choice("category", TalentCategory),
        employer_credit_code=params.text("employerCreditCode"),
        work_district=params.text("workDistrict"),
        insured=params.boolean("insured"),
    )
    params.check_all_read()
    shown = await shown_statistics(reader.store, reader.today, group_by, criteria)
    columns = (*(dimension_column(d) for d in group_by), Column("count", "integer"))
    return Extract(columns, _batches(shown, reader.batch_rows), rows=len(shown))


async def _batches(shown: list[Statistic], size: int) -> AsyncGenerator[Batch, None]:
    for start in range(0, max(len(shown), 1), size):
        cells = shown[start : start + size]
        yield Batch([(*(value for _d, value in s.keys), s.count) for s in cells], [])
