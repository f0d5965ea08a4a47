"""Resolvers of a person's fields: each follows one declared relationship."""

from __future__ import annotations

from typing import Any

from domain.records import CallerRole, Page
from identity.store import Passport, PersonCore, PersonLinks
from opaque.cursors import page_size
from resolvers import relationships as rel
from resolvers.context import Info
from resolvers.fetch import deliver, person_current, person_page, person_related


async def passports(info: Info, person: PersonCore) -> list[Passport]:
    return await info.context.loaders.passports_by_person.load(person.id)


async def links(info: Info, person: PersonCore) -> PersonLinks:
    return await info.context.loaders.links_by_person.load(person.id)


async def work_permit(info: Info, person: PersonCore) -> Any:
    return await person_current(info, rel.CURRENT_WORK_PERMIT, person.id)


async def work_permits(info: Info, person: PersonCore) -> Any:
    return await person_related(info, rel.WORK_PERMITS, person.id)


async def social_security_number(info: Info, person: PersonCore) -> str | None:
    insured = await person_related(info, rel.INSURED_PERSON, person.id)
    return insured.social_security_number if insured is not None else None


async def social_security_card(info: Info, person: PersonCore) -> Any:
    return await person_current(info, rel.SOCIAL_SECURITY_CARDS, person.id)


async def electronic_card(info: Info, person: PersonCore) -> Any:
    return await person_current(info, rel.ELECTRONIC_CARDS, person.id)


async def insurance_participations(info: Info, person: PersonCore) -> Any:
    return await person_related(info, rel.INSURANCE_PARTICIPATIONS, person.id)


async def visas(info: Info, person: PersonCore) -> Any:
    return await person_related(info, rel.VISAS, person.id)


async def residence_permit(info: Info, person: PersonCore) -> Any:
    return await person_current(info, rel.RESIDENCE_PERMITS, person.id)


async def residence_permits(info: Info, person: PersonCore) -> Any:
    return await person_related(info, rel.RESIDENCE_PERMITS, person.id)


async def entries(
    info: Info, person: PersonCore, first: int | None, after: str | None
) -> tuple[Page[Any], str]:
    return await person_page(info, rel.ENTRIES, person.id, first, after)


async def benefit_payments(
    info: Info, person: PersonCore, first: int | None, after: str | None
) -> tuple[Page[Any], str]:
    return await person_page(info, rel.BENEFIT_PAYMENTS, person.id, first, after)


NOTIFICATIONS = "notifications"


async def notifications(
    info: Info, person: PersonCore, first: int | None, after: str | None
) -> tuple[Page[Any], str]:
    size = page_size(first)
    position = info.context.cursors.decode(NOTIFICATIONS, after)
    key = (person.id, size, int(position[0]) if position else None)
    return deliver(info, await info.context.loaders.notifications_by_person.load(key)), NOTIFICATIONS


ACCESS_LOG = "access_log"


async def access_log(
    info: Info, person: PersonCore, first: int | None, after: str | None
) -> tuple[Page[Any], str]:
    """Who (by role) read the person's data, when, why and which fields. Reads restricted for
    an investigation show from their date on; the data-protection officer sees them at once."""
    size = page_size(first)
    position = info.context.cursors.decode(ACCESS_LOG, after)
    caller = info.context.caller
    visible_on = None if caller.role is CallerRole.DATA_PROTECTION_OFFICER else info.context.today
    key = (person.id, size, (int(position[0]) if position else None, visible_on))
    return await info.context.loaders.access_log.load(key), ACCESS_LOG
