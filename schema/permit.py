"""The work-permit system's part of the graph: permits, their steps, employers, verification."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet

from domain.records import Employer as EmployerRecord
from domain.records import WorkPermit as WorkPermitRecord
from identity.store import PersonCore
from resolvers import permit
from resolvers.context import Info
from schema.common import (
    Node,
    PageCursor,
    PageInfo,
    PageSize,
    PermitEventKind,
    PermitEventOutcome,
    PermitProcedure,
    PermitVerificationFailure,
    TalentCategory,
    VerificationChannel,
    WorkPermitStatus,
    as_graph,
    connection_parts,
    resolver,
)

if TYPE_CHECKING:
    from schema.person import Person


@strawberry.type(description="A step of a permit in the work-permit system's business records.")
class PermitEvent:
    kind: PermitEventKind = strawberry.field(description="What was applied for or done.")
    applied_on: date = strawberry.field(description="When it was applied for.")
    decided_on: date | None = strawberry.field(description="When it was decided; null while pending.")
    outcome: PermitEventOutcome = strawberry.field(description="Pending, approved or rejected.")
    remark: str | None = strawberry.field(
        description="The reason of a cancellation or rejection, or what a change changed."
    )


@strawberry.type(
    description="An employer, known by its Unified Social Credit Code.",
    directives=[Key(fields=FieldSet("creditCode"))],  # a federation entity (schema/federation.py)
)
class Employer(Node):
    credit_code: str = strawberry.field(description="The Unified Social Credit Code (GB 32100).")
    name: str = strawberry.field(description="The employer's name.")

    @resolver(description="The employer's opaque global id.")
    def id(root: EmployerRecord, info: Info) -> strawberry.ID:
        return strawberry.ID(info.context.ids.encode("Employer", root.credit_code))

    @resolver(description="Every permit period naming this employer, newest first.")
    async def work_permits(
        root: EmployerRecord,
        info: Info,
        first: PageSize = None,
        after: PageCursor = None,
    ) -> WorkPermitConnection | None:
        page, kind = await permit.employer_permits(info, root, first, after)
        pairs, page_info = connection_parts(info, page, kind)
        return WorkPermitConnection(
            edges=[WorkPermitEdge(cursor=c, node=n) for c, n in pairs],
            page_info=page_info,
            total_count=page.total or 0,
        )

    @classmethod
    def is_type_of(cls, obj: object, _info: object) -> bool:
        return isinstance(obj, EmployerRecord)


@strawberry.type(
    description="One period of a foreigner's work permit; successive periods share the number.",
    # A federation entity (schema/federation.py): by number, the current period.
    directives=[Key(fields=FieldSet("number"))],
)
class WorkPermit(Node):
    number: str = strawberry.field(description="The permit number: one person, one number, for life.")
    status: WorkPermitStatus = strawberry.field(description="Where this period stands today.")
    category: TalentCategory = strawberry.field(description="The talent category.")
    valid_from: date | None = strawberry.field(description="The first valid day; null before approval.")
    valid_to: date | None = strawberry.field(description="The last valid day; null before approval.")
    position: str | None = strawberry.field(description="The position held.")
    work_district: str | None = strawberry.field(description="The work district (GB/T 2260 code).")
    procedure: PermitProcedure = strawberry.field(description="Legacy physical card or integrated procedure.")
    notification_letter_number: str | None = strawberry.field(
        description="The Notification Letter issued for this period."
    )

    @resolver(description="The permit period's opaque global id.")
    def id(root: WorkPermitRecord, info: Info) -> strawberry.ID:
        return strawberry.ID(info.context.ids.encode("WorkPermit", root.key))

    @resolver(description="The employer named on the permit.")
    def employer(root: WorkPermitRecord, info: Info) -> Employer | None:
        return as_graph(Employer, permit.employer(info, root))

    @resolver(description="The person holding the permit.")
    async def holder(
        root: WorkPermitRecord, info: Info
    ) -> Annotated[Person, strawberry.lazy("schema.person")] | None:
        from schema.person import Person  # schema.person imports this module: at call time

        return as_graph(Person, await permit.holder(info, root))

    @resolver(
        description=(
            "The permit's QR code: a compact JWS (EdDSA) naming the permit and its holder, signed when"
            " read and valid for 24 hours, verifiable offline with the keys at /.well-known/jwks.json"
            " and online by verifyWorkPermit; null unless the permit is valid."
        )
    )
    async def qr_code(root: WorkPermitRecord, info: Info) -> str | None:
        return await permit.qr_code(info, root)

    @resolver(description="The steps of this period, oldest first.")
    async def history(root: WorkPermitRecord, info: Info) -> list[PermitEvent] | None:
        return as_graph(list[PermitEvent], await permit.history(info, root))

    @classmethod
    def is_type_of(cls, obj: object, _info: object) -> bool:
        return isinstance(obj, WorkPermitRecord)


@strawberry.type(description="A permit period with its cursor.")
class WorkPermitEdge:
    cursor: str = strawberry.field(description="The cursor of this permit period.")
    node: WorkPermit = strawberry.field(description="The permit period.")


@strawberry.type(description="A page of permit periods.")
class WorkPermitConnection:
    edges: list[WorkPermitEdge] = strawberry.field(description="The permit periods of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")
    total_count: int = strawberry.field(description="How many permit periods there are in all.")


@strawberry.type(description="The outcome of verifying a work permit.")
class PermitVerification:
    valid: bool = strawberry.field(description="Whether the permit is valid today.")
    failure: PermitVerificationFailure | None = strawberry.field(description="Why it is not, if it is not.")
    permit_number: str | None = strawberry.field(description="The verified permit's number.")
    holder_name: str | None = strawberry.field(description="The holder's name, surname first.")
    employer_name: str | None = strawberry.field(description="The employer named on the permit.")
    valid_to: date | None = strawberry.field(description="The permit's last valid day.")
    channel: VerificationChannel = strawberry.field(description="How the permit was verified.")


@strawberry.type(name="PersonWorkPermitFields", description="The work-permit system's fields of a person.")
class PersonWorkPermits:
    @resolver(description="The current permit period: the latest not cancelled or rejected, else the latest.")
    async def work_permit(root: PersonCore, info: Info) -> WorkPermit | None:
        return as_graph(WorkPermit, await permit.person_work_permit(info, root))

    @resolver(description="Every permit period, newest first.")
    async def work_permits(root: PersonCore, info: Info) -> list[WorkPermit] | None:
        return as_graph(list[WorkPermit], await permit.person_work_permits(info, root))
