"""The BEIJING PASS adapter: benefit payments on a person's cards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select

from adapters.base import Group, GroupIndex, PagedPerGroup, SqlSource, answer_by_key, fetch_all
from adapters.beijing_pass import mapping
from adapters.beijing_pass.tables import BJT_DY, BJT_FF, metadata
from domain.errors import SourceDataInvalid
from domain.evidence import Candidate, Evidence, IdentifierKind
from domain.records import Agency, BenefitPayment, Page

# The record an identity link to a card paid on names (its owner key: KH).
PAID_CARD_LINK = BJT_FF.name


# Built once: each batch binds its card numbers (an expanding IN list) and its page.
PAYMENTS_BY_CARD = PagedPerGroup(
    [BJT_FF, BJT_DY.c.DYMC],
    BJT_FF.c.KH,
    [BJT_FF.c.FFRQ, BJT_FF.c.DYDM, BJT_FF.c.KH],
    source=BJT_FF.join(BJT_DY, BJT_DY.c.DYDM == BJT_FF.c.DYDM, isouter=True),
)


class BeijingPass(SqlSource):
    agency = Agency.BEIJING_PASS
    metadata = metadata

    async def payments_by_person(
        self, groups: Sequence[Group], first: int, after: tuple[Any, ...] | None
    ) -> list[Page[BenefitPayment | SourceDataInvalid]]:
        """A page of the payments on each person's cards, newest first."""
        index = GroupIndex.of(groups)
        async with self.connect() as conn:
            rows = await PAYMENTS_BY_CARD.rows(conn, index, first, after)
        return PAYMENTS_BY_CARD.pages(
            index,
            first,
            rows,
            lambda r: self.map_one(mapping.payment_key(r.KH, r.DYDM, r.FFRQ), r, mapping.payment),
            lambda r: (r.FFRQ, r.DYDM, r.KH),
        )

    async def payments_by_key(self, keys: Sequence[str]) -> list[BenefitPayment | SourceDataInvalid | None]:
        """Payments by their keys (BJT_FF's natural key, `mapping.payment_key`); None where no
        row has the key (a key no payment has, or a payment paid since on another day)."""
        wanted = [parts for parts in map(mapping.key_parts, keys) if parts is not None]
        if not wanted:
            return [None] * len(keys)
        statement = (
            select(BJT_FF, BJT_DY.c.DYMC)
            .select_from(BJT_FF.join(BJT_DY, BJT_DY.c.DYDM == BJT_FF.c.DYDM, isouter=True))
            .where(
                or_(
                    *(
                        and_(BJT_FF.c.KH == kh, BJT_FF.c.DYDM == dydm, BJT_FF.c.FFRQ == ffrq)
                        for kh, dydm, ffrq in wanted
                    )
                )
            )
        )
        async with self.connect() as conn:
            rows = await fetch_all(conn, statement)
        pairs = []
        for row in rows:
            key = mapping.payment_key(row.KH, row.DYDM, row.FFRQ)
            pairs.append((key, self.map_one(key, row, mapping.payment)))
        return answer_by_key(keys, pairs)

    async def evidence(self) -> Evidence:
        """Payments by the card number they were paid on."""
        async with self.connect() as conn:
            rows = await fetch_all(conn, select(BJT_FF.c.KH).distinct().order_by(BJT_FF.c.KH))
        numbers = [r.KH.strip() for r in rows]
        return Evidence(
            tuple(
                Candidate(PAID_CARD_LINK, number, number, keys=((IdentifierKind.CARD_NUMBER, number),))
                for number in numbers
            )
        )
