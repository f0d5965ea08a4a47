"""Exit-entry codes and formats -> the graph's values, in one place."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.engine import Row

from adapters.base import UnmappableValue, blank_to_none, code, parse_separated_date, required
from adapters.countries import ALPHA3_BY_CHINESE
from domain.records import (
    Entry,
    ResidencePermit,
    ResidencePermitStatus,
    ResidencePurpose,
    Sex,
    Traveller,
    VerificationChannel,
    Visa,
)

SEX = {"男": Sex.MALE, "女": Sex.FEMALE}
PURPOSE = {"GZ": ResidencePurpose.WORK, "XX": ResidencePurpose.STUDY, "TQ": ResidencePurpose.FAMILY}
CHANNEL = {
    "XT": VerificationChannel.SYSTEM,
    "DZK": VerificationChannel.ELECTRONIC_CARD,
    "EWM": VerificationChannel.QR_CODE,
}
IN_FORCE = "Y"
VOID = "N"
IN_FORCE_CODES = {IN_FORCE: True, VOID: False}


def slash_date(value: date) -> str:
    return value.strftime("%Y/%m/%d")


def day(value: str | None, field: str) -> date | None:
    return parse_separated_date(value, field, "/")


def nationality(value: str | None) -> str:
    text = (value or "").strip()
    try:
        return ALPHA3_BY_CHINESE[text]
    except KeyError:
        raise UnmappableValue("GJ", f"is not a known country name: {text!r}") from None


def split_name(value: str | None) -> tuple[str, str | None]:
    """`Surname, Given Names`: the one source that tells the two apart."""
    text = required(blank_to_none(value), "YWXM")
    surname, _, given = text.partition(",")
    if not surname.strip():
        raise UnmappableValue("YWXM", "has no surname before the comma")
    return surname.strip(), given.strip() or None


def traveller(row: Row[Any]) -> Traveller:
    surname, given = split_name(row.YWXM)
    return Traveller(
        key=row.RYBH.strip(),
        surname=surname,
        given_names=given,
        sex=code(SEX, row.XB, "XB"),
        birth_date=required(day(row.CSRQ, "CSRQ"), "CSRQ"),
        nationality=nationality(row.GJ),
        passport_number=required(blank_to_none(row.ZJHM), "ZJHM"),
    )


def visa(row: Row[Any]) -> Visa:
    number = row.QZH.strip()
    return Visa(
        key=number,
        owner=row.RYBH.strip(),
        number=number,
        type=required(blank_to_none(row.QZZL), "QZZL"),
        issued_on=required(day(row.QFRQ, "QFRQ"), "QFRQ"),
        valid_to=day(row.YXQZ, "YXQZ"),
        notification_letter_number=blank_to_none(row.TZSBH),
    )


def entry(row: Row[Any]) -> Entry:
    return Entry(
        key=f"{row.RYBH.strip()}/{row.RJRQ}/{row.KA}",
        owner=row.RYBH.strip(),
        entered_on=required(day(row.RJRQ, "RJRQ"), "RJRQ"),
        port=blank_to_none(row.KA),
        visa_number=blank_to_none(row.QZH),
    )


def residence_permit(row: Row[Any], today: date) -> ResidencePermit:
    number = row.JLXKZH.strip()
    valid_to = required(day(row.YXQZ, "YXQZ"), "YXQZ")
    in_force = code(IN_FORCE_CODES, row.ZT, "ZT")
    if not in_force:
        status = ResidencePermitStatus.VOID
    elif valid_to < today:
        status = ResidencePermitStatus.EXPIRED
    else:
        status = ResidencePermitStatus.VALID
    channel = blank_to_none(row.HYFS)
    return ResidencePermit(
        key=number,
        owner=row.RYBH.strip(),
        number=number,
        purpose=code(PURPOSE, row.JLSY, "JLSY"),
        issued_on=required(day(row.QFRQ, "QFRQ"), "QFRQ"),
        valid_to=valid_to,
        issuing_office=blank_to_none(row.QFJG),
        status=status,
        verified_by=code(CHANNEL, channel, "HYFS") if channel else None,
    )
