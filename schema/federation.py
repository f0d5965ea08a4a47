"""The hub as an Apollo Federation v2 subgraph, always on: `_service { sdl }` (the schema a
gateway composes, for the roles that may introspect) and `_entities` for the types with a
`@key` (`Person` by id, `WorkPermit` by number, `Employer` by credit code), each read as the
root field it stands for (resolvers/entities.py) and checked as that field is
(schema/access.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Annotated, Any, Final, cast

import strawberry
from strawberry.federation.schema import FederationAny
from strawberry.types.scalar import scalar

from resolvers.context import Info
from resolvers.entities import entity
from schema.permit import Employer, WorkPermit
from schema.person import Person

# The federation version the SDL links; @theguild/federation-composition composes it.
FEDERATION_VERSION: Final = "2.9"

# The definitions of what the SDL's `@link` brings in, printed with it: graphql-core's
# build_schema (the contract check, a client's codegen) cannot read the SDL without them, and
# gateways accept them as the specifications define them.
FEDERATION_DEFINITIONS = '''\
"""Links a specification's definitions into this schema (https://specs.apollo.dev/link/v1.0)."""
directive @link(
  """The specification's URL, with its version."""
  url: String
  """The prefix its names take here, instead of the specification's own."""
  as: String
  """What a reader must understand the specification for to read the schema."""
  for: link__Purpose
  """The names used here without a prefix."""
  import: [link__Import]
) repeatable on SCHEMA

"""An entity's key: the fields a federation gateway fetches it by (https://specs.apollo.dev/federation/v2.9)."""
directive @key(
  """The key's fields, as a selection set."""
  fields: federation__FieldSet!
  """Whether this subgraph fetches the entity by its key."""
  resolvable: Boolean = true
) repeatable on OBJECT | INTERFACE

"""A selection set, in the federation's directives."""
scalar federation__FieldSet

"""A name `@link` imports."""
scalar link__Import

"""What a reader must understand a linked specification for."""
enum link__Purpose {
  """To read the schema securely."""
  SECURITY
  """To execute operations against the schema."""
  EXECUTION
}
'''

# Federation's `_Any`, described.
ANY_SCALAR = scalar(
    name="_Any",
    description="An entity's representation: its `__typename` and the fields of its `@key`.",
    serialize=lambda value: value,
    parse_value=lambda value: value,
)


@strawberry.type(name="_Service", description="This subgraph, as a federation gateway composes it.")
class FederationService:
    sdl: str = strawberry.field(description="The schema in SDL, with its federation directives.")


Entity = Annotated[
    Person | WorkPermit | Employer,
    strawberry.union("_Entity", description="A type a federation gateway may fetch by its `@key`."),
]

Representations = Annotated[
    list[FederationAny],
    strawberry.argument(
        description="Each entity's `__typename` and key: `id`, `number` or `creditCode`, as `@key` names it."
    ),
]


def service(info: Info) -> FederationService:
    return FederationService(sdl=info.schema.as_str())


def _at_item(info: Info, index: int) -> Info:
    """`info` at the entity's own item of the list, where what its reader reports (a value
    failing its check character) belongs, as at the direct field's path."""
    raw = info._raw_info
    return replace(info, _raw_info=raw._replace(path=raw.path.add_key(index, None)))


async def _entity_or_error(info: Info, representation: Any, index: int) -> object:
    try:
        return await entity(_at_item(info, index), representation, index)
    except Exception as error:
        # This entity is null with its error (shaped as any field's: a refusal's code, a source
        # unavailable, the rest masked); the others stand, as the direct fields would.
        return error


async def entities(info: Info, representations: Representations) -> list[Entity | None]:
    # Together, so that the loaders batch them as they batch a list's fields.
    found = await asyncio.gather(
        *(
            _entity_or_error(info, representation, index)
            for index, representation in enumerate(representations)
        )
    )
    return cast(list[Entity | None], found)
