"""Prometheus metrics at `/metrics` (prometheus_client), in a registry of the hub's own.

Labels are bounded: a route is one of the app's fixed paths (anything else is `other`), an
operation one of query, mutation, subscription or none, a source one of the five agencies,
HUB_STORE or AUDIT, an error code one of the hub's codes. No client, path with an id, or value
of a request is ever a label.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    disable_created_metrics,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from schema.planned import fields_answered

# No `_created` series beside every counter and histogram (prometheus_client leaves it unannotated).
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client: no annotations
REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

# The agencies a label may name (those the app was built with): anything else is "" (a
# label's values must stay few).
AGENCIES: set[str] = set()
BREAKER_STATES = ["closed", "half_open", "open", "unknown"]
_CODE = re.compile(r"^[A-Z][A-Z_]{1,40}$")

REQUEST_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
STATEMENT_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter(
    "hub_requests",
    "HTTP requests answered, by route, GraphQL operation type and HTTP status.",
    ["route", "operation", "status"],
    registry=REGISTRY,
)
REQUEST_DURATION = Histogram(
    "hub_request_duration_seconds",
    "Time from a request's arrival to the end of its answer.",
    ["route", "operation"],
    buckets=REQUEST_SECONDS,
    registry=REGISTRY,
)
IN_FLIGHT = Gauge("hub_requests_in_flight", "HTTP requests being answered.", registry=REGISTRY)
ERRORS = Counter(
    "hub_graphql_errors",
    "Errors answered, by extensions.code and, for source errors, the agency.",
    ["code", "agency"],
    registry=REGISTRY,
)
SOURCE_STATEMENTS = Counter(
    "hub_source_statements",
    "Statements run on each database (an agency's, HUB_STORE, AUDIT).",
    ["source"],
    registry=REGISTRY,
)
SOURCE_DURATION = Histogram(
    "hub_source_statement_duration_seconds",
    "Time each statement took on its database.",
    ["source"],
    buckets=STATEMENT_SECONDS,
    registry=REGISTRY,
)
SOURCE_FAILURES = Counter(
    "hub_source_statement_failures",
    "Statements that failed on their database with a driver error (time-outs and calls failed "
    "fast by a breaker are in hub_source_call_failures_total and hub_source_calls_rejected_total).",
    ["source"],
    registry=REGISTRY,
)
BREAKER = Enum(
    "hub_source_breaker_state",
    "The circuit breaker of each agency's source, as of the scrape.",
    ["agency"],
    states=BREAKER_STATES,
    registry=REGISTRY,
)
WORKFLOWS_IN_FLIGHT = Gauge(
    "hub_workflow_runs_in_flight", "Workflow runs started and not yet finished.", registry=REGISTRY
)
AUDIT_RECORDS = Counter("hub_audit_records", "Audit records committed.", registry=REGISTRY)
AUDIT_COMMITS = Counter(
    "hub_audit_commits", "Audit transactions (one signed checkpoint each).", registry=REGISTRY
)
AUDIT_BATCH = Histogram(
    "hub_audit_batch_records",
    "Audit records per group commit.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
    registry=REGISTRY,
)


class SourceGuards:
    """The sources' own counts, read at scrape time: each agency's calls, failed calls, calls
    failed fast by an open breaker, consecutive failures (`Sources.sources_status()`), and the
    unreadable legacy values met (`adapters.base.problems_by_agency`)."""

    def __init__(self) -> None:
        self.status: dict[str, dict[str, Any]] = {}

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "calls": CounterMetricFamily(
                "hub_source_calls", "Calls to each agency's source (batch reads).", labels=["agency"]
            ),
            "failedCalls": CounterMetricFamily(
                "hub_source_call_failures",
                "Calls to each agency's source that failed or timed out, after any retries.",
                labels=["agency"],
            ),
            "rejectedCalls": CounterMetricFamily(
                "hub_source_calls_rejected",
                "Calls failed fast because the agency's breaker was open.",
                labels=["agency"],
            ),
            "failures": GaugeMetricFamily(
                "hub_source_consecutive_failures",
                "Consecutive failed calls to each agency's source (the breaker's count).",
                labels=["agency"],
            ),
        }
        for agency, status in self.status.items():
            for key, family in families.items():
                value = status.get(key)
                if isinstance(value, int | float):
                    family.add_metric([agency], value)
        yield from families.values()
        invalid = CounterMetricFamily(
            "hub_source_invalid_values",
            "Legacy values that could not be mapped or failed their check character, per agency.",
            labels=["agency"],
        )
        from adapters import base

        for agency, count in sorted(getattr(base, "problems_by_agency", {}).items()):
            if agency in AGENCIES:
                invalid.add_metric([agency], count)
        yield invalid


GUARDS = SourceGuards()
REGISTRY.register(GUARDS)


class AnsweredFields:
    """Fields answered by the planned path and by graphql-core's field-by-field chain
    (schema/planned.py), read at scrape time: how much of the traffic the plan covers."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "hub_graphql_fields",
            "GraphQL fields answered, by the planned path (plan) or field by field (resolvers).",
            labels=["path"],
        )
        for path in ("plan", "resolvers"):
            family.add_metric([path], fields_answered[path])
        yield family


REGISTRY.register(AnsweredFields())


def code_label(code: object) -> str:
    text = str(code or "")
    return text if _CODE.match(text) else "OTHER"


def know_agencies(agencies: Iterable[str]) -> None:
    AGENCIES.update(agencies)


def agency_label(agency: object) -> str:
    text = str(agency or "")
    return text if text in AGENCIES else ""


def breaker_label(state: object) -> str:
    text = str(getattr(state, "value", state) or "").lower().replace("-", "_").replace(" ", "_")
    return text if text in BREAKER_STATES else "unknown"


def observe_engine(engine: AsyncEngine, source: str) -> None:
    """Count and time every statement this engine runs, and its failures; on the audit
    database, the records and batch size of each commit too."""
    sync_engine = engine.sync_engine
    if getattr(sync_engine, "_hub_metered", False):
        return
    sync_engine._hub_metered = True  # type: ignore[attr-defined]  # our marker on the Engine: once only
    statements = SOURCE_STATEMENTS.labels(source)
    duration = SOURCE_DURATION.labels(source)
    failures = SOURCE_FAILURES.labels(source)
    audit = source == "AUDIT"

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _started(_conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: Any) -> None:
        if context is not None:
            context._hub_metered_at = time.perf_counter()

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _finished(_conn: Any, _cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        statements.inc()
        started = getattr(context, "_hub_metered_at", None)
        if started is not None:
            duration.observe(time.perf_counter() - started)
        if audit:
            _count_audit(statement, params, many)

    @event.listens_for(sync_engine, "handle_error")
    def _failed(_exception_context: Any) -> None:
        failures.inc()


def _count_audit(statement: str, params: Any, many: bool) -> None:
    head = statement.lstrip()[:40].lower().replace('"', "")
    if head.startswith("insert into audit_record"):
        size = len(params) if many else 1
        AUDIT_RECORDS.inc(size)
        AUDIT_BATCH.observe(size)
    elif head.startswith("insert into audit_checkpoint"):
        AUDIT_COMMITS.inc()


def exposition(sources: dict[str, dict[str, Any]], workflows_in_flight: int | None) -> bytes:
    """The registry in Prometheus' text format, with what is read at scrape time set."""
    GUARDS.status = sources
    for agency, status in sources.items():
        BREAKER.labels(agency).state(breaker_label(status.get("breaker")))
    if workflows_in_flight is not None:
        WORKFLOWS_IN_FLIGHT.set(workflows_in_flight)
    return generate_latest(REGISTRY)


async def metrics_endpoint(request: Request) -> Response:
    """`GET /metrics`: no token (nothing personal is exposed); restrict it at the network edge."""
    from operations.readiness import sources_status

    hub = getattr(request.app.state, "hub", None)
    status = sources_status(hub.sources) if hub is not None else {}
    in_flight = getattr(hub.workflows, "in_flight", None) if hub is not None else None
    body = exposition(status, in_flight if isinstance(in_flight, int) else None)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"cache-control": "no-store"})
