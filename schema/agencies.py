"""Each agency's part of the graph, and how the parts are composed into one schema.

An agency's part names its spec (adapters/<agency>/spec.py), a strawberry type whose fields
`Person` gets (the agency's fields of a person, resolved in resolvers/<agency>.py) and the
types only its part reaches by `node(id:)`. `build_schema` composes the registered parts, as
Saleor composes its per-domain schema: `Person` has the hub's own fields first (who the
person is, identity links), then each agency's fields in the registry's order, then the
hub's notifications and access log; `Agency` has one value per registered agency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import strawberry
from graphql import GraphQLEnumType, GraphQLEnumValue, GraphQLField, GraphQLObjectType
from strawberry.types.base import get_object_definition

from adapters.beijing_pass.spec import SPEC as BEIJING_PASS
from adapters.card_service.spec import SPEC as CARD_SERVICE
from adapters.exit_entry.spec import SPEC as EXIT_ENTRY
from adapters.social_insurance.spec import SPEC as SOCIAL_INSURANCE
from adapters.spec import AgencySpec
from adapters.work_permit.spec import SPEC as WORK_PERMIT
from schema.benefits import BenefitPayment, PersonBenefits
from schema.card import ElectronicCard, PersonCards
from schema.insurance import PersonInsurance
from schema.permit import Employer, PersonWorkPermits, WorkPermit
from schema.residence import PersonExitEntry

# The hub's own fields of a person that come after every agency's.
PERSON_CLOSING_FIELDS = ("notifications", "accessLog")


@dataclass(frozen=True)
class GraphPart:
    agency: AgencySpec
    person_fields: type | None = None
    types: tuple[type, ...] = ()


DEFAULT_PARTS: tuple[GraphPart, ...] = (
    GraphPart(WORK_PERMIT, PersonWorkPermits, (WorkPermit, Employer)),
    GraphPart(SOCIAL_INSURANCE, PersonInsurance),
    GraphPart(CARD_SERVICE, PersonCards, (ElectronicCard,)),
    GraphPart(EXIT_ENTRY, PersonExitEntry),
    GraphPart(BEIJING_PASS, PersonBenefits, (BenefitPayment,)),
)


def part_types(parts: Sequence[GraphPart]) -> list[type]:
    """What strawberry must convert for the parts: their types and their Person fields."""
    return [t for part in parts for t in (*part.types, *filter(None, [part.person_fields]))]


def compose(schema: strawberry.Schema, parts: Sequence[GraphPart]) -> None:
    """Give `Person` the parts' fields and `Agency` the parts' agencies, in the built schema
    (graphql-core's types of this schema only: another schema built from other parts keeps
    its own). The types that carried the fields are then dropped from the schema."""
    graphql = schema._schema
    person = graphql.type_map["Person"]
    agency = graphql.type_map["Agency"]
    if not isinstance(person, GraphQLObjectType) or not isinstance(agency, GraphQLEnumType):
        raise TypeError("the schema has no Person object type or no Agency enum")
    own = dict(person.fields)
    closing = {name: own.pop(name) for name in PERSON_CLOSING_FIELDS}
    added: dict[str, GraphQLField] = {}
    for part in parts:
        if part.person_fields is None:
            continue
        name = get_object_definition(part.person_fields, strict=True).name
        carrier = graphql.type_map.pop(name)
        if not isinstance(carrier, GraphQLObjectType):
            raise TypeError(f"{name} is not an object type")
        schema.schema_converter.type_map.pop(name, None)
        clashing = set(carrier.fields) & (set(own) | set(added) | set(closing))
        if clashing:
            raise ValueError(f"{part.agency.id} gives Person fields it has already: {sorted(clashing)}")
        added.update(carrier.fields)
    person.fields = {**own, **added, **closing}
    agency.values = {
        part.agency.id: GraphQLEnumValue(part.agency.id, description=part.agency.description)
        for part in parts
    }
