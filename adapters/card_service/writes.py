"""Writes to the card service: the work-permit information carried by a person's cards."""

from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.base import RowWriter, next_in_series
from adapters.card_service.mapping import LOADED_PERMIT_STATUS
from adapters.card_service.tables import NOT_ENROLLED, SBK_DZK, SBK_KXX, electronic_cards_filed_under
from domain.records import Agency, WorkPermitStatus

AGENCY = Agency.CARD_SERVICE.value
CARRYING_CARD_STATUSES = (
    "0",
    "1",
)  # pending production or in use: lost and cancelled cards keep what they had
REVOKED = "2"


async def load_permit(
    writer: RowWriter,
    conn: AsyncConnection,
    holders: tuple[str, ...],
    permit_number: str,
    status: WorkPermitStatus,
    valid_to: date | None,
    loaded_at: datetime,
) -> int:
    """Carry the permit as it now stands onto the holder's cards (`GZXKXX`) and e-cards
    (`XKZH`); how many records changed."""
    if not holders:
        return 0
    blob = json.dumps(
        {
            "XKZH": permit_number,
            "ZT": LOADED_PERMIT_STATUS[status],
            "YXQZ": valid_to.strftime("%Y%m%d") if valid_to else "",
            "JZSJ": loaded_at.isoformat(timespec="seconds"),
        },
        ensure_ascii=False,
    )
    cards = (
        (
            await conn.execute(
                select(SBK_KXX.c.KH)
                .where(SBK_KXX.c.SHBZHM.in_(holders))
                .where(SBK_KXX.c.KZT.in_(CARRYING_CARD_STATUSES))
            )
        )
        .scalars()
        .all()
    )
    for number in cards:
        await writer.update(conn, AGENCY, SBK_KXX, {"KH": number}, {"GZXKXX": blob})
    filed = electronic_cards_filed_under(holders)
    ecards = (
        (await conn.execute(select(SBK_DZK.c.DZKID).where(filed).where(SBK_DZK.c.QFZT != REVOKED)))
        .scalars()
        .all()
    )
    for card_id in ecards:
        await writer.update(conn, AGENCY, SBK_DZK, {"DZKID": card_id}, {"XKZH": permit_number})
    return len(cards) + len(ecards)


async def attach_social_security_number(
    writer: RowWriter, conn: AsyncConnection, permit_number: str, social_security_number: str
) -> list[str]:
    """At enrollment, the e-cards registered before it (`SHBZHM` empty, filed under the permit
    number they carry) take the new social security number; their ids."""
    ecards = (
        (
            await conn.execute(
                select(SBK_DZK.c.DZKID)
                .where(NOT_ENROLLED)
                .where(SBK_DZK.c.XKZH == permit_number)
                .where(SBK_DZK.c.QFZT != REVOKED)
            )
        )
        .scalars()
        .all()
    )
    for card_id in ecards:
        await writer.update(conn, AGENCY, SBK_DZK, {"DZKID": card_id}, {"SHBZHM": social_security_number})
    return list(ecards)


async def revoke_electronic_card(writer: RowWriter, conn: AsyncConnection, card_id: str) -> None:
    await writer.update(conn, AGENCY, SBK_DZK, {"DZKID": card_id}, {"QFZT": REVOKED})


async def order_card(writer: RowWriter, conn: AsyncConnection, holder: str, name: str) -> str:
    """A physical card requested for the holder: pending production (`KZT = 0`)."""
    number = await next_in_series(writer, conn, SBK_KXX.c.KH, "H", 8)
    await writer.insert(
        conn,
        AGENCY,
        SBK_KXX,
        {"KH": number, "SHBZHM": holder, "XM": name, "KZT": "0", "FKRQ": "", "YXQ": "", "GZXKXX": ""},
        ["KH"],
    )
    return number


async def activate_card(
    writer: RowWriter, conn: AsyncConnection, number: str, issued: date, valid_to: date
) -> None:
    await writer.update(
        conn,
        AGENCY,
        SBK_KXX,
        {"KH": number},
        {"KZT": "1", "FKRQ": issued.isoformat(), "YXQ": valid_to.isoformat()},
    )


async def link_electronic_cards(
    writer: RowWriter, conn: AsyncConnection, holder: str, card_number: str
) -> None:
    """The holder's e-cards show the physical card now in use (service level STANDARD)."""
    ecards = (
        (
            await conn.execute(
                select(SBK_DZK.c.DZKID).where(SBK_DZK.c.SHBZHM == holder).where(SBK_DZK.c.QFZT != REVOKED)
            )
        )
        .scalars()
        .all()
    )
    for card_id in ecards:
        await writer.update(conn, AGENCY, SBK_DZK, {"DZKID": card_id}, {"KH": card_number})


async def register_electronic_card(
    writer: RowWriter,
    conn: AsyncConnection,
    *,
    holder: str,
    card_number: str | None,
    permit_number: str | None,
    signed_at: datetime,
    method: str,
    reference: str,
) -> str:
    card_id = await next_in_series(writer, conn, SBK_DZK.c.DZKID, "DZK", 9)
    await writer.insert(
        conn,
        AGENCY,
        SBK_DZK,
        {
            "DZKID": card_id,
            "KH": card_number or "",
            "SHBZHM": holder,
            "XKZH": permit_number or "",
            "QFZT": "1",
            "QFSJ": signed_at.isoformat(timespec="seconds"),
            "RZFS": method,
            "RZBH": reference,
        },
        ["DZKID"],
    )
    return card_id
