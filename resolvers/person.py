"""Resolvers of the hub's own fields of a person (who they are, notifications, the access log);
each agency's fields of a person are resolved in that agency's module."""

from __future__ import annotations

from typing import Any

from domain.records import CallerRole, Page
from identity.store import Passport, PersonCore, PersonLinks
from opaque.cursors import page_size
from resolvers.context import Info
from resolvers.fetch import deliver


async def passports(info: Info, person: PersonCore) -> list[Passport]:
    return await info.context.loaders.passports_by_person.load(person.id)


async def links(info: Info, person: PersonCore) -> PersonLinks:
    return await info.context.loaders.links_by_person.load(person.id)


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
