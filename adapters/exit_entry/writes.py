"""Writes to the exit-entry administration, in its formats: Chinese country names, `男`/`女`,
dates as `YYYY/MM/DD`. Every change goes through a RowWriter, which journals it."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.base import RowWriter
from adapters.countries import CHINESE_BY_ALPHA3
from adapters.exit_entry.mapping import slash_date
from adapters.exit_entry.tables import CRJ_JLXK, CRJ_QZ, CRJ_RJ, CRJ_RY
from domain.records import Agency, Sex

AGENCY = Agency.EXIT_ENTRY.value
SEX_CODES = {Sex.MALE: "男", Sex.FEMALE: "女"}


async def _next_number(conn: AsyncConnection, column: object, prefix: str, digits: int) -> str:
    highest = (await conn.execute(select(func.max(column)).where(column.like(f"{prefix}%")))).scalar_one()  # type: ignore[attr-defined]
    return f"{prefix}{(int(highest[len(prefix) :]) + 1 if highest else 1):0{digits}d}"


async def traveller_by_passport(conn: AsyncConnection, passport_number: str, nationality: str) -> str | None:
    statement = select(CRJ_RY.c.RYBH).where(
        (CRJ_RY.c.ZJHM == passport_number) & (CRJ_RY.c.GJ == CHINESE_BY_ALPHA3.get(nationality, ""))
    )
    found = (await conn.execute(statement.limit(1))).scalar_one_or_none()
    return found.strip() if found else None


async def register_traveller(
    writer: RowWriter,
    conn: AsyncConnection,
    *,
    surname: str,
    given_names: str | None,
    sex: Sex,
    birth_date: date,
    nationality: str,
    passport_number: str,
) -> str:
    number = await _next_number(conn, CRJ_RY.c.RYBH, "RY", 10)
    await writer.insert(
        conn,
        AGENCY,
        CRJ_RY,
        {
            "RYBH": number,
            "YWXM": f"{surname}, {given_names}" if given_names else surname,
            "XB": SEX_CODES.get(sex, ""),
            "CSRQ": slash_date(birth_date),
            "GJ": CHINESE_BY_ALPHA3[nationality],
            "ZJHM": passport_number,
        },
        ["RYBH"],
    )
    return number


async def issue_visa(
    writer: RowWriter,
    conn: AsyncConnection,
    traveller: str,
    kind: str,
    issued: date,
    valid_to: date,
    letter: str,
) -> str:
    number = await _next_number(conn, CRJ_QZ.c.QZH, "V", 8)
    await writer.insert(
        conn,
        AGENCY,
        CRJ_QZ,
        {
            "QZH": number,
            "RYBH": traveller,
            "QZZL": kind,
            "QFRQ": slash_date(issued),
            "YXQZ": slash_date(valid_to),
            "TZSBH": letter,
        },
        ["QZH"],
    )
    return number


async def record_entry(
    writer: RowWriter, conn: AsyncConnection, traveller: str, entered: date, port: str, visa: str
) -> None:
    await writer.insert(
        conn,
        AGENCY,
        CRJ_RJ,
        {"RYBH": traveller, "RJRQ": slash_date(entered), "KA": port, "QZH": visa},
        ["RYBH", "RJRQ", "KA"],
    )


async def issue_residence_permit(
    writer: RowWriter,
    conn: AsyncConnection,
    traveller: str,
    issued: date,
    valid_to: date,
    office: str,
    channel_code: str,
) -> str:
    number = await _next_number(conn, CRJ_JLXK.c.JLXKZH, "E", 8)
    await writer.insert(
        conn,
        AGENCY,
        CRJ_JLXK,
        {
            "JLXKZH": number,
            "RYBH": traveller,
            "JLSY": "GZ",
            "QFRQ": slash_date(issued),
            "YXQZ": slash_date(valid_to),
            "QFJG": office,
            "ZT": "Y",
            "HYFS": channel_code,
        },
        ["JLXKZH"],
    )
    return number


async def extend_residence_permit(
    writer: RowWriter, conn: AsyncConnection, number: str, valid_to: date
) -> None:
    await writer.update(conn, AGENCY, CRJ_JLXK, {"JLXKZH": number}, {"YXQZ": slash_date(valid_to)})
