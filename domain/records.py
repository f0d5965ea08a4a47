"""The graph's values and the plain records the adapters hand upwards.

Records are already mapped to the graph's language (enums, ISO dates, yuan), so turning one
into response JSON needs no further lookups. Every record knows its agency, its own key and
the key of the source's person record it belongs to (`owner`), which identity links resolve
to the hub's person; a record a loader read carries that person (`person_id`), so that grants,
scope and the audit know whose it is where it is read. No GraphQL here: `schema/` exposes these
enums and records as types.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Generic, TypeAlias, TypeVar
from zoneinfo import ZoneInfo

T = TypeVar("T")

# The graph's dates are local dates in Asia/Shanghai (DOMAIN.md).
SHANGHAI = ZoneInfo("Asia/Shanghai")


# An agency's id as the registry of agencies names it (adapters/registry.py): the graph's
# `Agency` value, and the label of its source in traces, metrics and readiness.
AgencyId: TypeAlias = str


class Agency(StrEnum):
    """The ids of the five agencies of the notice (a plug-in agency brings its own id)."""

    WORK_PERMIT_SYSTEM = "WORK_PERMIT_SYSTEM"
    SOCIAL_INSURANCE = "SOCIAL_INSURANCE"
    CARD_SERVICE = "CARD_SERVICE"
    EXIT_ENTRY = "EXIT_ENTRY"
    BEIJING_PASS = "BEIJING_PASS"


class Sex(StrEnum):
    MALE = "MALE"
    FEMALE = "FEMALE"
    UNSTATED = "UNSTATED"
    UNKNOWN = "UNKNOWN"


class TalentCategory(StrEnum):
    A = "A"
    B = "B"
    C = "C"


class WorkPermitStatus(StrEnum):
    UNDER_REVIEW = "UNDER_REVIEW"
    NOTICE_ISSUED = "NOTICE_ISSUED"
    VALID = "VALID"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class PermitProcedure(StrEnum):
    LEGACY_PHYSICAL_CARD = "LEGACY_PHYSICAL_CARD"
    INTEGRATED = "INTEGRATED"


class PermitEventKind(StrEnum):
    APPLICATION = "APPLICATION"
    NOTICE = "NOTICE"
    ACTIVATION = "ACTIVATION"
    EXTENSION = "EXTENSION"
    CHANGE = "CHANGE"
    CANCELLATION = "CANCELLATION"
    REJECTION = "REJECTION"


class PermitEventOutcome(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class CardStatus(StrEnum):
    PENDING_PRODUCTION = "PENDING_PRODUCTION"
    IN_USE = "IN_USE"
    REPORTED_LOST = "REPORTED_LOST"
    CANCELLED = "CANCELLED"


class ElectronicCardStatus(StrEnum):
    UNSIGNED = "UNSIGNED"
    SIGNED = "SIGNED"
    REVOKED = "REVOKED"


class ElectronicCardServiceLevel(StrEnum):
    BASIC = "BASIC"
    STANDARD = "STANDARD"


class VerificationMethod(StrEnum):
    FACE = "FACE"
    BANK = "BANK"
    COUNTER = "COUNTER"


class InsuranceType(StrEnum):
    PENSION = "PENSION"
    UNEMPLOYMENT = "UNEMPLOYMENT"
    MEDICAL = "MEDICAL"
    WORK_INJURY = "WORK_INJURY"
    MATERNITY = "MATERNITY"


class InsuranceStatus(StrEnum):
    PAYING = "PAYING"
    SUSPENDED = "SUSPENDED"
    TERMINATED = "TERMINATED"


class ResidencePurpose(StrEnum):
    WORK = "WORK"
    STUDY = "STUDY"
    FAMILY = "FAMILY"


class ResidencePermitStatus(StrEnum):
    VALID = "VALID"
    EXPIRED = "EXPIRED"
    VOID = "VOID"


class VerificationChannel(StrEnum):
    SYSTEM = "SYSTEM"
    ELECTRONIC_CARD = "ELECTRONIC_CARD"
    QR_CODE = "QR_CODE"


class PermitVerificationFailure(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    NOT_VALID = "NOT_VALID"
    EXPIRED = "EXPIRED"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    HOLDER_MISMATCH = "HOLDER_MISMATCH"


class BenefitPaymentStatus(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    REJECTED = "REJECTED"


class LinkConfidence(StrEnum):
    CONFIRMED = "CONFIRMED"
    WEAK = "WEAK"


class NotificationKind(StrEnum):
    PERMIT_EXPIRING = "PERMIT_EXPIRING"
    PERMIT_CHANGED = "PERMIT_CHANGED"
    PERMIT_CANCELLED = "PERMIT_CANCELLED"
    CARD_ISSUED = "CARD_ISSUED"
    ENROLLED = "ENROLLED"
    RESIDENCE_PERMIT_ISSUED = "RESIDENCE_PERMIT_ISSUED"
    BENEFIT_PAID = "BENEFIT_PAID"
    BENEFIT_REJECTED = "BENEFIT_REJECTED"
    NEWS = "NEWS"


class CallerRole(StrEnum):
    WORK_PERMIT_AUTHORITY = "WORK_PERMIT_AUTHORITY"
    SOCIAL_INSURANCE_AGENCY = "SOCIAL_INSURANCE_AGENCY"
    CARD_SERVICE = "CARD_SERVICE"
    EXIT_ENTRY = "EXIT_ENTRY"
    VISA_AUTHORITY = "VISA_AUTHORITY"
    BEIJING_PASS = "BEIJING_PASS"
    EMPLOYER = "EMPLOYER"
    REPORTING = "REPORTING"
    CARDHOLDER = "CARDHOLDER"
    DATA_PROTECTION_OFFICER = "DATA_PROTECTION_OFFICER"
    INTEGRATION_DEVELOPER = "INTEGRATION_DEVELOPER"


class StatisticsDimension(StrEnum):
    NATIONALITY = "NATIONALITY"
    TALENT_CATEGORY = "TALENT_CATEGORY"
    PERMIT_STATUS = "PERMIT_STATUS"
    WORK_DISTRICT = "WORK_DISTRICT"
    EMPLOYER = "EMPLOYER"
    INSURED = "INSURED"


@dataclass(frozen=True, slots=True)
class DataProblem:
    """A legacy value that could not be mapped, or that maps but fails its check."""

    agency: AgencyId
    record_key: str
    field: str
    rule: str

    def describe(self) -> str:
        return f"{self.agency} record {self.record_key}: {self.field} {self.rule}"


# ---------------------------------------------------------------- work-permit system


@dataclass(frozen=True, slots=True)
class Employer:
    credit_code: str
    name: str
    agency: AgencyId
    key: str
    problems: tuple[DataProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class Applicant:
    """`WP_SQR` with its passport history, as the linker reads it."""

    key: str
    name_upper: str
    sex: Sex
    birth_date: date
    nationality: str
    passport_number: str
    passports: tuple[PassportPeriod, ...]
    permit_numbers: tuple[str, ...]
    notification_letters: tuple[str, ...]
    agency: AgencyId = Agency.WORK_PERMIT_SYSTEM


@dataclass(frozen=True, slots=True)
class PassportPeriod:
    number: str
    nationality: str
    valid_from: date | None
    valid_to: date | None
    current: bool


@dataclass(frozen=True, slots=True)
class WorkPermit:
    key: str  # XKID: one permit period
    owner: str  # SQRID
    number: str
    status: WorkPermitStatus
    category: TalentCategory
    valid_from: date | None
    valid_to: date | None
    employer: Employer | None
    position: str | None
    work_district: str | None
    procedure: PermitProcedure
    notification_letter_number: str | None
    notification_letter_date: date | None
    agency: AgencyId = Agency.WORK_PERMIT_SYSTEM
    person_id: int | None = None  # the hub's person it belongs to, as the loader that read it knew
    problems: tuple[DataProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class PermitEvent:
    key: str
    owner: str  # XKID
    kind: PermitEventKind
    applied_on: date
    decided_on: date | None
    outcome: PermitEventOutcome
    remark: str | None
    agency: AgencyId = Agency.WORK_PERMIT_SYSTEM
    person_id: int | None = None  # the hub's person it belongs to, as the loader that read it knew


# ---------------------------------------------------------------- social insurance


@dataclass(frozen=True, slots=True)
class InsuredPerson:
    key: str  # AAC001
    owner: str  # AAC001: the insured person is its own owner
    social_security_number: str | None
    name: str
    sex: Sex
    birth_date: date
    nationality: str
    passport_number: str
    agency: AgencyId = Agency.SOCIAL_INSURANCE
    person_id: int | None = None  # the hub's person it belongs to, as the loader that read it knew
    problems: tuple[DataProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class InsuranceParticipation:
    key: str
    owner: str  # AAC001
    type: InsuranceType
    status: InsuranceStatus
    started_on: date
    ended_on: date | None
    employer: Employer | None
    agency: AgencyId = Agency.SOCIAL_INSURANCE
    person_id: int | None = None  # the hub's person it belongs to, as the loader that read it knew


# ---------------------------------------------------------------- card service


@dataclass(frozen=True, slots=True)
class SocialSecurityCard:
    key: str  # KH
    owner: str  # SHBZHM
    number: str
    status: CardStatus
    issued_on: date | None
    valid_to: date | None
    holder_name: str
    work_permit_number: str | None
    work_permit_loaded_at: datetime | None
    agency: AgencyId = Agency.CARD_SERVICE
    person_id: int | None = None  # the hub's person it belongs to, as the loader that read it knew

    @property
    def carries_work_permit(self) -> bool:
        return self.work_permit_number is not None


@dataclass(frozen=True, slots=True)
class ElectronicCard:
    key: str  # DZKID
    owner: str  # SHBZHM
    status: ElectronicCardStatus
    signed_at: datetime | None
    verification_method: VerificationMethod | None
    verification_reference: str | None
    card_number: str | None
    work_permit_number: str | None
    agency: AgencyId = Agency.CARD_SERVICE
    person_id: int | None = None  # the hub's person it belongs to, as the loader that read it knew

    @property
    def service_level(self) -> ElectronicCardServiceLevel:
        # DOMAIN.md: STANDARD once a physical card is in use (KH set).
        return ElectronicCardServiceLevel.STANDARD if self.card_number else ElectronicCardServiceLevel.BASIC


# ---------------------------------------------------------------- exit-entry


@dataclass(frozen=True, slots=True)
class Traveller:
    """`CRJ_RY`: the exit-entry administration's person."""

    key: str  # RYBH
    surname: str
    given_names: str | None
    sex: Sex
    birth_date: date
    nationality: str
    passport_number: str
    agency: AgencyId = Agency.EXIT_ENTRY


@dataclass(frozen=True, slots=True)
class Visa:
    key: str
    owner: str  # RYBH
    number: str
    type: str
    issued_on: date
    valid_to: date | None
    notification_letter_number: str | None
    agency: AgencyId = Agency.EXIT_ENTRY
    person_id: int | None = None  # the hub's person it belongs to, as the loader that read it knew


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    owner: str  # RYBH
    entered_on: date
    port: str | None
    visa_number: str | None
    agency: AgencyId = Agency.EXIT_ENTRY
    person_id: int | None = None  # the hub's person it belongs to, as the loader that read it knew


@dataclass(frozen=True, slots=True)
class ResidencePermit:
    key: str
    owner: str  # RYBH
    number: str
    purpose: ResidencePurpose
    issued_on: date
    valid_to: date
    issuing_office: str | None
    status: ResidencePermitStatus
    verified_by: VerificationChannel | None
    agency: AgencyId = Agency.EXIT_ENTRY
    person_id: int | None = None  # the hub's person it belongs to, as the loader that read it knew


# ---------------------------------------------------------------- BEIJING PASS


@dataclass(frozen=True, slots=True)
class BenefitPayment:
    key: str  # KH/DYDM/FFRQ, BJT_FF's natural key
    owner: str  # KH
    benefit_code: str
    benefit_name: str
    amount: Decimal
    paid_on: date | None
    status: BenefitPaymentStatus
    agency: AgencyId = Agency.BEIJING_PASS
    person_id: int | None = None  # the hub's person it belongs to, as the loader that read it knew


# Records that belong to a person: a loader notes whose (`person_id`).
PERSON_RECORDS = (
    WorkPermit,
    PermitEvent,
    InsuredPerson,
    InsuranceParticipation,
    SocialSecurityCard,
    ElectronicCard,
    Visa,
    Entry,
    ResidencePermit,
    BenefitPayment,
)


# ---------------------------------------------------------------- pages


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One keyset page: the items, each item's position in the order (what a cursor encodes),
    whether more follow, and the total count when it was asked for."""

    items: list[T]
    positions: list[tuple[str | int, ...]]
    has_next: bool
    total: int | None = None
