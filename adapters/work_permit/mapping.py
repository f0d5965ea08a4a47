"""Work-permit system codes and formats -> the graph's values, in one place."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.engine import Row

from adapters.base import UnmappableValue, blank_to_none, code, parse_compact_date, required
from adapters.countries import ALPHA3
from adapters.identifiers import is_valid_credit_code
from domain.records import (
    Agency,
    DataProblem,
    Employer,
    PermitEvent,
    PermitEventKind,
    PermitEventOutcome,
    PermitProcedure,
    Sex,
    TalentCategory,
    WorkPermit,
    WorkPermitStatus,
)

AGENCY = Agency.WORK_PERMIT_SYSTEM

SEX = {"M": Sex.MALE, "F": Sex.FEMALE}
SEX_CODE = {v: k for k, v in SEX.items()}
CATEGORY = {"A": TalentCategory.A, "B": TalentCategory.B, "C": TalentCategory.C}
STATUS = {
    "10": WorkPermitStatus.UNDER_REVIEW,
    "20": WorkPermitStatus.NOTICE_ISSUED,
    "30": WorkPermitStatus.VALID,
    "40": WorkPermitStatus.CANCELLED,
    "50": WorkPermitStatus.EXPIRED,
    "60": WorkPermitStatus.REJECTED,
}
STATUS_CODE = {v: k for k, v in STATUS.items()}
# Statuses that never make a period the current one while another period exists.
ENDED_CODES = ("40", "60")
PROCEDURE = {"1": PermitProcedure.LEGACY_PHYSICAL_CARD, "0": PermitProcedure.INTEGRATED}
EVENT_KIND = {
    "XB": PermitEventKind.APPLICATION,
    "TZ": PermitEventKind.NOTICE,
    "JH": PermitEventKind.ACTIVATION,
    "YQ": PermitEventKind.EXTENSION,
    "BG": PermitEventKind.CHANGE,
    "ZX": PermitEventKind.CANCELLATION,
    "BH": PermitEventKind.REJECTION,
}
EVENT_OUTCOME = {
    "0": PermitEventOutcome.PENDING,
    "1": PermitEventOutcome.APPROVED,
    "2": PermitEventOutcome.REJECTED,
}


def compact_date(value: date) -> str:
    return value.strftime("%Y%m%d")


def nationality(value: str | None, field: str = "GJ") -> str:
    text = (value or "").strip()
    if text not in ALPHA3:
        raise UnmappableValue(field, f"is not a known ISO 3166 alpha-3 code: {text!r}")
    return text


def permit_status(zt: str, valid_to: date | None, today: date) -> WorkPermitStatus:
    """DOMAIN.md: EXPIRED when ZT is 50, or ZT is 30 and YXQZ is before today."""
    status = code(STATUS, zt, "ZT")
    if status is WorkPermitStatus.VALID and valid_to is not None and valid_to < today:
        return WorkPermitStatus.EXPIRED
    return status


def employer(credit_code: str | None, name: str | None, key: str) -> Employer | None:
    credit = blank_to_none(credit_code)
    if credit is None:
        return None
    problems: tuple[DataProblem, ...] = ()
    if not is_valid_credit_code(credit):
        problems = (DataProblem(AGENCY, key, "TYSHXYDM", "fails the GB 32100 check character"),)
    return Employer(credit, blank_to_none(name) or credit, AGENCY, credit, problems)


def work_permit(row: Row[Any], today: date) -> WorkPermit:
    valid_to = parse_compact_date(row.YXQZ, "YXQZ")
    key = str(row.XKID)
    found_employer = employer(row.TYSHXYDM, row.DWMC, key)
    return WorkPermit(
        key=key,
        owner=str(row.SQRID),
        number=required(blank_to_none(row.XKZH), "XKZH"),
        status=permit_status(row.ZT, valid_to, today),
        category=code(CATEGORY, row.RCLB, "RCLB"),
        valid_from=parse_compact_date(row.YXQQ, "YXQQ"),
        valid_to=valid_to,
        employer=found_employer,
        position=blank_to_none(row.ZW),
        work_district=blank_to_none(row.GZDD),
        procedure=code(PROCEDURE, row.STZ, "STZ"),
        notification_letter_number=blank_to_none(row.TZSBH),
        notification_letter_date=parse_compact_date(row.TZRQ, "TZRQ"),
        problems=found_employer.problems if found_employer else (),
    )


def permit_event(row: Row[Any], key: str) -> PermitEvent:
    return PermitEvent(
        key=key,
        owner=str(row.XKID),
        kind=code(EVENT_KIND, row.YWLX, "YWLX"),
        applied_on=required(parse_compact_date(row.SQRQ, "SQRQ"), "SQRQ"),
        decided_on=parse_compact_date(row.BJRQ, "BJRQ"),
        outcome=code(EVENT_OUTCOME, row.JG, "JG"),
        remark=blank_to_none(row.BZ),
    )
