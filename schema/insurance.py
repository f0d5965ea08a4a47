"""The social insurance agency's part of the graph."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import strawberry

from identity.store import PersonCore
from resolvers import insurance
from resolvers.context import Info
from schema.common import InsuranceStatus, InsuranceType, as_graph, resolver

if TYPE_CHECKING:
    from schema.permit import Employer


@strawberry.type(description="The person's participation in one insurance type.")
class InsuranceParticipation:
    type: InsuranceType = strawberry.field(description="The insurance type.")
    status: InsuranceStatus = strawberry.field(description="Whether contributions are being paid.")
    started_on: date = strawberry.field(description="When the participation began.")
    ended_on: date | None = strawberry.field(description="When it ended; null while open.")
    employer: Annotated[Employer, strawberry.lazy("schema.permit")] | None = strawberry.field(
        description="The employer paying in."
    )


@strawberry.type(
    name="PersonInsuranceFields", description="The social insurance agency's fields of a person."
)
class PersonInsurance:
    @resolver(description="The social security number given at insurance enrollment.")
    async def social_security_number(root: PersonCore, info: Info) -> str | None:
        return await insurance.social_security_number(info, root)

    @resolver(description="Valid insurance participations, newest first.")
    async def insurance_participations(root: PersonCore, info: Info) -> list[InsuranceParticipation] | None:
        return as_graph(list[InsuranceParticipation], await insurance.insurance_participations(info, root))
