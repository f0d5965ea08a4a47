"""The social-security-card service as a plug-in: its reads the graph is built on."""

from __future__ import annotations

from adapters.card_service import ELECTRONIC_CARD_LINK, CardService
from adapters.relationships import KeyedRead, PersonRelationship
from adapters.spec import AgencySpec

SOCIAL_SECURITY_CARDS = PersonRelationship(
    "social_security_cards", CardService, lambda s, _today: s.cards_by_person
)
ELECTRONIC_CARDS = PersonRelationship(
    "electronic_cards", CardService, lambda s, _today: s.electronic_cards_by_person
)
ELECTRONIC_CARD_BY_ID = KeyedRead(
    "electronic_card_by_id", CardService, lambda s, _today: s.electronic_cards_by_id, ELECTRONIC_CARD_LINK
)

SPEC = AgencySpec(
    name="CARD_SERVICE",
    description="The social-security-card service: physical cards and electronic cards.",
    source=CardService,
    relationships=(SOCIAL_SECURITY_CARDS, ELECTRONIC_CARDS, ELECTRONIC_CARD_BY_ID),
)
