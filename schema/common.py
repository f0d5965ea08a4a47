"""What every part of the graph shares: the Node interface, paging, enums, user errors."""

from __future__ import annotations

from typing import Any

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
# Its values are the registered agencies' (schema/agencies.py, compose).
Agency = strawberry.enum(records.Agency, description="The agencies whose systems the hub joins.")
Sex = strawberry.enum(records.Sex, description="Sex as the agencies record it (GB/T 2261.1).")
TalentCategory = strawberry.enum(
    records.TalentCategory, description="The permit's talent category: A high-end, B professional, C other."
)
WorkPermitStatus = strawberry.enum(
    records.WorkPermitStatus,
    description="Where a permit period stands; EXPIRED once its end date has passed.",
)
PermitProcedure = strawberry.enum(
    records.PermitProcedure,
    description="A physical permit card of the old procedure, or integrated into the social security card.",
)
PermitEventKind = strawberry.enum(
    records.PermitEventKind,
    description="The kind of a permit step in the work-permit system's business records.",
)
PermitEventOutcome = strawberry.enum(records.PermitEventOutcome, description="How a permit step was decided.")
CardStatus = strawberry.enum(records.CardStatus, description="The state of a physical social security card.")
ElectronicCardStatus = strawberry.enum(
    records.ElectronicCardStatus, description="The signing state of an electronic social security card."
)
ElectronicCardServiceLevel = strawberry.enum(
    records.ElectronicCardServiceLevel, description="BASIC until a physical card is in use, STANDARD after."
)
VerificationMethod = strawberry.enum(
    records.VerificationMethod, description="How the card service verified the real person."
)
InsuranceType = strawberry.enum(records.InsuranceType, description="The five social insurance types.")
InsuranceStatus = strawberry.enum(
    records.InsuranceStatus, description="Whether contributions are being paid."
)
ResidencePurpose = strawberry.enum(
    records.ResidencePurpose, description="What a residence permit was issued for."
)
ResidencePermitStatus = strawberry.enum(
    records.ResidencePermitStatus, description="VALID in force, EXPIRED past its end, VOID withdrawn."
)
VerificationChannel = strawberry.enum(
    records.VerificationChannel,
    description="How a work permit was verified: in the system, by e-card, or by QR code.",
)
PermitVerificationFailure = strawberry.enum(
    records.PermitVerificationFailure, description="Why a permit verification failed."
)
BenefitPaymentStatus = strawberry.enum(
    records.BenefitPaymentStatus, description="The state of a benefit payment."
)
LinkConfidence = strawberry.enum(
    records.LinkConfidence,
    description="CONFIRMED links are merged into the person; WEAK ones are shown, never merged.",
)
NotificationKind = strawberry.enum(records.NotificationKind, description="What a notification is about.")
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
CallerRole = strawberry.enum(records.CallerRole, description="The roles that call the graph.")
StatisticsDimension = strawberry.enum(
    records.StatisticsDimension, description="What workforce statistics can be grouped and filtered by."
)


@strawberry.interface(description="An object with a global id, fetchable again through `node`.")
class Node:
    id: strawberry.ID = strawberry.field(description="The object's opaque global id.")


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
