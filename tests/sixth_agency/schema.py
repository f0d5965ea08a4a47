"""The tax bureau's part of the graph: `Person.taxReturns`."""

from __future__ import annotations

import strawberry

from identity.store import PersonCore
from resolvers.context import Info
from schema.agencies import GraphPart
from schema.common import as_graph, resolver
from tests.sixth_agency import adapter, resolvers

TaxReturnStatus = adapter.TaxReturnStatus
strawberry.enum(TaxReturnStatus, description="Where an annual return stands.")


@strawberry.type(description="One annual tax return.")
class TaxReturn:
    year: int = strawberry.field(description="The tax year.")
    taxable_income: int = strawberry.field(description="The taxable income, in yuan.")
    status: TaxReturnStatus = strawberry.field(description="Filed, assessed or overdue.")


@strawberry.type(name="PersonTaxFields", description="The tax bureau's fields of a person.")
class PersonTaxReturns:
    @resolver(description="The person's annual returns, newest tax year first.")
    async def tax_returns(root: PersonCore, info: Info) -> list[TaxReturn] | None:
        return as_graph(list[TaxReturn], await resolvers.tax_returns(info, root))


TAX_PART = GraphPart(adapter.SPEC, PersonTaxReturns, (TaxReturn,))
