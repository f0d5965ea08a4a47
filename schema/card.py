"""The social-security-card service's part of the graph."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from domain.records import ElectronicCard as ElectronicCardRecord
from identity.store import PersonCore
from resolvers import card
from resolvers.context import Info
from schema.common import (
    CardStatus,
    ElectronicCardServiceLevel,
    ElectronicCardStatus,
    Node,
    VerificationMethod,
    as_graph,
    resolver,
)


@strawberry.type(
    description="A physical social security card and the work-permit information loaded onto it."
)
class SocialSecurityCard:
    number: str = strawberry.field(description="The card number (a letter and 8 digits).")
    status: CardStatus = strawberry.field(description="The card's state.")
    issued_on: date | None = strawberry.field(
        description="When the card was issued; null while pending production."
    )
    valid_to: date | None = strawberry.field(description="The last day the card is valid.")
    carries_work_permit: bool = strawberry.field(
        description="Whether work-permit information is loaded onto the card."
    )
    work_permit_number: str | None = strawberry.field(
        description="The number of the permit loaded onto the card."
    )


@strawberry.type(description="An electronic social security card, registered in the e-card app.")
class ElectronicCard(Node):
    status: ElectronicCardStatus = strawberry.field(description="The signing state.")
    service_level: ElectronicCardServiceLevel = strawberry.field(
        description="STANDARD once a physical card is in use, else BASIC."
    )
    signed_at: datetime | None = strawberry.field(description="When the card was signed (RFC 3339, +08:00).")
    verification_method: VerificationMethod | None = strawberry.field(
        description="How the real person was verified at registration."
    )
    card_number: str | None = strawberry.field(
        description="The physical card it is linked to, once one is in use."
    )
    work_permit_number: str | None = strawberry.field(description="The permit number the card carries.")

    @resolver(description="The e-card's opaque global id.")
    def id(root: ElectronicCardRecord, info: Info) -> strawberry.ID:
        return strawberry.ID(info.context.ids.encode("ElectronicCard", root.key))

    @classmethod
    def is_type_of(cls, obj: object, _info: object) -> bool:
        return isinstance(obj, ElectronicCardRecord)


@strawberry.type(name="PersonCardFields", description="The card service's fields of a person.")
class PersonCards:
    @resolver(description="The current physical card: in use, else pending, lost, cancelled.")
    async def social_security_card(root: PersonCore, info: Info) -> SocialSecurityCard | None:
        return as_graph(SocialSecurityCard, await card.social_security_card(info, root))

    @resolver(description="The current electronic card: signed, else unsigned, revoked.")
    async def electronic_card(root: PersonCore, info: Info) -> ElectronicCard | None:
        return as_graph(ElectronicCard, await card.electronic_card(info, root))
