"""What every HTTP request leaves behind: one log line, its metrics and, when tracing is on,
its span.

`ObserveRequests` is the outermost middleware: it gives the request its id (the gate answers it
as `X-Request-Id`), collects the statements each source runs for it (tracing/'s counts, for every
request: `X-Hub-Trace: 1` only decides whether the answer shows them), and when the answer is
done, logs it and counts it. The GraphQL view adds what only it knows: the operation type
(`OperationRecorder`) and the errors' codes (`record_errors`). WebSockets pass through.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from edge.gateway import CALLER_KEY, REQUEST_ID_KEY
from operations import metrics
from operations.logs import request_fields
from operations.telemetry import Telemetry
from tracing import SourceTrace, current_trace

log = logging.getLogger("hub.request")

# Probes and scrapes are logged at DEBUG: an orchestrator calls them every few seconds.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
ERROR_BODY_LIMIT = 8192  # a refusal's JSON body, read for its codes; a larger body is not parsed


@dataclass
class RequestRecord:
    request_id: str
    method: str
    route: str
    started: float
    trace: SourceTrace = field(default_factory=SourceTrace)
    operation: str = "none"
    status: int = 0
    seconds: float = 0.0
    # (extensions.code, agency or "") of every error answered
    errors: list[tuple[str, str]] = field(default_factory=list)
    codes_seen: bool = False
    trace_id: str | None = None


current_request: ContextVar[RequestRecord | None] = ContextVar("current_request", default=None)


def record_errors(errors: Iterable[GraphQLError] | None) -> None:
    """Count the codes of a GraphQL answer's errors for the request answering it."""
    record = current_request.get()
    if record is None or not errors:
        return
    record.codes_seen = True
    for error in errors:
        extensions = error.extensions or {}
        record.errors.append(
            (metrics.code_label(extensions.get("code")), metrics.agency_label(extensions.get("agency")))
        )


class OperationRecorder(SchemaExtension):
    """Notes the operation type (query, mutation, subscription) of the request being answered."""

    def on_operation(self) -> Any:
        yield
        record = current_request.get()
        if record is None:
            return
        try:
            operation = self.execution_context.operation_type
        except Exception:  # noqa: BLE001 - a document that did not parse has none
            return
        record.operation = str(getattr(operation, "value", operation)).lower()


class ObserveRequests:
    """ASGI middleware: request id, per-source statement counts, the log line, the metrics,
    the span."""

    def __init__(self, app: ASGIApp, routes: Iterable[str], telemetry: Telemetry | None = None) -> None:
        self.app = app
        self.routes = frozenset(routes)
        self.telemetry = telemetry or Telemetry()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        record = RequestRecord(
            request_id=uuid.uuid4().hex,
            method=scope.get("method", "GET"),
            route=path if path in self.routes else "other",
            started=time.perf_counter(),
        )
        state = scope.setdefault("state", {})
        state[REQUEST_ID_KEY] = record.request_id
        request_token = current_request.set(record)
        trace_token = current_trace.set(record.trace)
        metrics.IN_FLIGHT.inc()
        try:
            if self.telemetry.enabled:
                with self.telemetry.start_request(scope, record.route) as span:
                    record.trace_id = format(span.get_span_context().trace_id, "032x")
                    try:
                        await self._answer(scope, receive, send, record)
                    finally:
                        _annotate(span, record)
            else:
                await self._answer(scope, receive, send, record)
        finally:
            metrics.IN_FLIGHT.dec()
            record.seconds = time.perf_counter() - record.started
            current_request.reset(request_token)
            current_trace.reset(trace_token)
            _finish(record, state.get(CALLER_KEY))

    async def _answer(self, scope: Scope, receive: Receive, send: Send, record: RequestRecord) -> None:
        error_body: list[bytes] | None = None

        async def sending(message: Message) -> None:
            nonlocal error_body
            if message["type"] == "http.response.start":
                record.status = message["status"]
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", record.request_id.encode()))
                    message["headers"] = headers
                if record.status >= 400 and _is_json(headers):
                    error_body = []
            elif message["type"] == "http.response.body" and error_body is not None:
                error_body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    _codes_from_body(record, b"".join(error_body))
                    error_body = None
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except asyncio.CancelledError:
            if record.status == 0:
                # Cut short before answering: the client left, or shutdown's grace ran out.
                record.status = 499
            raise
        except BaseException:
            if record.status == 0:
                record.status = 500
            raise


def _is_json(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and b"json" in v.lower() for k, v in headers)


def _codes_from_body(record: RequestRecord, body: bytes) -> None:
    """The codes of a refusal the view did not answer itself (the gate's 401, 403, 413, 429)."""
    if record.codes_seen or len(body) > ERROR_BODY_LIMIT:
        return
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    errors = answer.get("errors") if isinstance(answer, dict) else None
    for error in errors if isinstance(errors, list) else ():
        extensions = error.get("extensions") if isinstance(error, dict) else None
        if isinstance(extensions, Mapping):
            record.errors.append(
                (metrics.code_label(extensions.get("code")), metrics.agency_label(extensions.get("agency")))
            )
    record.codes_seen = True


def _annotate(span: Any, record: RequestRecord) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("http.response.status_code", record.status)
    span.set_attribute("hub.request_id", record.request_id)
    span.set_attribute("graphql.operation.type", record.operation)
    if record.errors:
        span.set_attribute("hub.error_codes", sorted({code for code, _ in record.errors}))
    if record.status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def _finish(record: RequestRecord, caller: Any) -> None:
    status = str(record.status)
    metrics.REQUESTS.labels(record.route, record.operation, status).inc()
    metrics.REQUEST_DURATION.labels(record.route, record.operation).observe(record.seconds)
    for code, agency in record.errors:
        metrics.ERRORS.labels(code, agency).inc()
    if record.status >= 500:
        level = logging.ERROR
    elif record.route in QUIET_ROUTES:
        level = logging.DEBUG
    else:
        level = logging.INFO
    if log.isEnabledFor(level):
        log.log(level, "request", extra=request_fields(record, caller))
