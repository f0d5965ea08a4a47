"""Per-request statement counts and time per source, taken from the database engines' own
events (not from adapter code), reported under `extensions.sources` when a request asks with
`X-Hub-Trace: 1`."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

HUB_STORE = "HUB_STORE"


@dataclass
class SourceTiming:
    statements: int = 0
    seconds: float = 0.0


@dataclass
class SourceTrace:
    """What one request cost each source."""

    sources: dict[str, SourceTiming] = field(default_factory=dict)

    def add(self, source: str, seconds: float) -> None:
        timing = self.sources.setdefault(source, SourceTiming())
        timing.statements += 1
        timing.seconds += seconds

    def report(self) -> dict[str, dict[str, float | int]]:
        return {
            name: {"statements": t.statements, "ms": round(t.seconds * 1000, 3)}
            for name, t in sorted(self.sources.items())
        }


current_trace: ContextVar[SourceTrace | None] = ContextVar("current_trace", default=None)


def instrument(engine: AsyncEngine, source: str) -> None:
    """Count every statement this engine runs against the trace of the request running it."""
    sync_engine = engine.sync_engine
    if getattr(sync_engine, "_hub_traced", False):
        return
    sync_engine._hub_traced = True  # type: ignore[attr-defined]

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _started(_conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: Any) -> None:
        if context is not None:
            context._hub_started = time.perf_counter()

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _finished(_conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: Any) -> None:
        trace = current_trace.get()
        if trace is not None:
            started = getattr(context, "_hub_started", None)
            trace.add(source, time.perf_counter() - started if started is not None else 0.0)
