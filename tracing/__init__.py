"""Per-request statement counts and time per source, taken from the database engines' own
events (not from adapter code), reported under `extensions.sources` when a request asks with
`X-Hub-Trace: 1`."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tracing.request import SourceTrace, current_request

HUB_STORE = "HUB_STORE"
__all__ = ["HUB_STORE", "SourceTrace", "instrument"]


def instrument(engine: AsyncEngine, source: str) -> None:
    """Count every statement this engine runs against the trace of the request running it."""
    sync_engine = engine.sync_engine
    if getattr(sync_engine, "_hub_traced", False):
        return
    sync_engine._hub_traced = True  # type: ignore[attr-defined]  # our marker on the Engine: once only

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _started(_conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: Any) -> None:
        if context is not None:
            context._hub_started = time.perf_counter()

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _finished(_conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: Any) -> None:
        request = current_request.get()
        if request is not None:
            started = getattr(context, "_hub_started", None)
            request.trace.add(source, time.perf_counter() - started if started is not None else 0.0)
