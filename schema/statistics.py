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


@strawberry.type(description="How many persons share one combination of dimension values.")
class StatisticsRow:
    keys: list[StatisticsKey] = strawberry.field(description="The combination of values this row counts.")
    count: int | None = strawberry.field(
        description="How many persons; null when suppressed (below 5, or recoverable from other counts)."
    )
    suppressed: bool = strawberry.field(
        description="Whether the count is withheld so that nobody can be singled out."
    )


def statistics_row(counted: Statistic) -> StatisticsRow:
    return StatisticsRow(
        keys=[StatisticsKey(dimension=d, value=v) for d, v in counted.keys],  # type: ignore[arg-type]
        count=counted.count,
        suppressed=counted.suppressed,
    )
