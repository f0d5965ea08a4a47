"""Resolvers of BEIJING PASS's benefit mutations, and of what the hub itself keeps about a
payment (a rejection's reason)."""

from __future__ import annotations

from typing import Any

from adapters.beijing_pass.spec import BENEFIT_PAYMENTS, PAYMENT_BY_KEY
from domain.records import BenefitPayment, BenefitPaymentStatus, Page
from identity.store import PersonCore
from resolvers.context import Info
from resolvers.fetch import person_page
from resolvers.mutations import Answer, run_workflow
from workflows import benefits


async def grant_benefit(info: Info, arguments: dict[str, Any], key: str | None) -> Answer:
    return await run_workflow(
        info,
        "grantBenefit",
        key,
        arguments,
        lambda w, j: benefits.grant(w, j, arguments),
        lambda result: _payment(info, result["payment"]),
    )


async def mark_benefit_paid(info: Info, arguments: dict[str, Any], key: str | None) -> Answer:
    client = info.context.caller.subject
    return await run_workflow(
        info,
        "markBenefitPaid",
        key,
        arguments,
        lambda w, j: benefits.mark_paid(w, j, arguments, client),
        lambda result: _payment(info, result["payment"]),
    )


async def reject_benefit_payment(info: Info, arguments: dict[str, Any], key: str | None) -> Answer:
    client = info.context.caller.subject
    return await run_workflow(
        info,
        "rejectBenefitPayment",
        key,
        arguments,
        lambda w, j: benefits.reject(w, j, arguments, client),
        lambda result: _payment(info, result["payment"]),
    )


async def _payment(info: Info, key: str) -> BenefitPayment | None:
    found = await info.context.loaders.reread(PAYMENT_BY_KEY, key)
    return found if isinstance(found, BenefitPayment) else None


async def payment_reason(info: Info, payment: BenefitPayment) -> str | None:
    """Why the payment was rejected, as the hub kept it (BJT_FF has no column for it); none
    once the agency itself has set the row to another status."""
    if payment.status is not BenefitPaymentStatus.REJECTED:
        return None
    decision = await info.context.loaders.benefit_decision_by_payment.load(payment.key)
    return decision.reason if decision is not None else None


async def person_benefit_payments(
    info: Info, person: PersonCore, first: int | None, after: str | None
) -> tuple[Page[Any], str]:
    return await person_page(info, BENEFIT_PAYMENTS, person.id, first, after)
