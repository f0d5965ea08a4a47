"""Social insurance codes and formats -> the graph's values, in one place."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Row

from adapters.base import UnmappableValue, blank_to_none, code, parse_compact_date, required
from adapters.countries import ALPHA3_BY_NUMERIC
from adapters.identifiers import is_valid_credit_code, is_valid_social_security_number
from domain.records import (
    Agency,
    DataProblem,
    Employer,
    InsuranceParticipation,
    InsuranceStatus,
    InsuranceType,
    InsuredPerson,
    Sex,
)

AGENCY = Agency.SOCIAL_INSURANCE

SEX = {"0": Sex.UNKNOWN, "1": Sex.MALE, "2": Sex.FEMALE, "9": Sex.UNSTATED}
INSURANCE_TYPE = {
    "110": InsuranceType.PENSION,
    "210": InsuranceType.UNEMPLOYMENT,
    "310": InsuranceType.MEDICAL,
    "410": InsuranceType.WORK_INJURY,
    "510": InsuranceType.MATERNITY,
}
INSURANCE_STATUS = {
    "1": InsuranceStatus.PAYING,
    "2": InsuranceStatus.SUSPENDED,
    "4": InsuranceStatus.TERMINATED,
}
PAYING = "1"
VALID_ROW = "1"


def nationality(value: str | None) -> str:
    text = (value or "").strip()
    try:
        return ALPHA3_BY_NUMERIC[text]
    except KeyError:
        raise UnmappableValue("AAC161", f"is not a known ISO 3166 numeric code: {text!r}") from None


def insured_person(row: Row[Any]) -> InsuredPerson:
    key = str(row.AAC001)
    number = blank_to_none(row.AAC002)
    problems: tuple[DataProblem, ...] = ()
    if number is not None and not is_valid_social_security_number(number):
        problems = (DataProblem(AGENCY, key, "AAC002", "fails the social security number check character"),)
    return InsuredPerson(
        key=key,
        owner=key,
        social_security_number=number,
        name=required(blank_to_none(row.AAC003), "AAC003"),
        sex=code(SEX, row.AAC004, "AAC004"),
        birth_date=required(parse_compact_date(row.AAC006, "AAC006"), "AAC006"),
        nationality=nationality(row.AAC161),
        passport_number=required(blank_to_none(row.AAE135), "AAE135"),
        problems=problems,
    )


def employer(row: Row[Any]) -> Employer | None:
    credit = blank_to_none(row.AAB998)
    if credit is None:
        return None
    key = str(row.AAB001)
    problems: tuple[DataProblem, ...] = ()
    if not is_valid_credit_code(credit):
        problems = (DataProblem(AGENCY, key, "AAB998", "fails the GB 32100 check character"),)
    return Employer(credit, blank_to_none(row.AAB004) or credit, AGENCY, key, problems)


def participation(row: Row[Any], key: str) -> InsuranceParticipation:
    return InsuranceParticipation(
        key=key,
        owner=str(row.AAC001),
        type=code(INSURANCE_TYPE, row.AAE140, "AAE140"),
        status=code(INSURANCE_STATUS, row.AAC008, "AAC008"),
        started_on=required(parse_compact_date(row.AAE030, "AAE030"), "AAE030"),
        ended_on=parse_compact_date(row.AAE031, "AAE031"),
        employer=employer(row) if row.AAB998 is not None else None,
    )
