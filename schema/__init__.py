"""The hub's schema, composed from the per-domain types."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache
from strawberry.types import ExecutionContext

from domain.limits import Limits
from schema.access import AccessControl
from schema.benefits import BenefitPayment
from schema.card import ElectronicCard
from schema.errors import ShapeErrors, SourceTraceReport
from schema.limits import limit_extensions
from schema.mutation import Mutation
from schema.notifications import Notification
from schema.permit import Employer, WorkPermit
from schema.person import Person
from schema.query import Query
from schema.subscription import Subscription


class HubSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # ShapeErrors logs what it masks, by code and path; messages may carry personal data.
        return None


def build_schema(limits: Limits | None = None) -> HubSchema:
    return HubSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Person, WorkPermit, Employer, ElectronicCard, Notification, BenefitPayment],
        extensions=[
            ShapeErrors,
            *limit_extensions(limits or Limits()),
            lambda: ParserCache(maxsize=256),
            AccessControl,
            SourceTraceReport,
        ],
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"


__all__: list[Any] = ["build_schema", "export_sdl", "HubSchema"]
