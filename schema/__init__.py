"""The hub's schema, composed from the per-domain types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache
from strawberry.federation.schema import FederationAny
from strawberry.types import ExecutionContext

from domain.limits import Limits
from schema.access import AccessControl
from schema.agencies import DEFAULT_PARTS, GraphPart, compose, part_types
from schema.errors import ShapeErrors, SourceTraceReport
from schema.federation import ANY_SCALAR, FEDERATION_DEFINITIONS, FEDERATION_VERSION
from schema.limits import limit_extensions
from schema.mutation import Mutation
from schema.notifications import Notification
from schema.person import Person
from schema.planned import PlannedExecutionContext
from schema.query import Query
from schema.subscription import Subscription


class HubSchema(strawberry.federation.Schema):  # always a federation v2 subgraph (schema/federation.py)
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # ShapeErrors logs what it masks, by code and path; messages may carry personal data.
        return None

    def as_str(self) -> str:
        return FEDERATION_DEFINITIONS + "\n" + super().as_str()


def build_schema(
    limits: Limits | None = None, parts: Sequence[GraphPart] = DEFAULT_PARTS, planned: bool = True
) -> HubSchema:
    """The schema of the registered agencies' parts (schema/agencies.py); `planned=False`
    executes every field through graphql-core's chain (the planned path's reference)."""
    schema = HubSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Person, Notification, *part_types(parts)],
        extensions=[
            ShapeErrors,
            *limit_extensions(limits or Limits()),
            lambda: ParserCache(maxsize=256),
            AccessControl,
            SourceTraceReport,
        ],
        execution_context_class=PlannedExecutionContext if planned else None,
        federation_version=FEDERATION_VERSION,
        scalar_overrides={FederationAny: ANY_SCALAR},
    )
    compose(schema, parts)
    return schema


def export_sdl() -> str:
    return build_schema().as_str() + "\n"


__all__: list[Any] = ["build_schema", "export_sdl", "HubSchema"]
