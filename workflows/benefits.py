"""BEIJING PASS's benefits (DOMAIN.md workflow 8): a benefit of the catalogue granted to a
card as a pending payment, then marked paid or rejected; the cardholder is told of each
decision. BJT_FF is keyed by card number, so a benefit goes to a physical card in use or to
a signed e-card that carries a card number."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.beijing_pass import PAID_CARD_LINK
from adapters.beijing_pass import writes as bp_writes
from adapters.beijing_pass.mapping import key_parts, yuan
from adapters.identifiers import CARD_NUMBER, ELECTRONIC_CARD_ID
from domain.errors import ClientError, UserErrorCode
from domain.evidence import IdentifierKind
from domain.records import Agency, CardStatus, ElectronicCardStatus, NotificationKind
from identity.store import BENEFIT_DECISION
from workflows.engine import HUB_STORE, Journal, UserFailure, readable
from workflows.hub_records import announce, link_record
from workflows.permits import PermitWork

BP = Agency.BEIJING_PASS.value
MAX_REASON = 500
CARD_STATES = {
    CardStatus.PENDING_PRODUCTION: "is pending production",
    CardStatus.REPORTED_LOST: "is reported lost",
    CardStatus.CANCELLED: "is cancelled",
}
E_CARD_STATES = {ElectronicCardStatus.UNSIGNED: "is not signed", ElectronicCardStatus.REVOKED: "is revoked"}


async def grant(work: PermitWork, journal: Journal, arguments: dict[str, Any]) -> dict[str, Any]:
    """A pending payment (`ZT = P`) of a catalogue benefit on a card, planned for a day from
    today on (FFRQ), of the catalogue's amount in fen."""
    code = arguments["benefitCode"].strip().upper()
    planned: date = arguments.get("plannedOn") or work.today
    if planned < work.today:
        raise UserFailure(
            UserErrorCode.INVALID_INPUT, "A payment is planned for today or later.", ["input", "plannedOn"]
        )
    card_number, person_id = await _payable_card(work, arguments["card"])
    async with journal.writing(BP) as conn:
        benefit = await bp_writes.benefit(conn, code)
        if benefit is None:
            raise UserFailure(
                UserErrorCode.NOT_FOUND,
                "The benefit catalogue has no benefit with this code.",
                ["input", "benefitCode"],
            )
        if await bp_writes.payment(conn, bp_writes.row_key(card_number, code, planned.isoformat())):
            raise UserFailure(
                UserErrorCode.CONFLICT,
                "This benefit is already due on this card on that day; plan it for another day.",
                ["input", "plannedOn"],
            )
        key = await bp_writes.grant(journal, conn, card_number, code, planned, int(benefit.JE))
    await link_record(
        journal, person_id, Agency.BEIJING_PASS, PAID_CARD_LINK, card_number, card_number, "benefit grant"
    )
    return {"payment": key}


async def mark_paid(
    work: PermitWork, journal: Journal, arguments: dict[str, Any], client: str
) -> dict[str, Any]:
    """The pending payment, paid (`ZT = S`) on `paidOn` (today unless said), which becomes its
    FFRQ; the cardholder gets BENEFIT_PAID."""
    key = _payment_key(work, arguments["benefitPaymentId"])
    paid_on: date = arguments.get("paidOn") or work.today
    if paid_on > work.today:
        raise UserFailure(
            UserErrorCode.INVALID_INPUT, "A payment is marked paid once it was made.", ["input", "paidOn"]
        )
    async with journal.writing(BP) as conn:
        pending = await _pending(work, conn, key)
        moved = bp_writes.row_key(pending.KH, pending.DYDM, paid_on.isoformat())
        if paid_on.isoformat() != pending.FFRQ and await bp_writes.payment(conn, moved):
            raise UserFailure(
                UserErrorCode.CONFLICT,
                "This benefit was paid on this card on that day already.",
                ["input", "paidOn"],
            )
        paid = await bp_writes.mark_paid(journal, conn, pending, paid_on)
        name = await _benefit_name(conn, pending.DYDM)
    await _decide(journal, client, paid, pending.FFRQ, bp_writes.PAID, None)
    message = (
        f"{name}: {_amount(yuan(int(pending.JE)))} was paid to your card {pending.KH.strip()}"
        f" on {paid_on.isoformat()}."
    )
    person_id = await _holder(work, pending.KH)
    await announce(
        journal, work.store, person_id, NotificationKind.BENEFIT_PAID, message, ("BenefitPayment", paid)
    )
    return {"payment": paid}


async def reject(
    work: PermitWork, journal: Journal, arguments: dict[str, Any], client: str
) -> dict[str, Any]:
    """The pending payment, rejected (`ZT = R`) with a reason the hub keeps (BJT_FF has no
    column for it); FFRQ keeps the planned date. The cardholder gets BENEFIT_REJECTED."""
    key = _payment_key(work, arguments["benefitPaymentId"])
    reason = " ".join(arguments["reason"].split())
    if not reason or len(reason) > MAX_REASON:
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            f"Give the reason in 1 to {MAX_REASON} characters.",
            ["input", "reason"],
        )
    async with journal.writing(BP) as conn:
        pending = await _pending(work, conn, key)
        rejected = await bp_writes.reject(journal, conn, pending)
        name = await _benefit_name(conn, pending.DYDM)
    await _decide(journal, client, rejected, pending.FFRQ, bp_writes.REJECTED, reason)
    message = (
        f"{name}: the payment of {_amount(yuan(int(pending.JE)))} planned for {pending.FFRQ}"
        f" on your card {pending.KH.strip()} was rejected. Reason: {reason}"
    )
    person_id = await _holder(work, pending.KH)
    await announce(
        journal,
        work.store,
        person_id,
        NotificationKind.BENEFIT_REJECTED,
        message,
        ("BenefitPayment", rejected),
    )
    return {"payment": rejected}


# ---------------------------------------------------------------- the card a benefit goes to


async def _payable_card(work: PermitWork, card: dict[str, Any]) -> tuple[str, int]:
    """The card number a benefit is paid by, and its holder: a physical card in use, or a
    signed e-card carrying a card number (it stands in for a lost card, not a cancelled one)."""
    ((kind, value),) = ((k, v) for k, v in card.items() if v is not None)
    field = ["input", "card", kind]
    if kind == "cardNumber":
        number = value.strip().upper()
        if not CARD_NUMBER.match(number):
            raise UserFailure(UserErrorCode.INVALID_INPUT, "A card number is a letter and 8 digits.", field)
        status = await _card_status(work, number, field)
        if status is None:
            raise UserFailure(UserErrorCode.NOT_FOUND, "No social security card has this number.", field)
        if status is not CardStatus.IN_USE:
            raise UserFailure(
                UserErrorCode.NOT_ELIGIBLE,
                f"Benefits are paid on a card in use; this one {CARD_STATES[status]}.",
                field,
            )
    else:
        card_id = _electronic_card_key(work, value, field)
        found = (await work.sources.cards.electronic_cards_by_id([card_id]))[0]
        ecard = readable(found, "e-card", field)
        if ecard is None:
            raise UserFailure(UserErrorCode.NOT_FOUND, "No e-card has this id.", field)
        if ecard.status is not ElectronicCardStatus.SIGNED:
            state = E_CARD_STATES[ecard.status]
            raise UserFailure(
                UserErrorCode.NOT_ELIGIBLE, f"Benefits are paid on a signed e-card; this one {state}.", field
            )
        number = ecard.card_number or ""
        if not number:
            raise UserFailure(
                UserErrorCode.NOT_ELIGIBLE,
                "This e-card carries no card number yet (BASIC): benefits are paid by card number,"
                " once a physical card is in use.",
                field,
            )
        if await _card_status(work, number, field) is CardStatus.CANCELLED:
            raise UserFailure(UserErrorCode.NOT_ELIGIBLE, "The card this e-card carries is cancelled.", field)
    person_id = (await work.store.person_ids_by_identifier([(IdentifierKind.CARD_NUMBER.value, number)]))[0]
    if person_id is None:
        raise UserFailure(UserErrorCode.NOT_FOUND, "No person the hub knows holds this card.", field)
    return number, person_id


async def _card_status(work: PermitWork, number: str, field: list[str]) -> CardStatus | None:
    card = readable((await work.sources.cards.cards_by_number([number]))[0], "card", field)
    return card.status if card is not None else None


def _electronic_card_key(work: PermitWork, value: str, field: list[str]) -> str:
    """An e-card's id as the graph gives it, or the DZKID the person's app shows."""
    if ELECTRONIC_CARD_ID.match(value.strip().upper()):
        return value.strip().upper()
    try:
        return work.ids.key_of(value, "ElectronicCard", ".".join(field))
    except ClientError:
        raise UserFailure(UserErrorCode.INVALID_INPUT, "This is not an e-card's id.", field) from None


# ---------------------------------------------------------------- a payment and its decision


def _payment_key(work: PermitWork, payment_id: str) -> str:
    field = ["input", "benefitPaymentId"]
    try:
        key = work.ids.key_of(payment_id, "BenefitPayment", ".".join(field))
    except ClientError:
        raise UserFailure(UserErrorCode.INVALID_INPUT, "This is not a benefit payment's id.", field) from None
    if key_parts(key) is None:
        raise UserFailure(UserErrorCode.INVALID_INPUT, "This is not a benefit payment's id.", field)
    return key


async def _pending(work: PermitWork, conn: AsyncConnection, key: str) -> Row[Any]:
    """The pending payment under this key, read in the write's own transaction."""
    field = ["input", "benefitPaymentId"]
    card, code, on = key_parts(key) or ("", "", "")
    row = await bp_writes.payment(conn, bp_writes.row_key(card, code, on))
    if row is None:
        moved = await _moved_from(work, card, code, on)
        if moved is not None:
            raise UserFailure(
                UserErrorCode.NOT_ELIGIBLE, f"This payment was paid already, on {moved}.", field
            )
        raise UserFailure(UserErrorCode.NOT_FOUND, "No benefit payment has this id.", field)
    if row.ZT != bp_writes.PENDING:
        state = {bp_writes.PAID: "paid", bp_writes.REJECTED: "rejected"}.get(row.ZT, "decided")
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE, f"Only a pending payment is decided; this one is {state}.", field
        )
    return row


async def _moved_from(work: PermitWork, card: str, code: str, planned_on: str) -> str | None:
    """The day a payment planned for `planned_on` was paid on instead, if it was."""
    decision = BENEFIT_DECISION
    async with work.store.engine.connect() as conn:
        return (
            await conn.execute(
                select(decision.c.payment_date).where(
                    decision.c.card_number == card,
                    decision.c.benefit_code == code,
                    decision.c.planned_on == planned_on,
                    decision.c.payment_date != planned_on,
                )
            )
        ).scalar_one_or_none()


async def _decide(
    journal: Journal, client: str, key: str, planned_on: str, status: str, reason: str | None
) -> None:
    """What the hub keeps of the decision, under the payment's key as it now stands."""
    card, code, on = key_parts(key) or ("", "", "")
    row = {
        "card_number": card,
        "benefit_code": code,
        "payment_date": on,
        "planned_on": planned_on,
        "status": status,
        "reason": reason,
        "decided_at": datetime.now(UTC),
        "decided_by": client,
    }
    key_columns = ["card_number", "benefit_code", "payment_date"]
    async with journal.writing(HUB_STORE) as conn:
        # A decision of a row the agency has since removed and reused the key of is replaced.
        await journal.delete(conn, HUB_STORE, BENEFIT_DECISION, {k: row[k] for k in key_columns})
        await journal.insert(conn, HUB_STORE, BENEFIT_DECISION, row, key_columns)


async def _benefit_name(conn: AsyncConnection, code: str) -> str:
    benefit = await bp_writes.benefit(conn, code)
    return benefit.DYMC.strip() if benefit is not None else code.strip()


async def _holder(work: PermitWork, card_number: str) -> int | None:
    return (await work.store.person_ids_by_owner([(PAID_CARD_LINK, card_number.strip())]))[0]


def _amount(value: Decimal) -> str:
    return f"CNY {value}"
