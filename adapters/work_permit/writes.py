"""Writes to the work-permit system, in its own codes and formats, each step with its
business record (`WP_YWJL`). Every change goes through a RowWriter, which journals it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.base import RowWriter, next_in_series
from adapters.work_permit.mapping import EVENT_KIND, PROCEDURE, SEX_CODE, STATUS_CODE, compact_date
from adapters.work_permit.tables import WP_HZLS, WP_SQR, WP_XKZ, WP_YWJL
from domain.records import Agency, PermitEventKind, PermitProcedure, Sex, WorkPermit, WorkPermitStatus

AGENCY = Agency.WORK_PERMIT_SYSTEM.value
# The division code of the first issuing authority for permits the hub applies for: Beijing.
ISSUING_DIVISION = "110000"
INTEGRATED = next(code for code, kind in PROCEDURE.items() if kind is PermitProcedure.INTEGRATED)
PENDING, APPROVED, REJECTED = "0", "1", "2"
EVENT_CODE = {kind: code for code, kind in EVENT_KIND.items()}
SEXES_RECORDED = frozenset(SEX_CODE)


@dataclass(frozen=True)
class Application:
    surname: str
    given_names: str | None
    sex: Sex  # MALE or FEMALE: the only ones the system records (SEXES_RECORDED)
    birth_date: date
    nationality: str
    passport_number: str
    employer_credit_code: str
    employer_name: str
    category: str
    position: str
    work_district: str


@dataclass(frozen=True)
class OpenedPeriod:
    applicant_key: int
    permit_key: int
    permit_number: str
    new_applicant: bool


async def _next(conn: AsyncConnection, column: Any) -> int:
    return int((await conn.execute(select(func.coalesce(func.max(column), 0)))).scalar_one()) + 1


async def applicant_by_passport(conn: AsyncConnection, passport_number: str, nationality: str) -> int | None:
    """The applicant who holds or held this passport, by number and nationality."""
    statement = (
        select(WP_SQR.c.SQRID)
        .join(WP_HZLS, WP_HZLS.c.SQRID == WP_SQR.c.SQRID, isouter=True)
        .where(WP_SQR.c.GJ == nationality)
        .where((WP_SQR.c.HZHM == passport_number) | (WP_HZLS.c.HZHM == passport_number))
        .limit(1)
    )
    found = (await conn.execute(statement)).scalar_one_or_none()
    return int(found) if found is not None else None


async def permit_number_of(conn: AsyncConnection, applicant_key: int) -> str | None:
    statement = select(WP_XKZ.c.XKZH).where(WP_XKZ.c.SQRID == applicant_key).limit(1)
    return (await conn.execute(statement)).scalar_one_or_none()


async def open_period(
    writer: RowWriter, conn: AsyncConnection, application: Application, today: date
) -> OpenedPeriod:
    """A new permit period under review; a new applicant unless the passport is known, and the
    applicant's lifelong permit number, or a new one for a first permit."""
    applicant = await applicant_by_passport(conn, application.passport_number, application.nationality)
    new_applicant = applicant is None
    if applicant is None:
        applicant = await _next(conn, WP_SQR.c.SQRID)
        name = " ".join(p for p in (application.surname, application.given_names) if p).upper()
        await writer.insert(
            conn,
            AGENCY,
            WP_SQR,
            {
                "SQRID": applicant,
                "XM": name.ljust(40),
                "XB": SEX_CODE[application.sex],
                "CSRQ": compact_date(application.birth_date),
                "GJ": application.nationality,
                "HZHM": application.passport_number,
            },
            ["SQRID"],
        )
        await writer.insert(
            conn,
            AGENCY,
            WP_HZLS,
            {"SQRID": applicant, "HZHM": application.passport_number, "QSRQ": "", "ZZRQ": ""},
            ["SQRID", "HZHM"],
        )
    number = await permit_number_of(conn, applicant)
    if number is None:
        number = await next_in_series(writer, conn, WP_XKZ.c.XKZH, f"{ISSUING_DIVISION}{today.year:04d}", 8)
    permit_key = await _next(conn, WP_XKZ.c.XKID)
    await writer.insert(
        conn,
        AGENCY,
        WP_XKZ,
        {
            "XKID": permit_key,
            "XKZH": number,
            "SQRID": applicant,
            "RCLB": application.category,
            "ZT": "10",
            "YXQQ": "",
            "YXQZ": "",
            "DWMC": application.employer_name,
            "TYSHXYDM": application.employer_credit_code,
            "GZDD": application.work_district,
            "ZW": application.position,
            "STZ": INTEGRATED,  # no new physical card is ever issued
            "TZSBH": "",
            "TZRQ": "",
        },
        ["XKID"],
    )
    await business_record(writer, conn, permit_key, "XB", today, decided=None, outcome=PENDING)
    return OpenedPeriod(applicant, permit_key, number, new_applicant)


async def business_record(
    writer: RowWriter,
    conn: AsyncConnection,
    permit_key: int,
    kind: str,
    applied: date,
    *,
    decided: date | None,
    outcome: str,
    remark: str = "",
) -> None:
    await writer.insert(
        conn,
        AGENCY,
        WP_YWJL,
        {
            "XKID": permit_key,
            "YWLX": kind,
            "SQRQ": compact_date(applied),
            "BJRQ": compact_date(decided) if decided else "",
            "JG": outcome,
            "BZ": remark,
        },
        ["XKID", "YWLX", "SQRQ"],
    )


async def approved_step(
    writer: RowWriter,
    conn: AsyncConnection,
    permit_key: int,
    kind: PermitEventKind,
    applied: date,
    decided: date,
    remark: str = "",
) -> None:
    """The business record of a step applied for on `applied` and approved on `decided`."""
    await business_record(
        writer, conn, permit_key, EVENT_CODE[kind], applied, decided=decided, outcome=APPROVED, remark=remark
    )


async def decide_application(
    writer: RowWriter, conn: AsyncConnection, permit_key: int, today: date, outcome: str
) -> None:
    """The pending application record (`XB`) gets its decision."""
    statement = select(WP_YWJL.c.SQRQ).where((WP_YWJL.c.XKID == permit_key) & (WP_YWJL.c.YWLX == "XB"))
    applied = (await conn.execute(statement)).scalar_one_or_none()
    if applied is not None:
        await writer.update(
            conn,
            AGENCY,
            WP_YWJL,
            {"XKID": permit_key, "YWLX": "XB", "SQRQ": applied},
            {"BJRQ": compact_date(today), "JG": outcome},
        )


async def next_letter_number(writer: RowWriter, conn: AsyncConnection, today: date) -> str:
    return await next_in_series(writer, conn, WP_XKZ.c.TZSBH, f"TZ{today.year:04d}", 7)


async def update_period(
    writer: RowWriter, conn: AsyncConnection, permit_key: int, values: dict[str, Any]
) -> None:
    await writer.update(conn, AGENCY, WP_XKZ, {"XKID": permit_key}, values)


async def issue_notice(
    writer: RowWriter, conn: AsyncConnection, permit_key: int, letter: str, today: date, valid_to: date
) -> None:
    """The period becomes NOTICE_ISSUED under its Notification Letter, valid from today."""
    await update_period(
        writer,
        conn,
        permit_key,
        {
            "ZT": STATUS_CODE[WorkPermitStatus.NOTICE_ISSUED],
            "TZSBH": letter,
            "TZRQ": compact_date(today),
            "YXQQ": compact_date(today),
            "YXQZ": compact_date(valid_to),
        },
    )


async def set_status(
    writer: RowWriter, conn: AsyncConnection, permit_key: int, status: WorkPermitStatus
) -> None:
    await update_period(writer, conn, permit_key, {"ZT": STATUS_CODE[status]})


async def extend_period(writer: RowWriter, conn: AsyncConnection, permit_key: int, valid_to: date) -> None:
    """A new end date; a legacy physical permit moves to the integrated procedure with it."""
    await update_period(writer, conn, permit_key, {"YXQZ": compact_date(valid_to), "STZ": INTEGRATED})


@dataclass(frozen=True)
class PeriodChange:
    """What a change of a permit period sets; None keeps the period's own."""

    employer: tuple[str, str] | None = None  # (credit code, name)
    position: str | None = None
    work_district: str | None = None


async def change_period(
    writer: RowWriter, conn: AsyncConnection, before: WorkPermit, change: PeriodChange, today: date
) -> str:
    """The changed details, and the approved change (`BG`) in the business records, whose
    remark (returned) says what changed from what; a legacy physical permit moves to the
    integrated procedure with them."""
    values: dict[str, Any] = {"STZ": INTEGRATED}
    remarks: list[str] = []
    if change.employer is not None:
        values |= {"TYSHXYDM": change.employer[0], "DWMC": change.employer[1]}
        remarks.append(f"DWMC: {before.employer.name if before.employer else ''} -> {change.employer[1]}")
    if change.position is not None:
        values["ZW"] = change.position
        remarks.append(f"ZW: {before.position or ''} -> {change.position}")
    if change.work_district is not None:
        values["GZDD"] = change.work_district
        remarks.append(f"GZDD: {before.work_district or ''} -> {change.work_district}")
    remark = "; ".join(remarks)
    await update_period(writer, conn, int(before.key), values)
    await approved_step(writer, conn, int(before.key), PermitEventKind.CHANGE, today, today, remark=remark)
    return remark
