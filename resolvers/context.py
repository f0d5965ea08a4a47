"""The typed per-request context the resolvers see: the caller, its grant and scope, the day,
the sources, the store and this request's loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import strawberry

from access.caller import Caller, Scope
from access.policy import Grant, Policy
from access.tokens import TokenAuthority
from adapters import Sources
from audit.log import AuditLog
from domain.records import DataProblem
from identity.store import HubStore
from opaque.cursors import Cursors
from opaque.ids import GlobalIds
from resolvers.hub import HubState
from resolvers.loaders import Loaders
from tracing import SourceTrace
from workflows.engine import WorkflowRunner


@dataclass
class Context:
    """One request's view for the resolvers: the process's hub, and what this request is."""

    hub: HubState
    loaders: Loaders
    today: date
    caller: Caller
    grant: Grant
    scope: Scope
    audit: AuditLog | None  # None where reads are not audited (the benchmark, WebSocket deliveries)
    trace: SourceTrace | None = None  # the request's statement counts, when it asked to see them
    # Values returned together with an error (a failed check character, an unreadable row in a list).
    problems: list[tuple[tuple[str | int, ...], DataProblem]] = field(default_factory=list)
    request: Any = None
    response: Any = None

    @property
    def sources(self) -> Sources:
        return self.hub.sources

    @property
    def store(self) -> HubStore:
        return self.hub.store

    @property
    def policy(self) -> Policy:
        return self.hub.policy

    @property
    def workflows(self) -> WorkflowRunner:
        return self.hub.workflows

    @property
    def tokens(self) -> TokenAuthority:
        return self.hub.tokens

    @property
    def ids(self) -> GlobalIds:
        return self.hub.ids

    @property
    def cursors(self) -> Cursors:
        return self.hub.cursors

    def report(self, path: tuple[str | int, ...], problem: DataProblem) -> None:
        self.problems.append((path, problem))


Info = strawberry.Info[Context, None]
