"""The exit-entry administration's part of the graph: visas, entries, residence permits."""

from __future__ import annotations

from datetime import date

import strawberry

from identity.store import PersonCore
from resolvers import residence
from resolvers.context import Info
from schema.common import (
    PageCursor,
    PageInfo,
    PageSize,
    ResidencePermitStatus,
    ResidencePurpose,
    VerificationChannel,
    as_graph,
    connection_parts,
    resolver,
)


@strawberry.type(description="A visa issued to the person.")
class Visa:
    number: str = strawberry.field(description="The visa number (V and 8 digits).")
    type: str = strawberry.field(description="The visa category: Z for work, M, F, X1 and others.")
    issued_on: date = strawberry.field(description="When the visa was issued.")
    valid_to: date | None = strawberry.field(description="The last day the visa may be used.")
    notification_letter_number: str | None = strawberry.field(
        description="The Notification Letter a Z visa was issued against."
    )


@strawberry.type(description="An entry into China.")
class Entry:
    entered_on: date = strawberry.field(description="The day of entry.")
    port: str | None = strawberry.field(description="The port of entry (3-letter code such as PEK).")
    visa_number: str | None = strawberry.field(description="The visa the person entered on.")


@strawberry.type(description="A residence permit issued by the exit-entry administration.")
class ResidencePermit:
    number: str = strawberry.field(description="The residence permit number (E and 8 digits).")
    purpose: ResidencePurpose = strawberry.field(description="What the permit was issued for.")
    issued_on: date = strawberry.field(description="When it was issued.")
    valid_to: date = strawberry.field(description="The last day it is valid.")
    issuing_office: str | None = strawberry.field(description="The office that issued it.")
    status: ResidencePermitStatus = strawberry.field(description="Whether it is in force.")
    verified_by: VerificationChannel | None = strawberry.field(
        description="How the work permit was verified when it was issued."
    )


@strawberry.type(description="An entry with its cursor.")
class EntryEdge:
    cursor: str = strawberry.field(description="The cursor of this entry.")
    node: Entry = strawberry.field(description="The entry.")


@strawberry.type(description="A page of entries, newest first.")
class EntryConnection:
    edges: list[EntryEdge] = strawberry.field(description="The entries of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")


@strawberry.type(
    name="PersonExitEntryFields", description="The exit-entry administration's fields of a person."
)
class PersonExitEntry:
    @resolver(description="Visas issued, newest first.")
    async def visas(root: PersonCore, info: Info) -> list[Visa] | None:
        return as_graph(list[Visa], await residence.visas(info, root))

    @resolver(description="Entries into China, newest first.")
    async def entries(
        root: PersonCore,
        info: Info,
        first: PageSize = None,
        after: PageCursor = None,
    ) -> EntryConnection | None:
        page, kind = await residence.entries(info, root, first, after)
        pairs, page_info = connection_parts(info, page, kind)
        return EntryConnection(edges=[EntryEdge(cursor=c, node=n) for c, n in pairs], page_info=page_info)

    @resolver(description="The current residence permit: in force with the latest end, else the latest.")
    async def residence_permit(root: PersonCore, info: Info) -> ResidencePermit | None:
        return as_graph(ResidencePermit, await residence.residence_permit(info, root))

    @resolver(description="Every residence permit, the current one first.")
    async def residence_permits(root: PersonCore, info: Info) -> list[ResidencePermit] | None:
        return as_graph(list[ResidencePermit], await residence.residence_permits(info, root))
