"""Resolvers of the card service's fields of a person."""

from __future__ import annotations

from typing import Any

from adapters.card_service.spec import ELECTRONIC_CARDS, SOCIAL_SECURITY_CARDS
from identity.store import PersonCore
from resolvers.context import Info
from resolvers.fetch import person_current


async def social_security_card(info: Info, person: PersonCore) -> Any:
    return await person_current(info, SOCIAL_SECURITY_CARDS, person.id)


async def electronic_card(info: Info, person: PersonCore) -> Any:
    return await person_current(info, ELECTRONIC_CARDS, person.id)
