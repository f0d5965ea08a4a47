"""BEIJING PASS as a plug-in: its reads the graph is built on."""

from __future__ import annotations

from adapters.beijing_pass import PAID_CARD_LINK, BeijingPass
from adapters.relationships import KeyedRead, PagedPersonRelationship
from adapters.spec import AgencySpec

BENEFIT_PAYMENTS = PagedPersonRelationship(
    "benefit_payments",
    BeijingPass,
    lambda s, groups, first, after, _today: s.payments_by_person(groups, first, after),
)
PAYMENT_BY_KEY = KeyedRead("payment_by_key", BeijingPass, lambda s, _today: s.payments_by_key, PAID_CARD_LINK)

SPEC = AgencySpec(
    name="BEIJING_PASS",
    description="BEIJING PASS: the benefits paid on the card.",
    source=BeijingPass,
    relationships=(BENEFIT_PAYMENTS, PAYMENT_BY_KEY),
)
