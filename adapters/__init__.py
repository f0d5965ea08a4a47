"""The five agencies' adapters, opened together from their URLs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from adapters.base import SqlSource, open_engine
from adapters.beijing_pass import BeijingPass
from adapters.card_service import CardService
from adapters.exit_entry import ExitEntry
from adapters.records import Agency
from adapters.social_insurance import SocialInsurance
from adapters.work_permit import WorkPermitSystem


@dataclass(frozen=True)
class Sources:
    work_permits: WorkPermitSystem
    insurance: SocialInsurance
    cards: CardService
    exit_entry: ExitEntry
    beijing_pass: BeijingPass

    @classmethod
    def open(cls, urls: Mapping[Agency, str]) -> Sources:
        return cls(
            work_permits=WorkPermitSystem(open_engine(urls[Agency.WORK_PERMIT_SYSTEM])),
            insurance=SocialInsurance(open_engine(urls[Agency.SOCIAL_INSURANCE])),
            cards=CardService(open_engine(urls[Agency.CARD_SERVICE])),
            exit_entry=ExitEntry(open_engine(urls[Agency.EXIT_ENTRY])),
            beijing_pass=BeijingPass(open_engine(urls[Agency.BEIJING_PASS])),
        )

    def all(self) -> tuple[SqlSource, ...]:
        return (self.work_permits, self.insurance, self.cards, self.exit_entry, self.beijing_pass)

    def by_agency(self) -> dict[Agency, SqlSource]:
        return {source.agency: source for source in self.all()}

    async def create_tables(self) -> None:
        for source in self.all():
            await source.create_tables()

    async def close(self) -> None:
        for source in self.all():
            await source.engine.dispose()
