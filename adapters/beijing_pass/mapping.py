"""BEIJING PASS codes and formats -> the graph's values, in one place."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Row

from adapters.base import blank_to_none, code, parse_separated_date, required
from domain.records import BenefitPayment, BenefitPaymentStatus

STATUS = {
    "P": BenefitPaymentStatus.PENDING,
    "S": BenefitPaymentStatus.PAID,
    "R": BenefitPaymentStatus.REJECTED,
}
FEN_PER_YUAN = Decimal(100)


def yuan(fen: int) -> Decimal:
    return (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"))


def payment_key(card_number: str, benefit_code: str, on: str) -> str:
    """A payment's key: BJT_FF's natural key (KH, DYDM, FFRQ), as one text."""
    return f"{card_number}/{benefit_code}/{on}"


def key_parts(key: str) -> tuple[str, str, str] | None:
    """(KH, DYDM, FFRQ) of a payment's key; None for any other text."""
    parts = key.split("/")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 and all(parts) else None


def payment(row: Row[Any]) -> BenefitPayment:
    status = code(STATUS, row.ZT, "ZT")
    on = required(parse_separated_date(row.FFRQ, "FFRQ", "-"), "FFRQ")
    return BenefitPayment(
        key=payment_key(row.KH, row.DYDM, row.FFRQ),
        owner=row.KH.strip(),
        benefit_code=row.DYDM.strip(),
        benefit_name=blank_to_none(row.DYMC) or row.DYDM.strip(),
        amount=yuan(int(row.JE)),
        # FFRQ is the planned date while a payment is pending; only a paid one was paid on it.
        paid_on=on if status is BenefitPaymentStatus.PAID else None,
        status=status,
    )
