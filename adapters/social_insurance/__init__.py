"""The social insurance agency adapter: insured persons, participations, employers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select

from adapters.base import (
    KEYS,
    Group,
    GroupIndex,
    RecordList,
    SqlSource,
    answer_by_key,
    by_group,
    fetch_all,
    first_of_group,
    split_mapped,
)
from adapters.social_insurance import mapping
from adapters.social_insurance.tables import AB01, AC01, AC02, metadata
from domain.errors import SourceDataInvalid
from domain.evidence import Candidate, Evidence, IdentifierKind
from domain.records import Agency, Employer, InsuranceParticipation, InsuredPerson

# The record an identity link to an insured person names (its owner key: AAC001).
INSURED_LINK = AC01.name


# The reads' statements, built once: each batch binds its keys (`KEYS`).
INSURED_BY_OWNER = select(AC01).where(AC01.c.AAC001.in_(KEYS)).order_by(AC01.c.AAC001.desc())
PARTICIPATIONS_BY_OWNER = (
    select(AC02, AB01.c.AAB004, AB01.c.AAB998)
    .join(AB01, AB01.c.AAB001 == AC02.c.AAB001, isouter=True)
    .where(and_(AC02.c.AAC001.in_(KEYS), AC02.c.AAE100 == mapping.VALID_ROW))
    .order_by(AC02.c.AAE030.desc(), AC02.c.AAE140)
)
EMPLOYERS_BY_CREDIT_CODE = select(AB01).where(AB01.c.AAB998.in_(KEYS)).order_by(AB01.c.AAB001)
NAMES_BY_INSURED = select(AC01.c.AAC003).where(AC01.c.AAC001.in_(KEYS))


class SocialInsurance(SqlSource):
    agency = Agency.SOCIAL_INSURANCE
    metadata = metadata

    async def insured_by_person(
        self, groups: Sequence[Group]
    ) -> list[InsuredPerson | SourceDataInvalid | None]:
        """Each person's insured-person record (the newest where there are several)."""
        index = GroupIndex.of(groups, as_int=True)
        async with self.connect() as conn:
            rows = await fetch_all(conn, INSURED_BY_OWNER, {"keys": index.keys})
        return first_of_group(
            index.count, ((index(r.AAC001), self.map_one(r.AAC001, r, mapping.insured_person)) for r in rows)
        )

    async def participations_by_person(
        self, groups: Sequence[Group]
    ) -> list[RecordList[InsuranceParticipation]]:
        """Valid participation rows (AAE100 = 1) with their employer, newest first."""
        index = GroupIndex.of(groups, as_int=True)
        async with self.connect() as conn:
            rows = await fetch_all(conn, PARTICIPATIONS_BY_OWNER, {"keys": index.keys})

        def pair(row: Any) -> tuple[int, InsuranceParticipation | SourceDataInvalid]:
            key = f"{row.AAC001}/{row.AAE140}/{row.AAE030}"
            return index(row.AAC001), self.map_one(key, row, lambda r: mapping.participation(r, key))

        return by_group(index.count, (pair(r) for r in rows))

    async def employers_by_credit_code(self, credit_codes: Sequence[str]) -> list[Employer | None]:
        async with self.connect() as conn:
            rows = await fetch_all(conn, EMPLOYERS_BY_CREDIT_CODE, {"keys": list(credit_codes)})
        return answer_by_key(credit_codes, ((r.AAB998, mapping.employer(r)) for r in rows))

    async def names_by_insured(self, keys: Sequence[str]) -> list[str]:
        """The names insured persons are filed under (diacritics folded), for a name check."""
        async with self.connect() as conn:
            rows = await fetch_all(conn, NAMES_BY_INSURED, {"keys": [int(k) for k in keys]})
        return [r.AAC003 for r in rows]

    async def insured_keys(self) -> list[str]:
        """AAC001 of everyone with at least one valid, paying participation (evaluated here, in SQL)."""
        statement = (
            select(AC02.c.AAC001)
            .where(and_(AC02.c.AAE100 == mapping.VALID_ROW, AC02.c.AAC008 == mapping.PAYING))
            .distinct()
        )
        async with self.connect() as conn:
            rows = await fetch_all(conn, statement)
        return [str(r.AAC001) for r in rows]

    async def insured_keys_of_employer(self, credit_code: str) -> list[str]:
        """AAC001 of everyone with a valid participation at the employer."""
        statement = (
            select(AC02.c.AAC001)
            .join(AB01, AB01.c.AAB001 == AC02.c.AAB001)
            .where(and_(AC02.c.AAE100 == mapping.VALID_ROW, AB01.c.AAB998 == credit_code))
            .distinct()
        )
        async with self.connect() as conn:
            rows = await fetch_all(conn, statement)
        return [str(r.AAC001) for r in rows]

    async def evidence(self) -> Evidence:
        """Each insured person by passport, name and birth date; once confirmed, their social
        security number names them to the card service."""
        async with self.connect() as conn:
            rows = await fetch_all(conn, select(AC01).order_by(AC01.c.AAC001))
        insured, unreadable = split_mapped(self.map_one(r.AAC001, r, mapping.insured_person) for r in rows)
        return Evidence(
            tuple(
                Candidate(
                    INSURED_LINK,
                    person.key,
                    person.key,
                    passport=(person.passport_number, person.nationality),
                    name=person.name,
                    birth_date=person.birth_date,
                    provides=(
                        ((IdentifierKind.SOCIAL_SECURITY_NUMBER, person.social_security_number),)
                        if person.social_security_number
                        else ()
                    ),
                )
                for person in insured
            ),
            tuple(unreadable),
        )
