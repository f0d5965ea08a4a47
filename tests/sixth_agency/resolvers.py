"""Resolvers of the tax bureau's fields of a person."""

from __future__ import annotations

from identity.store import PersonCore
from resolvers.context import Info
from resolvers.fetch import person_related
from tests.sixth_agency.adapter import TAX_RETURNS, TaxReturn


async def tax_returns(info: Info, person: PersonCore) -> list[TaxReturn] | None:
    returns: list[TaxReturn] | None = await person_related(info, TAX_RETURNS, person.id)
    return returns
