"""The typed per-request context: who asks, for what, within which scope, on which day."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import strawberry

from access.policy import Grant, Policy
from access.tokens import TokenAuthority
from adapters import Sources
from audit.log import AuditLog
from domain.records import CallerRole, DataProblem
from identity.store import HubStore
from opaque.cursors import Cursors
from opaque.ids import GlobalIds
from resolvers.loaders import Loaders
from tracing import SourceTrace
from workflows.engine import WorkflowRunner


@dataclass(frozen=True)
class Caller:
    """The client behind a request, as its verified token and headers say. Grants, scope and
    audit are applied per field path from outside the resolvers (schema/access.py)."""

    subject: str
    role: CallerRole
    purpose: str | None = None
    case_reference: str | None = None
    restricted_until: date | None = None
    request_id: str = ""
    # The party a token is bound to: the cardholder's person, the employer's credit code.
    person_id: int | None = None
    employer: str | None = None
    # False for the one request the hub serves without a token: a person's app exchanging its
    # activation code (policy.toml [anonymous]); it reaches nobody.
    authenticated: bool = True

    @property
    def scoped(self) -> bool:
        """Whether the caller reaches only some persons (a cardholder, an employer)."""
        return self.role in (CallerRole.CARDHOLDER, CallerRole.EMPLOYER)


@dataclass(frozen=True)
class Scope:
    """The persons a caller reaches: None for every person; lists are narrowed to it."""

    person_ids: frozenset[int] | None = None
    employer: str | None = None


@dataclass
class Context:
    sources: Sources
    store: HubStore
    loaders: Loaders
    today: date
    caller: Caller
    policy: Policy
    grant: Grant
    scope: Scope
    audit: AuditLog | None
    workflows: WorkflowRunner
    tokens: TokenAuthority
    ids: GlobalIds
    cursors: Cursors
    trace: SourceTrace | None = None
    # Values returned together with an error (a failed check character, an unreadable row in a list).
    problems: list[tuple[tuple[str | int, ...], DataProblem]] = field(default_factory=list)
    request: Any = None
    response: Any = None

    def report(self, path: tuple[str | int, ...], problem: DataProblem) -> None:
        self.problems.append((path, problem))


Info = strawberry.Info[Context, None]
