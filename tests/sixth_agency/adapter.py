"""The tax bureau's legacy database, as the hub reads it: taxpayers (`SW_NSR`) and their
annual returns (`SW_SBJL`). Birth dates are `YYYYMMDD` text, nationalities alpha-3, income in
fen; a return's status is a one-character code."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select
from sqlalchemy.engine import Row

from adapters.base import (
    Group,
    GroupIndex,
    RecordList,
    SqlSource,
    UnmappableValue,
    by_group,
    fetch_all,
    split_mapped,
)
from adapters.relationships import PersonRelationship
from adapters.spec import AgencySpec
from domain.evidence import Candidate, Evidence
from domain.records import AgencyId

TAX_BUREAU: AgencyId = "TAX_BUREAU"

metadata = MetaData()
SW_NSR = Table(
    "SW_NSR",
    metadata,
    Column("NSRSBH", String(18), primary_key=True),  # taxpayer identification number
    Column("XM", String(100), nullable=False),  # name as in the passport
    Column("CSRQ", String(8), nullable=False),  # birth date, YYYYMMDD
    Column("HZHM", String(20), nullable=False),  # passport number
    Column("GJDQ", String(3), nullable=False),  # nationality, alpha-3
)
SW_SBJL = Table(
    "SW_SBJL",
    metadata,
    Column("SBID", Integer, primary_key=True),
    Column("NSRSBH", String(18), nullable=False, index=True),
    Column("SSND", Integer, nullable=False),  # tax year
    Column("SRE", Integer, nullable=False),  # taxable income, fen
    Column("ZT", String(1), nullable=False),  # 0 filed, 1 assessed, 9 overdue
)
TAXPAYER_LINK = SW_NSR.name


class TaxReturnStatus(StrEnum):
    FILED = "FILED"
    ASSESSED = "ASSESSED"
    OVERDUE = "OVERDUE"


STATUS_CODES = {"0": TaxReturnStatus.FILED, "1": TaxReturnStatus.ASSESSED, "9": TaxReturnStatus.OVERDUE}


@dataclass(frozen=True, slots=True)
class TaxReturn:
    key: str  # SBID
    owner: str  # NSRSBH
    year: int
    taxable_income: int  # yuan
    status: TaxReturnStatus
    agency: AgencyId = TAX_BUREAU
    person_id: int | None = None


def tax_return(row: Row[Any]) -> TaxReturn:
    status = STATUS_CODES.get(row.ZT)
    if status is None:
        raise UnmappableValue("SW_SBJL.ZT", f"must be one of {', '.join(STATUS_CODES)}")
    return TaxReturn(str(row.SBID), row.NSRSBH, row.SSND, row.SRE // 100, status)


def birth_date(text: str) -> date:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise UnmappableValue("SW_NSR.CSRQ", "must be a date as YYYYMMDD") from None


# Built once: each batch binds its taxpayer numbers (an expanding IN list).
RETURNS_BY_TAXPAYER = (
    select(SW_SBJL)
    .where(SW_SBJL.c.NSRSBH.in_(bindparam("keys", expanding=True)))
    .order_by(SW_SBJL.c.SSND.desc(), SW_SBJL.c.SBID)
)


class TaxBureau(SqlSource):
    agency = TAX_BUREAU
    metadata = metadata

    async def returns_by_person(self, groups: Sequence[Group]) -> list[RecordList[TaxReturn]]:
        """A person's returns, newest tax year first."""
        index = GroupIndex.of(groups)
        async with self.connect() as conn:
            rows = await fetch_all(conn, RETURNS_BY_TAXPAYER, {"keys": index.keys})
        return by_group(index.count, ((index(r.NSRSBH), self.map_one(r.SBID, r, tax_return)) for r in rows))

    async def evidence(self) -> Evidence:
        """Each taxpayer by passport, nationality and birth date."""
        async with self.connect() as conn:
            rows = await fetch_all(conn, select(SW_NSR).order_by(SW_NSR.c.NSRSBH))

        def candidate(row: Row[Any]) -> Candidate:
            return Candidate(
                TAXPAYER_LINK,
                row.NSRSBH,
                row.NSRSBH,
                passport=(row.HZHM, row.GJDQ),
                name=row.XM,
                birth_date=birth_date(row.CSRQ),
            )

        found, unreadable = split_mapped(self.map_one(r.NSRSBH, r, candidate) for r in rows)
        return Evidence(tuple(found), tuple(unreadable))


TAX_RETURNS = PersonRelationship("tax_returns", TaxBureau, lambda s, _today: s.returns_by_person)

TAXPAYER_SHARE = 0.6  # of generated workers, who file a return in China


class TaxEstate:
    """Its part of the generated estate: a taxpayer for some workers, with one to three
    returns for the years before `today`'s."""

    def add_person(
        self, rng: random.Random, today: int, worker: Any, rows: dict[str, list[dict[str, Any]]]
    ) -> None:
        if rng.random() >= TAXPAYER_SHARE:
            return
        person = worker.person
        number = f"9111{person.sqrid:014d}"
        rows[SW_NSR.name].append(
            {
                "NSRSBH": number,
                "XM": person.name.passport_form,
                "CSRQ": date.fromordinal(person.birth).strftime("%Y%m%d"),
                "HZHM": person.passport,
                "GJDQ": person.nationality,
            }
        )
        year = date.fromordinal(today).year
        for back in range(1, rng.randint(1, 3) + 1):
            rows[SW_SBJL.name].append(
                {
                    "SBID": person.sqrid * 10 + back,
                    "NSRSBH": number,
                    "SSND": year - back,
                    "SRE": rng.randrange(60_000, 900_000) * 100,
                    "ZT": rng.choice("0119"),
                }
            )


SPEC = AgencySpec(
    name="TAX_BUREAU",
    description="The tax bureau: taxpayers and their annual returns.",
    source=TaxBureau,
    relationships=(TAX_RETURNS,),
    estate=TaxEstate(),
)
