"""Card service codes and formats -> the graph's values, in one place."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Row

from adapters.base import (
    UnmappableValue,
    blank_to_none,
    code,
    parse_compact_date,
    parse_separated_date,
    parse_timestamp,
    required,
)
from domain.records import (
    CardStatus,
    ElectronicCard,
    ElectronicCardStatus,
    SocialSecurityCard,
    VerificationMethod,
    WorkPermitStatus,
)

# A card files the permit it carries (`GZXKXX.ZT`) in the work-permit system's status codes.
LOADED_PERMIT_STATUS = {WorkPermitStatus.VALID: "30", WorkPermitStatus.CANCELLED: "40"}
CARD_STATUS = {
    "0": CardStatus.PENDING_PRODUCTION,
    "1": CardStatus.IN_USE,
    "2": CardStatus.REPORTED_LOST,
    "3": CardStatus.CANCELLED,
}
# DOMAIN.md: the current card is in use, then pending, then lost, then cancelled.
CARD_STATUS_PRECEDENCE = ("1", "0", "2", "3")
ELECTRONIC_STATUS = {
    "0": ElectronicCardStatus.UNSIGNED,
    "1": ElectronicCardStatus.SIGNED,
    "2": ElectronicCardStatus.REVOKED,
}
# DOMAIN.md: signed, then unsigned, then revoked.
ELECTRONIC_STATUS_PRECEDENCE = ("1", "0", "2")
METHOD = {
    "FACE": VerificationMethod.FACE,
    "BANK": VerificationMethod.BANK,
    "COUNTER": VerificationMethod.COUNTER,
}


@dataclass(frozen=True, slots=True)
class LoadedPermit:
    """The work-permit information loaded onto a card (`GZXKXX`)."""

    number: str
    status_code: str
    valid_to: date | None
    loaded_at: datetime | None


def loaded_permit(blob: str | None) -> LoadedPermit | None:
    text = blank_to_none(blob)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise UnmappableValue("GZXKXX", "is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("XKZH"), str) or not data["XKZH"].strip():
        raise UnmappableValue("GZXKXX", "has no permit number XKZH")
    return LoadedPermit(
        number=data["XKZH"].strip(),
        status_code=str(data.get("ZT", "")),
        valid_to=parse_compact_date(data.get("YXQZ"), "GZXKXX.YXQZ"),
        loaded_at=parse_timestamp(data.get("JZSJ"), "GZXKXX.JZSJ"),
    )


def card(row: Row[Any]) -> SocialSecurityCard:
    loaded = loaded_permit(row.GZXKXX)
    number = required(blank_to_none(row.KH), "KH")
    return SocialSecurityCard(
        key=number,
        owner=row.SHBZHM.strip(),
        number=number,
        status=code(CARD_STATUS, row.KZT, "KZT"),
        issued_on=parse_separated_date(row.FKRQ, "FKRQ", "-"),
        valid_to=parse_separated_date(row.YXQ, "YXQ", "-"),
        holder_name=(row.XM or "").strip(),
        work_permit_number=loaded.number if loaded else None,
        work_permit_loaded_at=loaded.loaded_at if loaded else None,
    )


def electronic_card(row: Row[Any]) -> ElectronicCard:
    method = blank_to_none(row.RZFS)
    return ElectronicCard(
        key=row.DZKID.strip(),
        owner=(row.SHBZHM or "").strip() or row.XKZH.strip(),  # the permit number until enrollment
        status=code(ELECTRONIC_STATUS, row.QFZT, "QFZT"),
        signed_at=parse_timestamp(row.QFSJ, "QFSJ"),
        verification_method=code(METHOD, method, "RZFS") if method else None,
        verification_reference=blank_to_none(row.RZBH),
        card_number=blank_to_none(row.KH),
        work_permit_number=blank_to_none(row.XKZH),
    )
