"""OpenTelemetry traces of requests and of the statements they run on each source, only when
an exporter is configured by the standard variables:

- `OTEL_TRACES_EXPORTER`: `otlp`, `console` or `none` (a comma-separated list is allowed);
- `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) alone means `otlp`
  (OTLP over HTTP/protobuf, the protocol this hub ships);
- `OTEL_SERVICE_NAME` (default `foreigner-hub`) and `OTEL_RESOURCE_ATTRIBUTES` name the service.

With none of them set, no provider exists, no engine listener is added and a request costs one
`is None` test. Spans carry no personal data: the route and method, never the URL's query (a GET
carries its document and variables there), the status, the operation type, the request id; a
statement span names its source and its verb, never its text or parameters. An incoming W3C
`traceparent` header makes the request's span a child of the caller's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.ext.asyncio import AsyncEngine

EXPORTERS = {"otlp", "console", "none"}


class TelemetryConfigError(ValueError):
    """An OTEL_* variable this hub cannot honour: the start stops, naming it."""


def exporters_from_environment(environ: Mapping[str, str]) -> list[str]:
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise TelemetryConfigError(
            f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not one of otlp, console, none"
        )
    if not names and (
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        names = ["otlp"]
    if "otlp" in names:
        protocol = environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        )
        if protocol != "http/protobuf":
            raise TelemetryConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r}; this hub exports OTLP over http/protobuf only"
            )
    return [n for n in names if n != "none"]


class Telemetry:
    """The hub's tracer, or nothing."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self.tracer: Tracer | None = provider.get_tracer("foreigner-hub") if provider is not None else None

    @classmethod
    def configure(
        cls, environ: Mapping[str, str] | None = None, exporter: SpanExporter | None = None
    ) -> Telemetry:
        """From the OTEL_* variables; `exporter` (tests: an in-memory one) is used as well,
        exported span by span."""
        env = os.environ if environ is None else environ
        names = exporters_from_environment(env)
        if not names and exporter is None:
            return cls()
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )

        resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "foreigner-hub")})
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        if "otlp" in names:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        if "console" in names:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        return cls(provider)

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def start_request(self, scope: Mapping[str, Any], route: str) -> Any:
        """The request's server span, made current (a context manager); call only when enabled."""
        assert self.tracer is not None
        carrier = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        method = scope.get("method", "GET")
        return self.tracer.start_as_current_span(
            f"{method} {route}",
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route},
            record_exception=False,  # an exception's message may carry a legacy value
        )

    def instrument(self, engine: AsyncEngine, source: str) -> None:
        """A client span per statement this engine runs, a child of the request running it."""
        if self.tracer is None:
            return
        from sqlalchemy import event

        tracer = self.tracer
        sync_engine = engine.sync_engine
        if getattr(sync_engine, "_hub_spanned", False):
            return
        sync_engine._hub_spanned = True  # type: ignore[attr-defined]  # our marker on the Engine: once only
        system = sync_engine.dialect.name

        @event.listens_for(sync_engine, "before_cursor_execute")
        def _started(_conn: Any, _cursor: Any, statement: str, _p: Any, context: Any, _many: Any) -> None:
            if context is None:
                return
            verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
            context._hub_span = tracer.start_span(
                f"{verb} {source}",
                kind=SpanKind.CLIENT,
                attributes={"db.system.name": system, "hub.source": source, "db.operation.name": verb},
            )

        @event.listens_for(sync_engine, "after_cursor_execute")
        def _finished(_conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: Any) -> None:
            span = getattr(context, "_hub_span", None)
            if span is not None:
                span.end()
                context._hub_span = None

        @event.listens_for(sync_engine, "handle_error")
        def _failed(exception_context: Any) -> None:
            context = exception_context.execution_context
            span = getattr(context, "_hub_span", None)
            if span is not None:
                span.set_status(Status(StatusCode.ERROR, type(exception_context.original_exception).__name__))
                span.end()
                context._hub_span = None

    def shutdown(self) -> None:
        """Export what is still buffered, then stop."""
        if self.provider is not None:
            self.provider.shutdown()
