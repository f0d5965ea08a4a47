"""The typed per-request context: who asks, for what, within which scope, on which day."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import strawberry

from adapters import Sources
from adapters.records import DataProblem
from identity.store import HubStore
from resolvers.loaders import Loaders
from tracing import SourceTrace


@dataclass(frozen=True)
class Caller:
    """The client behind a request. Until tokens exist every caller is anonymous; access
    control applies grants per field path from outside the resolvers."""

    subject: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class Scope:
    """Which persons the caller may reach (None: not narrowed)."""

    person_ids: frozenset[int] | None = None


@dataclass
class Context:
    sources: Sources
    store: HubStore
    loaders: Loaders
    today: date
    caller: Caller = field(default_factory=Caller)
    purpose: str | None = None
    case_reference: str | None = None
    scope: Scope = field(default_factory=Scope)
    trace: SourceTrace | None = None
    # Values returned together with an error (a failed check character, an unreadable row in a list).
    problems: list[tuple[tuple[str | int, ...], DataProblem]] = field(default_factory=list)
    request: Any = None
    response: Any = None

    def report(self, path: tuple[str | int, ...], problem: DataProblem) -> None:
        self.problems.append((path, problem))


Info = strawberry.Info[Context, None]
