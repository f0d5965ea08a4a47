"""What every HTTP request leaves behind: one log line, its metrics and, when tracing is on,
its span.

`ObserveRequests` is the outermost middleware: it makes the request's state (tracing/request.py),
with its id (the gate answers it as `X-Request-Id`) and the statements each source runs for it
(for every request: `X-Hub-Trace: 1` only decides whether the answer shows them); when the
answer is done, it logs and counts it. The gate notes the caller and its refusals' codes, the
GraphQL view the operation type (`OperationRecorder`) and its errors' codes (`record_errors`).
WebSockets pass through.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from operations import metrics
from operations.logs import request_fields
from operations.telemetry import Telemetry
from tracing.request import SCOPE_KEY, RequestRecord, current_request, new_request

log = logging.getLogger("hub.request")

# Probes and scrapes are logged at DEBUG: an orchestrator calls them every few seconds.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
ERROR_BODY_LIMIT = 8192  # a refusal's JSON body, read for its codes; a larger body is not parsed


def record_errors(errors: Iterable[GraphQLError] | None) -> None:
    """Count the codes of a GraphQL answer's errors for the request answering it."""
    record = current_request.get()
    if record is None or not errors:
        return
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
        except Exception:  # a document that did not parse has none
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
        record = new_request(scope, path if path in self.routes else "other")
        scope.setdefault("state", {})[SCOPE_KEY] = record
        request_token = current_request.set(record)
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
            _finish(record, record.caller)
            if metrics.MULTIPROCESS_DIR is not None:  # one process answers a scrape for all
                app = scope.get("app")
                metrics.publish(getattr(app.state, "hub", None) if app is not None else None)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, record: RequestRecord) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", record.request_id.encode()))
                    message["headers"] = headers
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
