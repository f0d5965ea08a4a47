"""One request's state, made once by the outermost middleware and read by every part that
serves the request: its id, who called (set by the gate), what each source cost it, the codes
of the errors it answered, and how it ended. The same object is the request's entry in the
ASGI scope's state and the value of `current_request` while it is served, so the engines'
statement events and the log lines find it too."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracing.incoming import header, request_id_of, trace_id_of

if TYPE_CHECKING:
    from access.caller import Caller
    from access.policy import Grant


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


SCOPE_KEY = "hub.request"  # the RequestRecord in an ASGI scope's state


@dataclass
class RequestRecord:
    request_id: str
    method: str
    route: str
    started: float
    trace: SourceTrace = field(default_factory=SourceTrace)
    # Who called and what their role and purpose are granted: set once, by the gate.
    caller: Caller | None = None
    grant: Grant | None = None
    operation: str = "none"
    status: int = 0
    seconds: float = 0.0
    # (extensions.code, agency or "") of every error answered, recorded where it was shaped.
    errors: list[tuple[str, str]] = field(default_factory=list)
    trace_id: str | None = None
    # Whether the client's Accept asked for application/graphql-response+json (edge/media.py).
    graphql_response: bool = False


current_request: ContextVar[RequestRecord | None] = ContextVar("current_request", default=None)


def new_request(scope: Mapping[str, Any], route: str = "other") -> RequestRecord:
    """A request's state, with the caller's request id and trace id where they are
    well-formed (tracing/incoming.py), else a new id and none."""
    method = scope.get("method", "GET") if scope.get("type") == "http" else "WEBSOCKET"
    headers = scope.get("headers", [])
    return RequestRecord(
        request_id=request_id_of(header(headers, b"x-request-id")) or uuid.uuid4().hex,
        method=method,
        route=route,
        started=time.perf_counter(),
        trace_id=trace_id_of(header(headers, b"traceparent")),
    )


def request_of(scope: Mapping[str, Any]) -> RequestRecord | None:
    """The request an ASGI scope belongs to, once the outermost middleware has made it."""
    found = scope.get("state", {}).get(SCOPE_KEY)
    return found if isinstance(found, RequestRecord) else None
