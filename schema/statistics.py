"""Workforce statistics: counts of persons by any combination of dimensions."""

from __future__ import annotations

import strawberry

from resolvers.query import Statistic
from schema.common import StatisticsDimension


@strawberry.type(description="One dimension's value in a statistics row.")
class StatisticsKey:
    dimension: StatisticsDimension = strawberry.field(description="The dimension.")
    value: str = strawberry.field(
        description="The value: a country, category, status, district, credit code, `true`/`false`, or NONE."
    )


@strawberry.type(
    description="How many persons share one combination of dimension values, rounded so that no "
    "combination of queries singles anyone out (docs/statistics.md). A combination whose count "
    "rounds to 0 is not listed."
)
class StatisticsRow:
    keys: list[StatisticsKey] = strawberry.field(description="The combination of values this row counts.")
    count: int | None = strawberry.field(
        description="How many persons, rounded to a multiple of 5 by fixed random rounding: the true "
        "count rounded down, or up with a probability of (count mod 5) / 5 decided by a key of the "
        "persons counted, so the same persons always show the same count in every query, grouping "
        "order and filter, and a shown count is within 4 of the true one. Never null while "
        "`suppressed` is false."
    )
    suppressed: bool = strawberry.field(
        description="Whether the count is withheld (then null). Rounding withholds nothing, so this is "
        "false; a row that would show 0 is left out instead."
    )


def statistics_row(counted: Statistic) -> StatisticsRow:
    return StatisticsRow(
        keys=[StatisticsKey(dimension=d, value=v) for d, v in counted.keys],
        count=counted.count,
        suppressed=False,
    )
