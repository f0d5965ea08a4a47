"""BEIJING PASS's part of the graph: benefits paid on the card."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import strawberry

from domain.records import BenefitPayment as BenefitPaymentRecord
from identity.store import PersonCore
from resolvers import benefits
from resolvers.context import Info
from schema.common import (
    BenefitPaymentStatus,
    Node,
    PageCursor,
    PageInfo,
    PageSize,
    connection_parts,
    resolver,
)


@strawberry.type(description="A benefit or subsidy paid on the person's card.")
class BenefitPayment(Node):
    benefit_code: str = strawberry.field(description="The benefit's code in the catalogue.")
    benefit_name: str = strawberry.field(description="The benefit's name.")
    amount: Decimal = strawberry.field(description="The amount in yuan (CNY).")
    paid_on: date | None = strawberry.field(description="When it was paid; null unless paid.")
    status: BenefitPaymentStatus = strawberry.field(description="Pending, paid or rejected.")

    @resolver(
        description=(
            "The payment's opaque global id. It names the payment's card, benefit and date, so a"
            " payment paid on another day than planned gets a new id (the payload answers it)."
        )
    )
    def id(root: BenefitPaymentRecord, info: Info) -> strawberry.ID:
        return strawberry.ID(info.context.ids.encode("BenefitPayment", root.key))

    @resolver(
        description="Why the payment was rejected, where it was rejected through the hub; null otherwise."
    )
    async def reason(root: BenefitPaymentRecord, info: Info) -> str | None:
        return await benefits.payment_reason(info, root)

    @classmethod
    def is_type_of(cls, obj: object, _info: object) -> bool:
        return isinstance(obj, BenefitPaymentRecord)


@strawberry.type(description="A benefit payment with its cursor.")
class BenefitPaymentEdge:
    cursor: str = strawberry.field(description="The cursor of this payment.")
    node: BenefitPayment = strawberry.field(description="The payment.")


@strawberry.type(description="A page of benefit payments, newest first.")
class BenefitPaymentConnection:
    edges: list[BenefitPaymentEdge] = strawberry.field(description="The payments of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")


@strawberry.type(name="PersonBenefitFields", description="BEIJING PASS's fields of a person.")
class PersonBenefits:
    @resolver(description="Benefits paid on the person's cards, newest first.")
    async def benefit_payments(
        root: PersonCore,
        info: Info,
        first: PageSize = None,
        after: PageCursor = None,
    ) -> BenefitPaymentConnection | None:
        page, kind = await benefits.person_benefit_payments(info, root, first, after)
        pairs, page_info = connection_parts(info, page, kind)
        return BenefitPaymentConnection(
            edges=[BenefitPaymentEdge(cursor=c, node=n) for c, n in pairs], page_info=page_info
        )
