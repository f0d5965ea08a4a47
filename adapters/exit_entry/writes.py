"""Writes to the exit-entry administration, in its formats: Chinese country names, `男`/`女`,
dates as `YYYY/MM/DD`. Every change goes through a RowWriter, which journals it."""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.base import RowWriter, next_in_series
from adapters.countries import CHINESE_BY_ALPHA3
from adapters.exit_entry.mapping import CHANNEL, IN_FORCE, PURPOSE, slash_date
from adapters.exit_entry.tables import CRJ_JLXK, CRJ_QZ, CRJ_RJ, CRJ_RY
from domain.records import Agency, ResidencePurpose, Sex, VerificationChannel

AGENCY = Agency.EXIT_ENTRY.value
PURPOSE_CODE = {purpose: code for code, purpose in PURPOSE.items()}
CHANNEL_CODE = {channel: code for code, channel in CHANNEL.items()}
SEX_CODES = {Sex.MALE: "男", Sex.FEMALE: "女"}


async def _next_number(conn: AsyncConnection, column: ColumnElement[str], prefix: str, digits: int) -> str:
    """A traveller's number: not a series the hub hands out, unique by the agency's write lock."""
    highest = (await conn.execute(select(func.max(column)).where(column.like(f"{prefix}%")))).scalar_one()
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
    number = await next_in_series(writer, conn, CRJ_QZ.c.QZH, "V", 8)
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


async def entry_recorded(conn: AsyncConnection, traveller: str, entered: date, port: str) -> bool:
    """Whether this entry is on file already (read in the writing transaction)."""
    statement = select(CRJ_RJ.c.RYBH).where(
        and_(CRJ_RJ.c.RYBH == traveller, CRJ_RJ.c.RJRQ == slash_date(entered), CRJ_RJ.c.KA == port)
    )
    return (await conn.execute(statement)).first() is not None


async def record_entry(
    writer: RowWriter, conn: AsyncConnection, traveller: str, entered: date, port: str, visa: str
) -> tuple[str, str, str]:
    """The entry, answered by its key (traveller, day, port) as `entries_by_key` reads it."""
    key = (traveller, slash_date(entered), port)
    await writer.insert(
        conn,
        AGENCY,
        CRJ_RJ,
        {"RYBH": traveller, "RJRQ": key[1], "KA": port, "QZH": visa},
        ["RYBH", "RJRQ", "KA"],
    )
    return key


async def issue_residence_permit(
    writer: RowWriter,
    conn: AsyncConnection,
    traveller: str,
    issued: date,
    valid_to: date,
    office: str,
    channel: VerificationChannel,
) -> str:
    number = await next_in_series(writer, conn, CRJ_JLXK.c.JLXKZH, "E", 8)
    await writer.insert(
        conn,
        AGENCY,
        CRJ_JLXK,
        {
            "JLXKZH": number,
            "RYBH": traveller,
            "JLSY": PURPOSE_CODE[ResidencePurpose.WORK],
            "QFRQ": slash_date(issued),
            "YXQZ": slash_date(valid_to),
            "QFJG": office,
            "ZT": IN_FORCE,
            "HYFS": CHANNEL_CODE[channel],
        },
        ["JLXKZH"],
    )
    return number


async def extend_residence_permit(
    writer: RowWriter, conn: AsyncConnection, number: str, valid_to: date
) -> None:
    await writer.update(conn, AGENCY, CRJ_JLXK, {"JLXKZH": number}, {"YXQZ": slash_date(valid_to)})
