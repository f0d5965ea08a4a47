"""The social-security-card service adapter: physical cards and electronic cards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, func, select

from adapters.base import KEYS, Group, GroupIndex, RecordList, SqlSource, answer_by_key, by_group, fetch_all
from adapters.card_service import mapping
from adapters.card_service.tables import SBK_DZK, SBK_KXX, electronic_cards_filed_under, metadata
from domain.errors import SourceDataInvalid
from domain.evidence import Candidate, Evidence, IdentifierKind
from domain.records import Agency, ElectronicCard, SocialSecurityCard

# The records identity links to a card and an e-card name (owner key: SHBZHM, or an e-card's
# permit number before enrollment).
CARD_LINK = SBK_KXX.name
ELECTRONIC_CARD_LINK = SBK_DZK.name


@dataclass(frozen=True, slots=True)
class CardKeys:
    """What identity linking reads of a card or e-card."""

    record_type: str
    key: str
    social_security_number: str
    work_permit_number: str | None

    @property
    def owner(self) -> str:
        """The key the person's records are filed under: the social security number, or for an
        e-card registered before enrollment (`SHBZHM` empty) the permit number it carries."""
        return self.social_security_number or self.work_permit_number or ""


# An e-card's owner key: its social security number, else (not enrolled yet) its permit number.
ELECTRONIC_CARD_OWNER = func.coalesce(func.nullif(func.trim(SBK_DZK.c.SHBZHM), ""), SBK_DZK.c.XKZH)


def _precedence(column: ColumnElement[str], order: tuple[str, ...]) -> ColumnElement[int]:
    return case({value: rank for rank, value in enumerate(order)}, value=column, else_=len(order))


# The reads' statements, built once: each batch binds its keys (`KEYS`).
CARDS_BY_OWNER = (
    select(SBK_KXX)
    .where(SBK_KXX.c.SHBZHM.in_(KEYS))
    .order_by(_precedence(SBK_KXX.c.KZT, mapping.CARD_STATUS_PRECEDENCE), SBK_KXX.c.FKRQ.desc())
)
ELECTRONIC_CARDS_BY_OWNER = (
    select(SBK_DZK, ELECTRONIC_CARD_OWNER.label("owner"))
    .where(electronic_cards_filed_under(KEYS))
    .order_by(_precedence(SBK_DZK.c.QFZT, mapping.ELECTRONIC_STATUS_PRECEDENCE), SBK_DZK.c.QFSJ.desc())
)
CARDS_BY_NUMBER = select(SBK_KXX).where(SBK_KXX.c.KH.in_(KEYS))
ELECTRONIC_CARDS_BY_ID = select(SBK_DZK).where(SBK_DZK.c.DZKID.in_(KEYS))


class CardService(SqlSource):
    agency = Agency.CARD_SERVICE
    metadata = metadata

    async def cards_by_person(self, groups: Sequence[Group]) -> list[RecordList[SocialSecurityCard]]:
        """Each person's cards, the current one first: in use, pending, lost, cancelled; newest first."""
        index = GroupIndex.of(groups)
        async with self.connect() as conn:
            rows = await fetch_all(conn, CARDS_BY_OWNER, {"keys": index.keys})
        return by_group(index.count, ((index(r.SHBZHM), self.map_one(r.KH, r, mapping.card)) for r in rows))

    async def electronic_cards_by_person(self, groups: Sequence[Group]) -> list[RecordList[ElectronicCard]]:
        """Each person's e-cards, the current one first (signed, unsigned, revoked; newest signing
        first), filed under the social security number, or under the permit number while the
        person is not enrolled (`SHBZHM` empty: DOMAIN.md, the notice's order)."""
        index = GroupIndex.of(groups)
        async with self.connect() as conn:
            rows = await fetch_all(conn, ELECTRONIC_CARDS_BY_OWNER, {"keys": index.keys})
        return by_group(
            index.count, ((index(r.owner), self.map_one(r.DZKID, r, mapping.electronic_card)) for r in rows)
        )

    async def cards_by_number(
        self, numbers: Sequence[str]
    ) -> list[SocialSecurityCard | SourceDataInvalid | None]:
        async with self.connect() as conn:
            rows = await fetch_all(conn, CARDS_BY_NUMBER, {"keys": list(numbers)})
        return answer_by_key(numbers, ((r.KH, self.map_one(r.KH, r, mapping.card)) for r in rows))

    async def electronic_cards_by_id(
        self, ids: Sequence[str]
    ) -> list[ElectronicCard | SourceDataInvalid | None]:
        async with self.connect() as conn:
            rows = await fetch_all(conn, ELECTRONIC_CARDS_BY_ID, {"keys": list(ids)})
        return answer_by_key(
            ids, ((r.DZKID, self.map_one(r.DZKID, r, mapping.electronic_card)) for r in rows)
        )

    async def evidence(self) -> Evidence:
        """Cards and e-cards by the social security number they are filed under, else the
        permit number an e-card carries; a card's number then names its holder to BEIJING PASS."""
        return Evidence(
            tuple(
                Candidate(
                    card.record_type,
                    card.key,
                    card.owner,
                    keys=tuple(
                        (kind, value)
                        for kind, value in (
                            (IdentifierKind.SOCIAL_SECURITY_NUMBER, card.social_security_number),
                            (IdentifierKind.WORK_PERMIT_NUMBER, card.work_permit_number),
                        )
                        if value
                    ),
                    provides=((IdentifierKind.CARD_NUMBER, card.key),)
                    if card.record_type == CARD_LINK
                    else (),
                )
                for card in await self._card_keys()
            )
        )

    async def _card_keys(self) -> list[CardKeys]:
        """Every card and e-card with the numbers that link it to a person."""
        async with self.connect() as conn:
            cards = await fetch_all(conn, select(SBK_KXX.c.KH, SBK_KXX.c.SHBZHM).order_by(SBK_KXX.c.KH))
            ecards = await fetch_all(
                conn, select(SBK_DZK.c.DZKID, SBK_DZK.c.SHBZHM, SBK_DZK.c.XKZH).order_by(SBK_DZK.c.DZKID)
            )
        return [CardKeys("SBK_KXX", r.KH.strip(), r.SHBZHM.strip(), None) for r in cards] + [
            CardKeys("SBK_DZK", r.DZKID.strip(), (r.SHBZHM or "").strip(), (r.XKZH or "").strip() or None)
            for r in ecards
        ]

    async def signed_electronic_card_ids(self) -> list[str]:
        """The id of every signed e-card (`QFZT = 1`): who news reaches."""
        async with self.connect() as conn:
            rows = await fetch_all(conn, select(SBK_DZK.c.DZKID).where(SBK_DZK.c.QFZT == "1"))
        return [r.DZKID.strip() for r in rows]
