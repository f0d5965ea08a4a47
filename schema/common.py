"""What every part of the graph shares: the Node interface, paging, enums, user errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import strawberry

from domain import records
from domain.records import Page
from resolvers.context import Info
from resolvers.fetch import edges


def _describe_values(enum: Any, descriptions: dict[str, str]) -> None:
    """Describe an exposed adapter enum's values (the adapters know no GraphQL)."""
    for value in enum.__strawberry_definition__.values:
        value.description = descriptions[value.name]


# The adapters' enums, exposed as the graph's enums (one definition, no copies).
# Its values are the registered agencies' (schema/agencies.py, compose). Each is an alias, so
# that mypy reads it as the type, then registered: strawberry.enum marks the class in place.
Agency = records.Agency
strawberry.enum(Agency, description="The agencies whose systems the hub joins.")
Sex = records.Sex
strawberry.enum(Sex, description="Sex as the agencies record it (GB/T 2261.1).")
TalentCategory = records.TalentCategory
strawberry.enum(
    TalentCategory, description="The permit's talent category: A high-end, B professional, C other."
)
WorkPermitStatus = records.WorkPermitStatus
strawberry.enum(
    WorkPermitStatus,
    description="Where a permit period stands; EXPIRED once its end date has passed.",
)
PermitProcedure = records.PermitProcedure
strawberry.enum(
    PermitProcedure,
    description="A physical permit card of the old procedure, or integrated into the social security card.",
)
PermitEventKind = records.PermitEventKind
strawberry.enum(
    PermitEventKind,
    description="The kind of a permit step in the work-permit system's business records.",
)
PermitEventOutcome = records.PermitEventOutcome
strawberry.enum(PermitEventOutcome, description="How a permit step was decided.")
CardStatus = records.CardStatus
strawberry.enum(CardStatus, description="The state of a physical social security card.")
ElectronicCardStatus = records.ElectronicCardStatus
strawberry.enum(ElectronicCardStatus, description="The signing state of an electronic social security card.")
ElectronicCardServiceLevel = records.ElectronicCardServiceLevel
strawberry.enum(
    ElectronicCardServiceLevel, description="BASIC until a physical card is in use, STANDARD after."
)
VerificationMethod = records.VerificationMethod
strawberry.enum(VerificationMethod, description="How the card service verified the real person.")
InsuranceType = records.InsuranceType
strawberry.enum(InsuranceType, description="The five social insurance types.")
InsuranceStatus = records.InsuranceStatus
strawberry.enum(InsuranceStatus, description="Whether contributions are being paid.")
ResidencePurpose = records.ResidencePurpose
strawberry.enum(ResidencePurpose, description="What a residence permit was issued for.")
ResidencePermitStatus = records.ResidencePermitStatus
strawberry.enum(ResidencePermitStatus, description="VALID in force, EXPIRED past its end, VOID withdrawn.")
VerificationChannel = records.VerificationChannel
strawberry.enum(
    VerificationChannel,
    description="How a work permit was verified: in the system, by e-card, or by QR code.",
)
PermitVerificationFailure = records.PermitVerificationFailure
strawberry.enum(PermitVerificationFailure, description="Why a permit verification failed.")
BenefitPaymentStatus = records.BenefitPaymentStatus
strawberry.enum(BenefitPaymentStatus, description="The state of a benefit payment.")
LinkConfidence = records.LinkConfidence
strawberry.enum(
    LinkConfidence,
    description="CONFIRMED links are merged into the person; WEAK ones are shown, never merged.",
)
NotificationKind = records.NotificationKind
strawberry.enum(NotificationKind, description="What a notification is about.")
_describe_values(
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
StatisticsDimension = records.StatisticsDimension
strawberry.enum(StatisticsDimension, description="What workforce statistics can be grouped and filtered by.")


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
