"""The person: one identity joined across the five agencies."""

from __future__ import annotations

from datetime import date, datetime

import strawberry
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet

from identity.store import PersonCore
from resolvers import person
from resolvers.context import Info
from resolvers.verification import full_name
from schema.common import (
    Agency,
    CallerRole,
    LinkConfidence,
    Node,
    PageCursor,
    PageInfo,
    PageSize,
    Sex,
    as_graph,
    connection_parts,
    resolver,
)
from schema.notifications import NotificationConnection, NotificationEdge


@strawberry.type(description="A person's name: surname and given names told apart where a source does.")
class PersonName:
    surname: str = strawberry.field(description="The surname.")
    given_names: str | None = strawberry.field(description="The given names; null for single-name persons.")
    full: str = strawberry.field(description="`Surname, Given Names`, or the surname alone.")


@strawberry.type(description="A passport the person holds or held.")
class Passport:
    number: str = strawberry.field(description="The passport number.")
    nationality: str = strawberry.field(description="The issuing country (ISO 3166-1 alpha-3).")
    valid_from: date | None = strawberry.field(description="The first valid day.")
    valid_to: date | None = strawberry.field(description="The last valid day.")
    current: bool = strawberry.field(description="Whether this is the passport the person holds now.")


@strawberry.type(description="An agency record linked to the person, and how sure the link is.")
class IdentityLink:
    agency: Agency = strawberry.field(description="The agency holding the record.")
    record_key: str = strawberry.field(description="The record's key in that agency's system.")
    confidence: LinkConfidence = strawberry.field(
        description="CONFIRMED (merged) or WEAK (shown, never merged)."
    )


@strawberry.type(description="A role's look at the person's data, as the person may read it.")
class AccessEvent:
    at: datetime = strawberry.field(description="When the data was read.")
    role: CallerRole = strawberry.field(description="The role of the caller (never the individual).")
    purpose: str = strawberry.field(description="The declared purpose.")
    fields: list[str] = strawberry.field(description="The field paths returned (never the values).")


@strawberry.type(description="An access event with its cursor.")
class AccessEventEdge:
    cursor: str = strawberry.field(description="The cursor of this event.")
    node: AccessEvent = strawberry.field(description="The access event.")


@strawberry.type(description="A page of access events, newest first.")
class AccessEventConnection:
    edges: list[AccessEventEdge] = strawberry.field(description="The events of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")


@strawberry.type(
    description="A foreigner working in China, joined from every agency that knows them.",
    directives=[Key(fields=FieldSet("id"))],  # a federation entity (schema/federation.py)
)
class Person(Node):
    sex: Sex = strawberry.field(description="Sex, as the work-permit system records it.")
    birth_date: date = strawberry.field(description="Date of birth.")
    nationality: str = strawberry.field(description="Nationality (ISO 3166-1 alpha-3).")

    @resolver(description="The person's opaque global id; it never changes.")
    def id(root: PersonCore, info: Info) -> strawberry.ID:
        return strawberry.ID(info.context.ids.encode("Person", root.id))

    @resolver(description="The name: from exit-entry where known, else from the work-permit system.")
    def name(root: PersonCore) -> PersonName:
        return PersonName(
            surname=root.surname, given_names=root.given_names, full=full_name(root.surname, root.given_names)
        )

    @resolver(description="Every passport known, the current one first.")
    async def passports(root: PersonCore, info: Info) -> list[Passport]:
        return as_graph(list[Passport], await person.passports(info, root))

    @resolver(description="The agency records linked to this person.")
    async def identity_links(root: PersonCore, info: Info) -> list[IdentityLink] | None:
        return as_graph(list[IdentityLink], (await person.links(info, root)).links)

    @resolver(description="Notifications for the person, newest first.")
    async def notifications(
        root: PersonCore,
        info: Info,
        first: PageSize = None,
        after: PageCursor = None,
    ) -> NotificationConnection | None:
        page, kind = await person.notifications(info, root, first, after)
        pairs, page_info = connection_parts(info, page, kind)
        return NotificationConnection(
            edges=[NotificationEdge(cursor=c, node=n) for c, n in pairs], page_info=page_info
        )

    @resolver(description="Which roles read the person's data, when, why and which fields.")
    async def access_log(
        root: PersonCore,
        info: Info,
        first: PageSize = None,
        after: PageCursor = None,
    ) -> AccessEventConnection | None:
        page, kind = await person.access_log(info, root, first, after)
        pairs, page_info = connection_parts(info, page, kind)
        return AccessEventConnection(
            edges=[AccessEventEdge(cursor=c, node=n) for c, n in pairs], page_info=page_info
        )

    @classmethod
    def is_type_of(cls, obj: object, _info: object) -> bool:
        return isinstance(obj, PersonCore)
