"""The registered agencies' adapters, opened together from their URLs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from adapters.base import DEFAULT_POOL, SourceBudget, SourceGuard, SqlSource, open_engine
from adapters.beijing_pass import BeijingPass
from adapters.card_service import CardService
from adapters.exit_entry import ExitEntry
from adapters.registry import DEFAULT_AGENCIES
from adapters.social_insurance import SocialInsurance
from adapters.spec import AgencySpec
from adapters.work_permit import WorkPermitSystem
from clock import SYSTEM_CLOCK, Clock
from domain.records import AgencyId

S = TypeVar("S", bound=SqlSource)


class Sources:
    """The registered agencies' sources, by agency id; the notice's five also by name."""

    def __init__(self, by_agency: Mapping[AgencyId, SqlSource]) -> None:
        self._by_agency = dict(by_agency)

    @classmethod
    def open(
        cls,
        urls: Mapping[AgencyId, str],
        budgets: Mapping[AgencyId, SourceBudget] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        agencies: Sequence[AgencySpec] = DEFAULT_AGENCIES,
        pool: int = DEFAULT_POOL,
    ) -> Sources:
        """The agencies' sources; with `budgets` (the server's), each call to a source is
        bounded, retried and cut off by its breaker (adapters/base.py, SourceGuard), on `clock`;
        without them (batch jobs: seeding, `hub link`), reads take as long as they take."""

        def source(spec: AgencySpec) -> SqlSource:
            budget = budgets.get(spec.id) if budgets is not None else None
            if budget is None:
                return spec.source(open_engine(urls[spec.id], pool=pool))
            return spec.source(
                open_engine(urls[spec.id], budget.timeout, pool), SourceGuard(spec.id, budget, clock)
            )

        return cls({spec.id: source(spec) for spec in agencies})

    def of(self, kind: type[S]) -> S:
        """The source of the given class (its agency's)."""
        found = self._by_agency.get(kind.agency)
        if not isinstance(found, kind):
            raise LookupError(f"no {kind.agency} source is registered")
        return found

    def __getitem__(self, agency: AgencyId) -> SqlSource:
        return self._by_agency[agency]

    @property
    def work_permits(self) -> WorkPermitSystem:
        return self.of(WorkPermitSystem)

    @property
    def insurance(self) -> SocialInsurance:
        return self.of(SocialInsurance)

    @property
    def cards(self) -> CardService:
        return self.of(CardService)

    @property
    def exit_entry(self) -> ExitEntry:
        return self.of(ExitEntry)

    @property
    def beijing_pass(self) -> BeijingPass:
        return self.of(BeijingPass)

    def all(self) -> tuple[SqlSource, ...]:
        return tuple(self._by_agency.values())

    def by_agency(self) -> dict[AgencyId, SqlSource]:
        return dict(self._by_agency)

    def sources_status(self) -> dict[str, dict[str, Any]]:
        """Per agency: `breaker` (closed, open, half_open), `failures` (consecutive failed
        calls), `calls`, `failedCalls`, `rejectedCalls` (failed fast while open) and
        `timeoutSeconds`. Read by /readyz and /metrics; touches no database."""
        return {source.agency: source.status() for source in self.all()}

    async def create_tables(self) -> None:
        for source in self.all():
            await source.create_tables()

    async def close(self) -> None:
        for source in self.all():
            await source.engine.dispose()
