"""Resolvers of the exit-entry administration's fields of a person."""

from __future__ import annotations

from typing import Any

from adapters.exit_entry.spec import ENTRIES, RESIDENCE_PERMITS, VISAS
from domain.records import Page
from identity.store import PersonCore
from resolvers.context import Info
from resolvers.fetch import person_current, person_page, person_related


async def visas(info: Info, person: PersonCore) -> Any:
    return await person_related(info, VISAS, person.id)


async def residence_permit(info: Info, person: PersonCore) -> Any:
    return await person_current(info, RESIDENCE_PERMITS, person.id)


async def residence_permits(info: Info, person: PersonCore) -> Any:
    return await person_related(info, RESIDENCE_PERMITS, person.id)


async def entries(
    info: Info, person: PersonCore, first: int | None, after: str | None
) -> tuple[Page[Any], str]:
    return await person_page(info, ENTRIES, person.id, first, after)
