"""The five agencies' adapters, opened together from their URLs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import SourceBudget, SourceGuard, SqlSource, open_engine
from adapters.beijing_pass import BeijingPass
from adapters.card_service import CardService
from adapters.exit_entry import ExitEntry
from adapters.social_insurance import SocialInsurance
from adapters.work_permit import WorkPermitSystem
from clock import SYSTEM_CLOCK, Clock
from domain.records import Agency


@dataclass(frozen=True)
class Sources:
    work_permits: WorkPermitSystem
    insurance: SocialInsurance
    cards: CardService
    exit_entry: ExitEntry
    beijing_pass: BeijingPass

    @classmethod
    def open(
        cls,
        urls: Mapping[Agency, str],
        budgets: Mapping[Agency, SourceBudget] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> Sources:
        """The five sources; with `budgets` (the server's), each call to a source is bounded,
        retried and cut off by its breaker (adapters/base.py, SourceGuard), on `clock`; without
        them (batch jobs: seeding, `hub link`), reads take as long as they take."""

        def source(kind: type[SqlSource], agency: Agency) -> Any:
            budget = budgets.get(agency) if budgets is not None else None
            if budget is None:
                return kind(open_engine(urls[agency]))
            return kind(open_engine(urls[agency], budget.timeout), SourceGuard(agency, budget, clock))

        return cls(
            work_permits=source(WorkPermitSystem, Agency.WORK_PERMIT_SYSTEM),
            insurance=source(SocialInsurance, Agency.SOCIAL_INSURANCE),
            cards=source(CardService, Agency.CARD_SERVICE),
            exit_entry=source(ExitEntry, Agency.EXIT_ENTRY),
            beijing_pass=source(BeijingPass, Agency.BEIJING_PASS),
        )

    def all(self) -> tuple[SqlSource, ...]:
        return (self.work_permits, self.insurance, self.cards, self.exit_entry, self.beijing_pass)

    def by_agency(self) -> dict[Agency, SqlSource]:
        return {source.agency: source for source in self.all()}

    def sources_status(self) -> dict[str, dict[str, Any]]:
        """Per agency: `breaker` (closed, open, half_open), `failures` (consecutive failed
        calls), `calls`, `failedCalls`, `rejectedCalls` (failed fast while open) and
        `timeoutSeconds`. Read by /readyz and /metrics; touches no database."""
        return {source.agency.value: source.status() for source in self.all()}

    async def create_tables(self) -> None:
        for source in self.all():
            await source.create_tables()

    async def close(self) -> None:
        for source in self.all():
            await source.engine.dispose()
