"""BEIJING PASS's part of the graph: benefits paid on the card."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import strawberry

from schema.common import BenefitPaymentStatus, PageInfo


@strawberry.type(description="A benefit or subsidy paid on the person's card.")
class BenefitPayment:
    benefit_code: str = strawberry.field(description="The benefit's code in the catalogue.")
    benefit_name: str = strawberry.field(description="The benefit's name.")
    amount: Decimal = strawberry.field(description="The amount in yuan (CNY).")
    paid_on: date | None = strawberry.field(description="When it was paid; null unless paid.")
    status: BenefitPaymentStatus = strawberry.field(description="Pending, paid or rejected.")


@strawberry.type(description="A benefit payment with its cursor.")
class BenefitPaymentEdge:
    cursor: str = strawberry.field(description="The cursor of this payment.")
    node: BenefitPayment = strawberry.field(description="The payment.")


@strawberry.type(description="A page of benefit payments, newest first.")
class BenefitPaymentConnection:
    edges: list[BenefitPaymentEdge] = strawberry.field(description="The payments of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")
