"""What every part of the graph shares: the Node interface, paging, enums, user errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast

import strawberry

from domain import records
from domain.records import Page
from opaque.cursors import DEFAULT_PAGE, MAX_PAGE
from resolvers.context import Info
from resolvers.fetch import edges


def describe_values(enum: Any, descriptions: dict[str, str]) -> None:
    """Describe an exposed domain enum's values (the domain knows no GraphQL); a value left
    out is a KeyError at import, so none goes undescribed."""
    for value in enum.__strawberry_definition__.values:
        value.description = descriptions[value.name]


# The adapters' enums, exposed as the graph's enums (one definition, no copies).
# Its values are the registered agencies' (schema/agencies.py, compose). Each is an alias, so
# that mypy reads it as the type, then registered: strawberry.enum marks the class in place.
Agency = records.Agency
strawberry.enum(Agency, description="The agencies whose systems the hub joins.")
Sex = records.Sex
strawberry.enum(Sex, description="Sex as the agencies record it (GB/T 2261.1).")
describe_values(
    Sex,
    {
        "MALE": "Male (GB/T 2261.1 code 1).",
        "FEMALE": "Female (code 2).",
        "UNSTATED": "Not stated (code 9).",
        "UNKNOWN": "Not known (code 0).",
    },
)
TalentCategory = records.TalentCategory
strawberry.enum(
    TalentCategory, description="The permit's talent category: A high-end, B professional, C other."
)
describe_values(
    TalentCategory,
    {
        "A": "High-end talent.",
        "B": "Professional talent.",
        "C": "Other foreign workers.",
    },
)
WorkPermitStatus = records.WorkPermitStatus
strawberry.enum(
    WorkPermitStatus,
    description="Where a permit period stands; EXPIRED once its end date has passed.",
)
describe_values(
    WorkPermitStatus,
    {
        "UNDER_REVIEW": "Applied for; the work-permit authority has not decided yet.",
        "NOTICE_ISSUED": "Approved: a Notification Letter was issued, for the Z visa; activated after entry.",
        "VALID": "Activated and in force.",
        "REJECTED": "The application was rejected.",
        "CANCELLED": "Cancelled by the work-permit authority.",
        "EXPIRED": "Its end date has passed.",
    },
)
PermitProcedure = records.PermitProcedure
strawberry.enum(
    PermitProcedure,
    description="A physical permit card of the old procedure, or integrated into the social security card.",
)
describe_values(
    PermitProcedure,
    {
        "LEGACY_PHYSICAL_CARD": (
            "A physical permit card (old procedure), kept until its first extension or change."
        ),
        "INTEGRATED": "Integrated into the social security card; no physical permit card.",
    },
)
PermitEventKind = records.PermitEventKind
strawberry.enum(
    PermitEventKind,
    description="The kind of a permit step in the work-permit system's business records.",
)
describe_values(
    PermitEventKind,
    {
        "APPLICATION": "The application.",
        "NOTICE": "The Notification Letter issued on approval.",
        "ACTIVATION": "The activation after entry.",
        "EXTENSION": "An extension of the period's end.",
        "CHANGE": "A change of the permit; the remark says what changed.",
        "CANCELLATION": "A cancellation; the remark gives the reason.",
        "REJECTION": "The application's rejection; the remark gives the reason.",
    },
)
PermitEventOutcome = records.PermitEventOutcome
strawberry.enum(PermitEventOutcome, description="How a permit step was decided.")
describe_values(
    PermitEventOutcome,
    {
        "PENDING": "Not decided yet.",
        "APPROVED": "Approved.",
        "REJECTED": "Rejected.",
    },
)
CardStatus = records.CardStatus
strawberry.enum(CardStatus, description="The state of a physical social security card.")
describe_values(
    CardStatus,
    {
        "PENDING_PRODUCTION": "Applied for, not produced yet.",
        "IN_USE": "Issued and in use.",
        "REPORTED_LOST": "Reported lost.",
        "CANCELLED": "Cancelled.",
    },
)
ElectronicCardStatus = records.ElectronicCardStatus
strawberry.enum(ElectronicCardStatus, description="The signing state of an electronic social security card.")
describe_values(
    ElectronicCardStatus,
    {
        "UNSIGNED": "Registered, not signed yet.",
        "SIGNED": "Signed once the real person was verified; in use.",
        "REVOKED": "Revoked: its app's token no longer works.",
    },
)
ElectronicCardServiceLevel = records.ElectronicCardServiceLevel
strawberry.enum(
    ElectronicCardServiceLevel, description="BASIC until a physical card is in use, STANDARD after."
)
describe_values(
    ElectronicCardServiceLevel,
    {
        "BASIC": "No physical social security card in use yet (e.g. registered right after entry).",
        "STANDARD": "A physical social security card is in use.",
    },
)
VerificationMethod = records.VerificationMethod
strawberry.enum(VerificationMethod, description="How the card service verified the real person.")
describe_values(
    VerificationMethod,
    {
        "FACE": "Face recognition.",
        "BANK": "Through the person's bank account.",
        "COUNTER": "In person at a service counter.",
    },
)
InsuranceType = records.InsuranceType
strawberry.enum(InsuranceType, description="The five social insurance types.")
describe_values(
    InsuranceType,
    {
        "PENSION": "Basic pension insurance (code 110).",
        "UNEMPLOYMENT": "Unemployment insurance (code 210).",
        "MEDICAL": "Basic medical insurance (code 310).",
        "WORK_INJURY": "Work-injury insurance (code 410).",
        "MATERNITY": "Maternity insurance (code 510).",
    },
)
InsuranceStatus = records.InsuranceStatus
strawberry.enum(InsuranceStatus, description="Whether contributions are being paid.")
describe_values(
    InsuranceStatus,
    {
        "PAYING": "Contributions are being paid.",
        "SUSPENDED": "Contributions are suspended.",
        "TERMINATED": "The participation has ended.",
    },
)
ResidencePurpose = records.ResidencePurpose
strawberry.enum(ResidencePurpose, description="What a residence permit was issued for.")
describe_values(
    ResidencePurpose,
    {
        "WORK": "Work.",
        "STUDY": "Study.",
        "FAMILY": "Joining family.",
    },
)
ResidencePermitStatus = records.ResidencePermitStatus
strawberry.enum(ResidencePermitStatus, description="VALID in force, EXPIRED past its end, VOID withdrawn.")
describe_values(
    ResidencePermitStatus,
    {
        "VALID": "In force.",
        "EXPIRED": "Past its end date.",
        "VOID": "Withdrawn by the exit-entry administration.",
    },
)
VerificationChannel = records.VerificationChannel
strawberry.enum(
    VerificationChannel,
    description="How a work permit was verified: in the system, by e-card, or by QR code.",
)
describe_values(
    VerificationChannel,
    {
        "SYSTEM": "By the permit's number, in the work-permit system.",
        "ELECTRONIC_CARD": "By the electronic social security card carrying the permit.",
        "QR_CODE": "By the permit's signed QR code.",
    },
)
PermitVerificationFailure = records.PermitVerificationFailure
strawberry.enum(PermitVerificationFailure, description="Why a permit verification failed.")
describe_values(
    PermitVerificationFailure,
    {
        "NOT_FOUND": "No such permit, or no e-card carrying one.",
        "NOT_VALID": (
            "The permit is not in force (not yet valid, rejected or cancelled), or the e-card is revoked."
        ),
        "EXPIRED": "The permit's period has ended, or the QR code is past its 24 hours.",
        "SIGNATURE_INVALID": "The QR code is not one the hub signed, or was altered.",
        "HOLDER_MISMATCH": "The permit belongs to someone else than the e-card's or the QR code's holder.",
    },
)
BenefitPaymentStatus = records.BenefitPaymentStatus
strawberry.enum(BenefitPaymentStatus, description="The state of a benefit payment.")
describe_values(
    BenefitPaymentStatus,
    {
        "PENDING": "Granted, not paid yet.",
        "PAID": "Paid on the card.",
        "REJECTED": "Rejected; the payment's reason says why.",
    },
)
LinkConfidence = records.LinkConfidence
strawberry.enum(
    LinkConfidence,
    description="CONFIRMED links are merged into the person; WEAK ones are shown, never merged.",
)
describe_values(
    LinkConfidence,
    {
        "CONFIRMED": "Strong evidence (e.g. passport and birth date): merged into the person.",
        "WEAK": "Weak evidence (e.g. name and birth date alone): shown for review, never merged.",
    },
)
NotificationKind = records.NotificationKind
strawberry.enum(NotificationKind, description="What a notification is about.")
describe_values(
    NotificationKind,
    {
        "PERMIT_EXPIRING": "The work permit ends within 30 days.",
        "PERMIT_CHANGED": "The work permit was activated, extended or changed.",
        "PERMIT_CANCELLED": "The work permit was cancelled.",
        "CARD_ISSUED": "A social security card is in use.",
        "ENROLLED": "Enrolled in social insurance.",
        "RESIDENCE_PERMIT_ISSUED": "A residence permit was issued.",
        "BENEFIT_PAID": "A benefit was paid on the card (its subject is the payment).",
        "BENEFIT_REJECTED": "A benefit payment was rejected; the message gives the reason.",
        "NEWS": "News from the work-permit authority.",
    },
)
CallerRole = records.CallerRole
strawberry.enum(CallerRole, description="The roles that call the graph.")
describe_values(
    CallerRole,
    {
        "WORK_PERMIT_AUTHORITY": "The work-permit authority: a permit from application to cancellation.",
        "SOCIAL_INSURANCE_AGENCY": (
            "The social insurance agency: enrolls foreigners, with a social security number."
        ),
        "CARD_SERVICE": "The social-security-card service: registers e-cards and activates physical cards.",
        "EXIT_ENTRY": "The exit-entry administration: entries, residence permits, permit verification.",
        "VISA_AUTHORITY": "The consular visa service: Z visas against a Notification Letter.",
        "BEIJING_PASS": "BEIJING PASS services: benefits and subsidies paid on the card.",
        "EMPLOYER": "An employer (its token bound to one credit code): its own foreign employees only.",
        "REPORTING": "A reporting job: aggregate statistics only, never a named person.",
        "CARDHOLDER": "The foreigner in the e-card app (bound to one person): their own record only.",
        "DATA_PROTECTION_OFFICER": (
            "The data-protection officer: a person's identity and access log, for complaints."
        ),
        "INTEGRATION_DEVELOPER": (
            "A client's developer: the schema only (introspection, GraphiQL), no person's data."
        ),
    },
)
StatisticsDimension = records.StatisticsDimension
strawberry.enum(StatisticsDimension, description="What workforce statistics can be grouped and filtered by.")
describe_values(
    StatisticsDimension,
    {
        "NATIONALITY": "The person's nationality (ISO 3166-1 alpha-3).",
        "TALENT_CATEGORY": "The current permit's talent category.",
        "PERMIT_STATUS": "The current permit's status.",
        "WORK_DISTRICT": "The current permit's work district (GB/T 2260 code).",
        "EMPLOYER": "The current permit's employer (Unified Social Credit Code).",
        "INSURED": "Whether the person pays into at least one insurance.",
    },
)

# The paging arguments of every connection, described once.
PageSize = Annotated[
    int | None,
    strawberry.argument(
        description=f"How many items the page holds: {DEFAULT_PAGE} if omitted, at most {MAX_PAGE}."
    ),
]
PageCursor = Annotated[
    str | None,
    strawberry.argument(
        description="Start after this cursor: a previous page's `pageInfo.endCursor`, passed back as it came."
    ),
]

_Graph = TypeVar("_Graph")


def as_graph(graph_type: type[_Graph], record: object) -> _Graph:
    """The domain record (domain/records.py), or a list of them, as the graph type a resolver
    declares: strawberry resolves `graph_type` from the record itself (its fields, or the type's
    `is_type_of`), so the record is returned as it is. A cast, in this one place: no copy, no
    check; None stays None where the declared type is optional. `graph_type` may be a list
    type, `list[Passport]`."""
    return cast(_Graph, record)


# Strawberry's decorators, typed. `strawberry.field(description=...)` (and `mutation`,
# `subscription`) used as a decorator is typed to return Any, which strict mypy refuses as an
# untyped decorator. The resolver itself stays fully checked; what the decorator returns is
# strawberry's field, typed Any as strawberry types it. Every resolver in schema/ uses these.
_Decorator = Callable[[Callable[..., object]], Any]


def resolver(description: str) -> _Decorator:
    """`@strawberry.field(description=...)` on a resolver."""
    return cast(_Decorator, strawberry.field(description=description))


def mutation(description: str) -> _Decorator:
    """`@strawberry.mutation(description=...)`."""
    return cast(_Decorator, strawberry.mutation(description=description))


def subscription(description: str) -> _Decorator:
    """`@strawberry.subscription(description=...)`."""
    return cast(_Decorator, strawberry.subscription(description=description))


@strawberry.interface(description="An object with a global id, fetchable again through `node`.")
class Node:
    # A resolver, as each implementing type's `id` is: mypy's dataclass rules let no method
    # override an attribute. Never called; every type resolves its own.
    @resolver(description="The object's opaque global id.")
    def id(self) -> strawberry.ID:
        raise NotImplementedError


@strawberry.type(description="Where a page ends and whether another follows.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether a next page exists.")
    end_cursor: str | None = strawberry.field(description="The cursor to pass as `after` for the next page.")


def connection_parts(info: Info, page: Page[Any], kind: str) -> tuple[list[tuple[str, Any]], PageInfo]:
    """(cursor, node) pairs and the PageInfo of one keyset page."""
    cursors = info.context.cursors
    pairs = [(cursors.encode(kind, position), item) for position, item in edges(info, page)]
    end = cursors.encode(kind, page.positions[-1]) if page.positions else None
    return pairs, PageInfo(has_next_page=page.has_next, end_cursor=end)
