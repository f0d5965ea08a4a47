"""Writes to BEIJING PASS: benefit payments in BJT_FF's own formats (dates `YYYY-MM-DD`,
amounts in fen, status `P` pending, `S` paid, `R` rejected)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.base import RowWriter
from adapters.beijing_pass.mapping import payment_key
from adapters.beijing_pass.tables import BJT_DY, BJT_FF
from domain.records import Agency

AGENCY = Agency.BEIJING_PASS.value
PENDING, PAID, REJECTED = "P", "S", "R"
KEY = ["KH", "DYDM", "FFRQ"]


def row_key(card_number: str, benefit_code: str, on: str) -> dict[str, str]:
    return {"KH": card_number, "DYDM": benefit_code, "FFRQ": on}


async def benefit(conn: AsyncConnection, code: str) -> Row[Any] | None:
    """The catalogue's entry for a benefit code."""
    return (await conn.execute(select(BJT_DY).where(BJT_DY.c.DYDM == code))).first()


async def payment(conn: AsyncConnection, key: dict[str, str]) -> Row[Any] | None:
    where = and_(*(BJT_FF.c[column] == value for column, value in key.items()))
    return (await conn.execute(select(BJT_FF).where(where))).first()


async def grant(
    writer: RowWriter, conn: AsyncConnection, card_number: str, benefit_code: str, planned_on: date, fen: int
) -> str:
    """A pending payment of the benefit on the card, planned for `planned_on`; its key."""
    row = {**row_key(card_number, benefit_code, planned_on.isoformat()), "JE": fen, "ZT": PENDING}
    await writer.insert(conn, AGENCY, BJT_FF, row, KEY)
    return payment_key(card_number, benefit_code, planned_on.isoformat())


async def mark_paid(writer: RowWriter, conn: AsyncConnection, pending: Row[Any], paid_on: date) -> str:
    """The pending payment, paid on `paid_on`: FFRQ becomes the payment date, which moves the
    row to another key when that is not the planned date. Its key as it now stands."""
    key = row_key(pending.KH, pending.DYDM, pending.FFRQ)
    if paid_on.isoformat() == pending.FFRQ:
        await writer.update(conn, AGENCY, BJT_FF, key, {"ZT": PAID})
    else:
        await writer.delete(conn, AGENCY, BJT_FF, key)
        paid = {**row_key(pending.KH, pending.DYDM, paid_on.isoformat()), "JE": pending.JE, "ZT": PAID}
        await writer.insert(conn, AGENCY, BJT_FF, paid, KEY)
    return payment_key(pending.KH, pending.DYDM, paid_on.isoformat())


async def reject(writer: RowWriter, conn: AsyncConnection, pending: Row[Any]) -> str:
    """The pending payment, rejected; FFRQ keeps the planned date (BJT_FF has no column for
    the reason: the hub keeps it)."""
    key = row_key(pending.KH, pending.DYDM, pending.FFRQ)
    await writer.update(conn, AGENCY, BJT_FF, key, {"ZT": REJECTED})
    return payment_key(pending.KH, pending.DYDM, pending.FFRQ)
