"""The exit-entry administration adapter: travellers, visas, entries, residence permits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, bindparam, case, select

from adapters.base import (
    KEYS,
    Group,
    GroupIndex,
    PagedPerGroup,
    RecordList,
    SqlSource,
    answer_by_key,
    by_group,
    fetch_all,
    split_mapped,
)
from adapters.exit_entry import mapping
from adapters.exit_entry.tables import CRJ_JLXK, CRJ_QZ, CRJ_RJ, CRJ_RY, metadata
from domain.errors import SourceDataInvalid
from domain.evidence import Candidate, Evidence, IdentifierKind
from domain.records import Agency, Entry, Page, ResidencePermit, Traveller, Visa

# The record an identity link to a traveller names (its owner key: RYBH).
TRAVELLER_LINK = CRJ_RY.name


@dataclass(frozen=True, slots=True)
class TravellerDocuments:
    """What identity linking reads beside a traveller: letters on visas, residence permits."""

    traveller_key: str
    notification_letters: tuple[str, ...]
    residence_permits: tuple[str, ...]


# The reads' statements, built once: each batch binds its keys (`KEYS`).
VISAS_BY_OWNER = (
    select(CRJ_QZ).where(CRJ_QZ.c.RYBH.in_(KEYS)).order_by(CRJ_QZ.c.QFRQ.desc(), CRJ_QZ.c.QZH.desc())
)
ENTRIES_BY_OWNER = PagedPerGroup([CRJ_RJ], CRJ_RJ.c.RYBH, [CRJ_RJ.c.RJRQ, CRJ_RJ.c.KA, CRJ_RJ.c.RYBH])
_IN_FORCE = and_(CRJ_JLXK.c.ZT == mapping.IN_FORCE, CRJ_JLXK.c.YXQZ >= bindparam("today_text"))
RESIDENCE_PERMITS_BY_OWNER = (
    select(CRJ_JLXK)
    .where(CRJ_JLXK.c.RYBH.in_(KEYS))
    .order_by(case((_IN_FORCE, 0), else_=1), CRJ_JLXK.c.YXQZ.desc(), CRJ_JLXK.c.JLXKZH.desc())
)
VISAS_BY_NUMBER = select(CRJ_QZ).where(CRJ_QZ.c.QZH.in_(KEYS))
ENTRIES_BY_TRAVELLER = select(CRJ_RJ).where(CRJ_RJ.c.RYBH.in_(KEYS))
RESIDENCE_PERMITS_BY_NUMBER = select(CRJ_JLXK).where(CRJ_JLXK.c.JLXKZH.in_(KEYS))


class ExitEntry(SqlSource):
    agency = Agency.EXIT_ENTRY
    metadata = metadata

    async def visas_by_person(self, groups: Sequence[Group]) -> list[RecordList[Visa]]:
        """Each person's visas, newest first."""
        index = GroupIndex.of(groups)
        async with self.connect() as conn:
            rows = await fetch_all(conn, VISAS_BY_OWNER, {"keys": index.keys})
        return by_group(index.count, ((index(r.RYBH), self.map_one(r.QZH, r, mapping.visa)) for r in rows))

    async def entries_by_person(
        self, groups: Sequence[Group], first: int, after: tuple[Any, ...] | None
    ) -> list[Page[Entry | SourceDataInvalid]]:
        """A page of each person's entries, newest first."""
        index = GroupIndex.of(groups)
        async with self.connect() as conn:
            rows = await ENTRIES_BY_OWNER.rows(conn, index, first, after)
        return ENTRIES_BY_OWNER.pages(
            index,
            first,
            rows,
            lambda r: self.map_one(f"{r.RYBH}/{r.RJRQ}/{r.KA}", r, mapping.entry),
            lambda r: (r.RJRQ, r.KA, r.RYBH),
        )

    async def residence_permits_by_person(
        self, groups: Sequence[Group], today: date
    ) -> list[RecordList[ResidencePermit]]:
        """Each person's residence permits, the current first: in force and ending last, else the latest."""
        index = GroupIndex.of(groups)
        parameters = {"keys": index.keys, "today_text": mapping.slash_date(today)}
        async with self.connect() as conn:
            rows = await fetch_all(conn, RESIDENCE_PERMITS_BY_OWNER, parameters)
        return by_group(
            index.count,
            (
                (index(r.RYBH), self.map_one(r.JLXKZH, r, lambda row: mapping.residence_permit(row, today)))
                for r in rows
            ),
        )

    async def evidence(self) -> Evidence:
        """Each traveller by passport, the Notification Letters on their visas, name and birth
        date; once confirmed, their passport and residence permits name them, and their name
        tells the surname from the given names."""
        async with self.connect() as conn:
            rows = await fetch_all(conn, select(CRJ_RY).order_by(CRJ_RY.c.RYBH))
        travellers, unreadable = split_mapped(self.map_one(r.RYBH, r, mapping.traveller) for r in rows)
        documents = {d.traveller_key: d for d in await self._traveller_documents()}
        none = TravellerDocuments("", (), ())

        def candidate(traveller: Traveller) -> Candidate:
            found = documents.get(traveller.key, none)
            return Candidate(
                TRAVELLER_LINK,
                traveller.key,
                traveller.key,
                passport=(traveller.passport_number, traveller.nationality),
                name=f"{traveller.surname} {traveller.given_names or ''}",
                birth_date=traveller.birth_date,
                keys=tuple(
                    (IdentifierKind.NOTIFICATION_LETTER, letter) for letter in found.notification_letters
                ),
                provides=tuple(
                    (IdentifierKind.RESIDENCE_PERMIT_NUMBER, number) for number in found.residence_permits
                ),
                names=(traveller.surname, traveller.given_names),
            )

        return Evidence(tuple(candidate(t) for t in travellers), tuple(unreadable))

    async def _traveller_documents(self) -> list[TravellerDocuments]:
        async with self.connect() as conn:
            visas = await fetch_all(conn, select(CRJ_QZ.c.RYBH, CRJ_QZ.c.TZSBH).order_by(CRJ_QZ.c.QZH))
            permits = await fetch_all(
                conn, select(CRJ_JLXK.c.RYBH, CRJ_JLXK.c.JLXKZH).order_by(CRJ_JLXK.c.JLXKZH)
            )
        letters: dict[str, list[str]] = {}
        residence: dict[str, list[str]] = {}
        for row in visas:
            if (row.TZSBH or "").strip():
                letters.setdefault(row.RYBH.strip(), []).append(row.TZSBH.strip())
        for row in permits:
            residence.setdefault(row.RYBH.strip(), []).append(row.JLXKZH.strip())
        keys = sorted(set(letters) | set(residence))
        return [TravellerDocuments(k, tuple(letters.get(k, ())), tuple(residence.get(k, ()))) for k in keys]

    async def visas_by_number(self, numbers: Sequence[str]) -> list[Visa | SourceDataInvalid | None]:
        async with self.connect() as conn:
            rows = await fetch_all(conn, VISAS_BY_NUMBER, {"keys": list(numbers)})
        return answer_by_key(numbers, ((r.QZH, self.map_one(r.QZH, r, mapping.visa)) for r in rows))

    async def entered_on(self, travellers: Sequence[str], day: date) -> bool:
        """Whether any of the travellers entered on that day."""
        statement = (
            select(CRJ_RJ.c.RYBH)
            .where(and_(CRJ_RJ.c.RYBH.in_(list(travellers)), CRJ_RJ.c.RJRQ == mapping.slash_date(day)))
            .limit(1)
        )
        async with self.connect() as conn:
            return bool(await fetch_all(conn, statement))

    async def entered_on_visa_since(self, traveller: str, visa_type: str, since: date) -> bool:
        """Whether the traveller entered on a visa of that type (`Z`, `M`, ...) since the day."""
        statement = (
            select(CRJ_RJ.c.RJRQ)
            .join(CRJ_QZ, CRJ_QZ.c.QZH == CRJ_RJ.c.QZH)
            .where(
                and_(
                    CRJ_RJ.c.RYBH == traveller,
                    CRJ_QZ.c.QZZL == visa_type,
                    CRJ_RJ.c.RJRQ >= mapping.slash_date(since),
                )
            )
            .limit(1)
        )
        async with self.connect() as conn:
            return bool(await fetch_all(conn, statement))

    async def entries_by_key(
        self, keys: Sequence[tuple[str, str, str]]
    ) -> list[Entry | SourceDataInvalid | None]:
        """Entries by (RYBH, RJRQ, KA)."""
        travellers = [k[0] for k in keys]
        async with self.connect() as conn:
            rows = await fetch_all(conn, ENTRIES_BY_TRAVELLER, {"keys": travellers})
        return answer_by_key(
            keys,
            (
                ((r.RYBH, r.RJRQ, r.KA), self.map_one(f"{r.RYBH}/{r.RJRQ}/{r.KA}", r, mapping.entry))
                for r in rows
            ),
        )

    async def residence_permits_by_number(
        self, numbers: Sequence[str], today: date
    ) -> list[ResidencePermit | SourceDataInvalid | None]:
        async with self.connect() as conn:
            rows = await fetch_all(conn, RESIDENCE_PERMITS_BY_NUMBER, {"keys": list(numbers)})
        return answer_by_key(
            numbers,
            (
                (r.JLXKZH, self.map_one(r.JLXKZH, r, lambda row: mapping.residence_permit(row, today)))
                for r in rows
            ),
        )
