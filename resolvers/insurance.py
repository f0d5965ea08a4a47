"""Resolvers of the social insurance agency's fields of a person."""

from __future__ import annotations

from typing import Any

from adapters.social_insurance.spec import INSURANCE_PARTICIPATIONS, INSURED_PERSON
from identity.store import PersonCore
from resolvers.context import Info
from resolvers.fetch import person_related


async def social_security_number(info: Info, person: PersonCore) -> str | None:
    insured = await person_related(info, INSURED_PERSON, person.id)
    return insured.social_security_number if insured is not None else None


async def insurance_participations(info: Info, person: PersonCore) -> Any:
    return await person_related(info, INSURANCE_PARTICIPATIONS, person.id)
