"""The root query type."""

from __future__ import annotations

from typing import Annotated, TypeVar

import strawberry

from resolvers import permit, query, verification
from resolvers.context import Info
from schema import federation
from schema.common import (
    CallerRole,
    Node,
    PageCursor,
    PageInfo,
    PageSize,
    StatisticsDimension,
    as_graph,
    connection_parts,
    resolver,
)
from schema.inputs import PermitVerificationInput, PersonFilter, PersonLookup
from schema.permit import Employer, PermitVerification, WorkPermit, WorkPermitConnection, WorkPermitEdge
from schema.person import Person
from schema.statistics import StatisticsRow, statistics_row


@strawberry.type(description="What one caller may read and call, under its declared purpose.")
class AccessGrants:
    role: CallerRole = strawberry.field(description="The token's role.")
    purpose: str | None = strawberry.field(
        description="The declared purpose (none for cardholders and reporting)."
    )
    readable: list[str] = strawberry.field(
        description="`Type.field` granted; non-null fields not listed come with their parent."
    )
    mutations: list[str] = strawberry.field(description="The mutations the caller may call.")


@strawberry.type(description="A person with its cursor.")
class PersonEdge:
    cursor: str = strawberry.field(description="The cursor of this person.")
    node: Person = strawberry.field(description="The person.")


@strawberry.type(description="A page of persons, in id order.")
class PersonConnection:
    edges: list[PersonEdge] = strawberry.field(description="The persons of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")
    total_count: int = strawberry.field(description="How many persons match in all.")


_Value = TypeVar("_Value")


def _unset_to_none(value: _Value) -> _Value | None:
    return None if value is strawberry.UNSET else value


@strawberry.type(description="What can be read from the hub.")
class Query:
    @resolver(description="Any object by its global id.")
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id, as the graph gave it.")],
    ) -> Node | None:
        return as_graph(Node, await query.node(info, id))

    @resolver(description="A person, by any identifier an agency knows them by.")
    async def person(
        self,
        info: Info,
        lookup: Annotated[
            PersonLookup,
            strawberry.argument(description="Exactly one identifier any agency knows the person by."),
        ],
    ) -> Person | None:
        return as_graph(Person, await query.person(info, lookup.to_lookup()))

    @resolver(description="Persons in id order, filtered; `first` defaults to 20, at most 100.")
    async def persons(
        self,
        info: Info,
        filter: Annotated[
            PersonFilter | None,
            strawberry.argument(description="Only the persons every given criterion matches; none: all."),
        ] = None,
        first: PageSize = None,
        after: PageCursor = None,
    ) -> PersonConnection:
        criteria = (filter or PersonFilter()).to_criteria()
        page, kind = await query.persons(info, criteria, first, after)
        pairs, page_info = connection_parts(info, page, kind)
        return PersonConnection(
            edges=[PersonEdge(cursor=c, node=n) for c, n in pairs],
            page_info=page_info,
            total_count=page.total or 0,
        )

    @resolver(description="A person's current permit period, by the permit number.")
    async def work_permit(
        self,
        info: Info,
        number: Annotated[
            str, strawberry.argument(description="The permit number: one person, one number, for life.")
        ],
    ) -> WorkPermit | None:
        return as_graph(WorkPermit, await permit.by_number(info, number))

    @resolver(description="An employer by its Unified Social Credit Code.")
    async def employer(
        self,
        info: Info,
        credit_code: Annotated[
            str, strawberry.argument(description="The Unified Social Credit Code (GB 32100, 18 characters).")
        ],
    ) -> Employer | None:
        return as_graph(Employer, await permit.employer_by_credit_code(info, credit_code))

    @resolver(description="Whether a work permit is valid today, checked by number or e-card.")
    async def verify_work_permit(
        self,
        info: Info,
        input: Annotated[
            PermitVerificationInput,
            strawberry.argument(
                description="Exactly one of the permit's number, its QR code or the e-card carrying it."
            ),
        ],
    ) -> PermitVerification:
        return as_graph(
            PermitVerification,
            await verification.verify(
                info,
                _unset_to_none(input.work_permit_number),
                _unset_to_none(input.qr_code),
                _unset_to_none(input.electronic_card_id),
            ),
        )

    @resolver(description="The cardholder's own person, as the token names it; null for other callers.")
    async def me(self, info: Info) -> Person | None:
        return as_graph(Person, await query.me(info))

    @resolver(description="What the caller's token and declared purpose may read and call.")
    def access_grants(self, info: Info) -> AccessGrants:
        grant = query.access_grants(info)
        caller = info.context.caller
        return AccessGrants(
            role=caller.role,
            purpose=caller.purpose,
            readable=grant.names(),
            mutations=sorted(grant.mutations),
        )

    @resolver(description="Persons counted by any combination of dimensions (GROUP BY in SQL).")
    async def workforce_statistics(
        self,
        info: Info,
        group_by: Annotated[
            list[StatisticsDimension],
            strawberry.argument(
                description="The dimensions to count by: one row per combination of their values."
            ),
        ],
        filter: Annotated[
            PersonFilter | None,
            strawberry.argument(description="Only the persons every given criterion matches; none: all."),
        ] = None,
    ) -> list[StatisticsRow]:
        criteria = (filter or PersonFilter()).to_criteria()
        return [statistics_row(c) for c in await query.workforce_statistics(info, group_by, criteria)]

    @resolver(
        description="Current valid permits ending within the given days (1-365), by end date then number."
    )
    async def expiring_work_permits(
        self,
        info: Info,
        within_days: Annotated[
            int, strawberry.argument(description="How many days ahead, from today, 1 to 365.")
        ],
        first: PageSize = None,
        after: PageCursor = None,
    ) -> WorkPermitConnection:
        page, kind = await query.expiring_work_permits(info, within_days, first, after)
        pairs, page_info = connection_parts(info, page, kind)
        return WorkPermitConnection(
            edges=[WorkPermitEdge(cursor=c, node=n) for c, n in pairs],
            page_info=page_info,
            total_count=page.total or 0,
        )

    # Apollo Federation v2 (schema/federation.py): how a gateway composes the hub and fetches its entities.
    federation_entities: list[federation.Entity | None] = strawberry.field(
        name="_entities",
        resolver=federation.entities,
        description="Entities by their `@key`, for a federation gateway; each read as its own root field.",
    )
    federation_service: federation.FederationService = strawberry.field(
        name="_service",
        resolver=federation.service,
        description="This subgraph's SDL, for a federation gateway; granted with introspection.",
    )
