"""The tax bureau's part of the graph: `Person.taxReturns`."""

from __future__ import annotations

import strawberry

from identity.store import PersonCore
from resolvers.context import Info
from schema.agencies import GraphPart
from tests.sixth_agency import adapter, resolvers

TaxReturnStatus = strawberry.enum(adapter.TaxReturnStatus, description="Where an annual return stands.")


@strawberry.type(description="One annual tax return.")
class TaxReturn:
    year: int = strawberry.field(description="The tax year.")
    taxable_income: int = strawberry.field(description="The taxable income, in yuan.")
    status: TaxReturnStatus = strawberry.field(description="Filed, assessed or overdue.")


@strawberry.type(name="PersonTaxFields", description="The tax bureau's fields of a person.")
class PersonTaxReturns:
    @strawberry.field(description="The person's annual returns, newest tax year first.")
    async def tax_returns(root: PersonCore, info: Info) -> list[TaxReturn] | None:
        return await resolvers.tax_returns(info, root)  # type: ignore[return-value]  # strawberry resolves TaxReturn from the record


TAX_PART = GraphPart(adapter.SPEC, PersonTaxReturns, (TaxReturn,))
