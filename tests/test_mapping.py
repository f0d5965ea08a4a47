"""Each agency's legacy codes and formats, mapped to the graph's values (one table per agency)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import Row

from adapters.base import UnmappableValue, parse_compact_date, parse_separated_date
from adapters.beijing_pass import mapping as bjt
from adapters.card_service import mapping as sbk
from adapters.exit_entry import mapping as crj
from adapters.identifiers import (
    credit_code_check_character,
    is_valid_credit_code,
    is_valid_social_security_number,
    social_security_check_character,
)
from adapters.social_insurance import mapping as si
from adapters.work_permit import mapping as wp
from domain.records import (
    BenefitPaymentStatus,
    CardStatus,
    ElectronicCardServiceLevel,
    ElectronicCardStatus,
    InsuranceStatus,
    InsuranceType,
    PermitEventKind,
    PermitEventOutcome,
    PermitProcedure,
    ResidencePermitStatus,
    ResidencePurpose,
    Sex,
    TalentCategory,
    VerificationChannel,
    VerificationMethod,
    WorkPermitStatus,
)

TODAY = date(2026, 6, 15)

CODE_TABLES = [
    # work-permit system
    (wp.SEX, {"M": Sex.MALE, "F": Sex.FEMALE}),
    (wp.CATEGORY, {"A": TalentCategory.A, "B": TalentCategory.B, "C": TalentCategory.C}),
    (
        wp.STATUS,
        {
            "10": WorkPermitStatus.UNDER_REVIEW,
            "20": WorkPermitStatus.NOTICE_ISSUED,
            "30": WorkPermitStatus.VALID,
            "40": WorkPermitStatus.CANCELLED,
            "50": WorkPermitStatus.EXPIRED,
            "60": WorkPermitStatus.REJECTED,
        },
    ),
    (wp.PROCEDURE, {"1": PermitProcedure.LEGACY_PHYSICAL_CARD, "0": PermitProcedure.INTEGRATED}),
    (
        wp.EVENT_KIND,
        {
            "XB": PermitEventKind.APPLICATION,
            "TZ": PermitEventKind.NOTICE,
            "JH": PermitEventKind.ACTIVATION,
            "YQ": PermitEventKind.EXTENSION,
            "BG": PermitEventKind.CHANGE,
            "ZX": PermitEventKind.CANCELLATION,
            "BH": PermitEventKind.REJECTION,
        },
    ),
    (
        wp.EVENT_OUTCOME,
        {"0": PermitEventOutcome.PENDING, "1": PermitEventOutcome.APPROVED, "2": PermitEventOutcome.REJECTED},
    ),
    # social insurance
    (si.SEX, {"0": Sex.UNKNOWN, "1": Sex.MALE, "2": Sex.FEMALE, "9": Sex.UNSTATED}),
    (
        si.INSURANCE_TYPE,
        {
            "110": InsuranceType.PENSION,
            "210": InsuranceType.UNEMPLOYMENT,
            "310": InsuranceType.MEDICAL,
            "410": InsuranceType.WORK_INJURY,
            "510": InsuranceType.MATERNITY,
        },
    ),
    (
        si.INSURANCE_STATUS,
        {"1": InsuranceStatus.PAYING, "2": InsuranceStatus.SUSPENDED, "4": InsuranceStatus.TERMINATED},
    ),
    # card service
    (
        sbk.CARD_STATUS,
        {
            "0": CardStatus.PENDING_PRODUCTION,
            "1": CardStatus.IN_USE,
            "2": CardStatus.REPORTED_LOST,
            "3": CardStatus.CANCELLED,
        },
    ),
    (
        sbk.ELECTRONIC_STATUS,
        {
            "0": ElectronicCardStatus.UNSIGNED,
            "1": ElectronicCardStatus.SIGNED,
            "2": ElectronicCardStatus.REVOKED,
        },
    ),
    (
        sbk.METHOD,
        {
            "FACE": VerificationMethod.FACE,
            "BANK": VerificationMethod.BANK,
            "COUNTER": VerificationMethod.COUNTER,
        },
    ),
    # exit-entry
    (crj.SEX, {"男": Sex.MALE, "女": Sex.FEMALE}),
    (crj.PURPOSE, {"GZ": ResidencePurpose.WORK, "XX": ResidencePurpose.STUDY, "TQ": ResidencePurpose.FAMILY}),
    (
        crj.CHANNEL,
        {
            "XT": VerificationChannel.SYSTEM,
            "DZK": VerificationChannel.ELECTRONIC_CARD,
            "EWM": VerificationChannel.QR_CODE,
        },
    ),
    # BEIJING PASS
    (
        bjt.STATUS,
        {
            "P": BenefitPaymentStatus.PENDING,
            "S": BenefitPaymentStatus.PAID,
            "R": BenefitPaymentStatus.REJECTED,
        },
    ),
]


@pytest.mark.parametrize(("table", "expected"), CODE_TABLES)
def test_every_legacy_code_maps_to_its_graph_value(
    table: dict[str, object], expected: dict[str, object]
) -> None:
    assert table == expected


def _row(**columns: object) -> Row[Any]:
    """A legacy row as the mappers read it: by attribute, as SQLAlchemy's Row answers."""
    return cast("Row[Any]", SimpleNamespace(**columns))


def _permit_row(**overrides: object) -> Row[Any]:
    row = {
        "XKID": 7,
        "XKZH": "110105202400000001",
        "SQRID": 3,
        "RCLB": "B",
        "ZT": "30",
        "YXQQ": "20250101",
        "YXQZ": "20270101",
        "DWMC": "Acme Beijing Ltd.          ",
        "TYSHXYDM": "91110000600037341L",
        "GZDD": "110105",
        "ZW": "Engineer",
        "STZ": "1",
        "TZSBH": "TZ20240000001",
        "TZRQ": "20241201",
    }
    row.update(overrides)
    return _row(**row)


def test_a_valid_permit_past_its_end_is_expired() -> None:
    assert wp.work_permit(_permit_row(YXQZ="20260614"), TODAY).status is WorkPermitStatus.EXPIRED
    assert wp.work_permit(_permit_row(YXQZ="20260615"), TODAY).status is WorkPermitStatus.VALID
    assert wp.work_permit(_permit_row(ZT="50", YXQZ="20300101"), TODAY).status is WorkPermitStatus.EXPIRED


def test_a_permit_row_is_trimmed_and_its_dates_parsed() -> None:
    permit = wp.work_permit(_permit_row(), TODAY)
    assert permit.employer is not None
    assert permit.employer.name == "Acme Beijing Ltd."
    assert (permit.valid_from, permit.valid_to) == (date(2025, 1, 1), date(2027, 1, 1))
    assert permit.procedure is PermitProcedure.LEGACY_PHYSICAL_CARD
    assert permit.problems == ()


def test_a_permit_before_approval_has_no_dates() -> None:
    permit = wp.work_permit(_permit_row(ZT="10", YXQQ="", YXQZ="", TZSBH="", TZRQ=""), TODAY)
    assert (permit.valid_from, permit.valid_to, permit.notification_letter_number) == (None, None, None)


def test_a_credit_code_failing_its_check_is_returned_with_the_problem() -> None:
    permit = wp.work_permit(_permit_row(TYSHXYDM="91110000600037341A"), TODAY)
    assert permit.employer is not None and permit.employer.credit_code == "91110000600037341A"
    assert [(p.field, p.record_key) for p in permit.problems] == [("TYSHXYDM", "7")]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ZT": "99"}, "ZT"),
        ({"YXQZ": "20270231"}, "YXQZ"),
        ({"RCLB": "D"}, "RCLB"),
        ({"YXQQ": "2025-01-01"}, "YXQQ"),
    ],
)
def test_an_unmappable_permit_value_names_its_column(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(UnmappableValue) as raised:
        wp.work_permit(_permit_row(**overrides), TODAY)
    assert raised.value.field == field


def test_dates_in_each_agency_format() -> None:
    assert parse_compact_date("20250301", "X") == date(2025, 3, 1)  # work-permit text
    assert parse_compact_date(20250301, "X") == date(2025, 3, 1)  # social insurance integer
    assert parse_separated_date("2025-03-01", "X", "-") == date(2025, 3, 1)  # card service, BEIJING PASS
    assert crj.day("2025/03/01", "X") == date(2025, 3, 1)  # exit-entry
    assert parse_compact_date("", "X") is None
    assert parse_compact_date(None, "X") is None


def test_insured_person_maps_numeric_country_and_integer_birth_date() -> None:
    number = "DEU110105900101" + "01"
    number += social_security_check_character(number)
    row = _row(
        AAC001=5,
        AAC002=number,
        AAC003="Hans Mueller",
        AAC004="1",
        AAC006=19900101,
        AAC161="276",
        AAE135="C01X00T47",
    )
    person = si.insured_person(row)
    assert (person.nationality, person.birth_date, person.sex) == ("DEU", date(1990, 1, 1), Sex.MALE)
    assert person.problems == ()
    broken = si.insured_person(
        _row(**{**row.__dict__, "AAC002": number[:-1] + ("0" if number[-1] != "0" else "1")})
    )
    assert [p.field for p in broken.problems] == ["AAC002"]


def test_card_carries_the_permit_loaded_as_json() -> None:
    row = _row(
        KH="A12345678",
        SHBZHM="DEU...",
        XM="HANS MUELLER",
        KZT="1",
        FKRQ="2025-03-01",
        YXQ="2035-03-01",
        GZXKXX='{"XKZH": "110105202400000001", "ZT": "30", "YXQZ": "20270101", "JZSJ": "2025-03-01T10:00:00+08:00"}',
    )
    card = sbk.card(row)
    assert card.carries_work_permit and card.work_permit_number == "110105202400000001"
    assert card.work_permit_loaded_at == datetime(2025, 3, 1, 10, tzinfo=timezone(timedelta(hours=8)))
    assert not sbk.card(_row(**{**row.__dict__, "GZXKXX": ""})).carries_work_permit
    with pytest.raises(UnmappableValue) as raised:
        sbk.card(_row(**{**row.__dict__, "GZXKXX": "{broken"}))
    assert raised.value.field == "GZXKXX"


def test_electronic_card_service_level_follows_the_physical_card() -> None:
    row = _row(
        DZKID="DZK000000001",
        KH="",
        SHBZHM="X",
        XKZH="110105202400000001",
        QFZT="1",
        QFSJ="2025-03-01T10:00:00+08:00",
        RZFS="FACE",
        RZBH="F-1",
    )
    assert sbk.electronic_card(row).service_level is ElectronicCardServiceLevel.BASIC
    assert sbk.electronic_card(_row(**{**row.__dict__, "KH": "A12345678"})).service_level is (
        ElectronicCardServiceLevel.STANDARD
    )


def test_exit_entry_name_country_and_residence_status() -> None:
    row = _row(RYBH="RY1", YWXM="Müller, Hans Peter", XB="男", CSRQ="1990/01/01", GJ="德国", ZJHM="C01")
    traveller = crj.traveller(row)
    assert (traveller.surname, traveller.given_names, traveller.nationality) == (
        "Müller",
        "Hans Peter",
        "DEU",
    )
    assert crj.split_name("Madonna") == ("Madonna", None)
    permit = _row(
        JLXKZH="E00000001",
        RYBH="RY1",
        JLSY="GZ",
        QFRQ="2025/01/01",
        YXQZ="2026/06/14",
        QFJG="",
        ZT="Y",
        HYFS="EWM",
    )
    assert crj.residence_permit(permit, TODAY).status is ResidencePermitStatus.EXPIRED
    assert crj.residence_permit(_row(**{**permit.__dict__, "ZT": "N"}), TODAY).status is (
        ResidencePermitStatus.VOID
    )
    assert crj.residence_permit(_row(**{**permit.__dict__, "YXQZ": "2026/06/15"}), TODAY).status is (
        ResidencePermitStatus.VALID
    )
    with pytest.raises(UnmappableValue):
        crj.traveller(_row(**{**row.__dict__, "GJ": "火星"}))


def test_benefit_amounts_are_yuan_and_only_paid_ones_have_a_paid_date() -> None:
    row = _row(KH="A12345678", DYDM="BT0001", DYMC="Housing", FFRQ="2026-05-01", JE=123456, ZT="S")
    paid = bjt.payment(row)
    assert (paid.amount, paid.paid_on) == (Decimal("1234.56"), date(2026, 5, 1))
    assert bjt.payment(_row(**{**row.__dict__, "ZT": "P"})).paid_on is None


def test_check_characters() -> None:
    assert is_valid_credit_code("91110000600037341L")
    assert not is_valid_credit_code("91110000600037341M")
    code17 = "91110105MA01ABCDE"
    assert is_valid_credit_code(code17 + credit_code_check_character(code17))
    number17 = "USA11010588123101"
    assert is_valid_social_security_number(number17 + social_security_check_character(number17))
    assert not is_valid_social_security_number("usa110105881231011")
