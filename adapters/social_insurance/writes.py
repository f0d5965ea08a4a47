"""Writes to the social insurance agency, in its data dictionary's codes: integer dates,
numeric countries, folded names, one participation row per insurance type."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.base import RowWriter
from adapters.countries import NUMERIC_BY_ALPHA3
from adapters.identifiers import social_security_check_character
from adapters.social_insurance.mapping import INSURANCE_TYPE, PAYING, VALID_ROW
from adapters.social_insurance.tables import AB01, AC01, AC02
from domain.records import Agency, Sex

AGENCY = Agency.SOCIAL_INSURANCE.value
SEX_CODES = {Sex.UNKNOWN: "0", Sex.MALE: "1", Sex.FEMALE: "2", Sex.UNSTATED: "9"}


def integer_date(value: date) -> int:
    return int(value.strftime("%Y%m%d"))


async def employer_number(writer: RowWriter, conn: AsyncConnection, credit_code: str, name: str) -> int:
    """The employer's number in the register, registering it when it is new."""
    found = (
        await conn.execute(select(AB01.c.AAB001).where(AB01.c.AAB998 == credit_code).limit(1))
    ).scalar_one_or_none()
    if found is not None:
        return int(found)
    number = int((await conn.execute(select(func.coalesce(func.max(AB01.c.AAB001), 0)))).scalar_one()) + 1
    await writer.insert(
        conn, AGENCY, AB01, {"AAB001": number, "AAB004": name, "AAB998": credit_code}, ["AAB001"]
    )
    return number


async def new_social_security_number(
    conn: AsyncConnection, nationality: str, district: str, birth_date: date
) -> str:
    """Nationality, insuring district, birth date YYMMDD, a 2-digit sequence, a check character."""
    stem = f"{nationality}{district}{birth_date.strftime('%y%m%d')}"
    taken = {
        row[0][15:17]
        for row in (await conn.execute(select(AC01.c.AAC002).where(AC01.c.AAC002.like(f"{stem}%")))).all()
        if row[0]
    }
    sequence = next(f"{n:02d}" for n in range(1, 100) if f"{n:02d}" not in taken)
    return stem + sequence + social_security_check_character(stem + sequence)


async def enroll(
    writer: RowWriter,
    conn: AsyncConnection,
    *,
    number: str,
    folded_name: str,
    sex: Sex,
    birth_date: date,
    nationality: str,
    passport_number: str,
    employer: int,
    today: date,
) -> int:
    """The insured person and a paying participation in each of the five insurance types."""
    person = int((await conn.execute(select(func.coalesce(func.max(AC01.c.AAC001), 0)))).scalar_one()) + 1
    await writer.insert(
        conn,
        AGENCY,
        AC01,
        {
            "AAC001": person,
            "AAC002": number,
            "AAC003": folded_name,
            "AAC004": SEX_CODES[sex],
            "AAC006": integer_date(birth_date),
            "AAC161": NUMERIC_BY_ALPHA3[nationality],
            "AAE135": passport_number,
        },
        ["AAC001"],
    )
    for code in INSURANCE_TYPE:
        await writer.insert(
            conn,
            AGENCY,
            AC02,
            {
                "AAC001": person,
                "AAE140": code,
                "AAC008": PAYING,
                "AAE030": integer_date(today),
                "AAE031": None,
                "AAB001": employer,
                "AAE100": VALID_ROW,
            },
            ["AAC001", "AAE140", "AAE030"],
        )
    return person
