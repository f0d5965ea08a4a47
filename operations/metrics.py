"""Prometheus metrics at `/metrics` (prometheus_client), in a registry of the hub's own.

Labels are bounded: a route is one of the app's fixed paths (anything else is `other`), an
operation one of query, mutation, subscription or none, a source one of the five agencies,
HUB_STORE or AUDIT, an error code one of the hub's codes. No client, path with an id, or value
of a request is ever a label.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
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
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from schema.planned import fields_answered

# Under `hub run --workers N` every worker writes its metrics into one directory
# (prometheus_client's multiprocess mode, chosen by this variable before the import) and
# /metrics of any worker sums them; the process, platform and GC collectors are per process.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None

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
IN_FLIGHT = Gauge(
    "hub_requests_in_flight", "HTTP requests being answered.", multiprocess_mode="livesum", registry=REGISTRY
)
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
if MULTIPROCESS_DIR is None:
    BREAKER: Enum | Gauge = Enum(
        "hub_source_breaker_state",
        "The circuit breaker of each agency's source, as of the scrape.",
        ["agency"],
        states=BREAKER_STATES,
        registry=REGISTRY,
    )
else:  # prometheus_client has no Enum across processes: the same series, 1 where any worker is
    BREAKER = Gauge(
        "hub_source_breaker_state",
        "The circuit breaker of each agency's source in each state (1: some worker's is in it).",
        ["agency", "hub_source_breaker_state"],
        multiprocess_mode="livemax",
        registry=REGISTRY,
    )
WORKFLOWS_IN_FLIGHT = Gauge(
    "hub_workflow_runs_in_flight",
    "Workflow runs started and not yet finished.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
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


SOURCE_CALLS = Counter(
    "hub_source_calls", "Calls to each agency's source (batch reads).", ["agency"], registry=REGISTRY
)
SOURCE_CALL_FAILURES = Counter(
    "hub_source_call_failures",
    "Calls to each agency's source that failed or timed out, after any retries.",
    ["agency"],
    registry=REGISTRY,
)
SOURCE_CALLS_REJECTED = Counter(
    "hub_source_calls_rejected",
    "Calls failed fast because the agency's breaker was open.",
    ["agency"],
    registry=REGISTRY,
)
SOURCE_CONSECUTIVE_FAILURES = Gauge(
    "hub_source_consecutive_failures",
    "Consecutive failed calls to each agency's source (the breaker's count; the highest of all workers).",
    ["agency"],
    multiprocess_mode="livemax",
    registry=REGISTRY,
)
SOURCE_INVALID_VALUES = Counter(
    "hub_source_invalid_values",
    "Legacy values that could not be mapped or failed their check character, per agency.",
    ["agency"],
    registry=REGISTRY,
)
FIELDS_ANSWERED = Counter(
    "hub_graphql_fields",
    "GraphQL fields answered, by the planned path (plan) or field by field (resolvers).",
    ["path"],
    registry=REGISTRY,
)
GUARD_COUNTERS = {
    "calls": SOURCE_CALLS,
    "failedCalls": SOURCE_CALL_FAILURES,
    "rejectedCalls": SOURCE_CALLS_REJECTED,
}


class Published:
    """Counts kept outside prometheus_client (the sources' guards, the invalid values met, the
    planned path's fields), added to its counters by what grew since the last time, so that
    they sum across the workers like every other counter (one per hub: its sources' counts)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}

    def grow(self, counter: Counter, label: str, value: float) -> None:
        key = (counter._name, label)
        grown = value - self._seen.get(key, 0.0)
        if grown > 0:
            counter.labels(label).inc(grown)
        self._seen[key] = value

    def sources(self, status: dict[str, dict[str, Any]]) -> None:
        for agency, reported in status.items():
            for key, counter in GUARD_COUNTERS.items():
                value = reported.get(key)
                if isinstance(value, int | float):
                    self.grow(counter, agency, value)
            failures = reported.get("failures")
            if isinstance(failures, int | float):
                SOURCE_CONSECUTIVE_FAILURES.labels(agency).set(failures)
            set_breaker(agency, breaker_label(reported.get("breaker")))


# The counts of this process as a whole (schema/planned.py's, adapters/base.py's).
PROCESS = Published()


def publish_process_counts() -> None:
    from adapters import base

    for agency, count in sorted(base.problems_by_agency.items()):
        if agency in AGENCIES:
            PROCESS.grow(SOURCE_INVALID_VALUES, agency, count)
    for path in ("plan", "resolvers"):
        PROCESS.grow(FIELDS_ANSWERED, path, fields_answered[path])


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


def set_breaker(agency: str, state: str) -> None:
    if isinstance(BREAKER, Enum):
        BREAKER.labels(agency).state(state)
        return
    for each in BREAKER_STATES:
        BREAKER.labels(agency, each).set(1 if each == state else 0)


_HUBS: weakref.WeakKeyDictionary[object, Published] = weakref.WeakKeyDictionary()


def publish(hub: Any) -> None:
    """Add what this process counted outside prometheus_client since the last time (at the end
    of every request, and before a scrape)."""
    from operations.readiness import sources_status

    publish_process_counts()
    if hub is None:
        return
    _HUBS.setdefault(hub.sources, Published()).sources(sources_status(hub.sources))
    in_flight = getattr(hub.workflows, "in_flight", None)
    if isinstance(in_flight, int):
        WORKFLOWS_IN_FLIGHT.set(in_flight)


def exposition() -> bytes:
    """The registry in Prometheus' text format: this process's, or every worker's summed."""
    if MULTIPROCESS_DIR is None:
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]  # prometheus_client: no annotations
    return generate_latest(registry)


def share_between_workers(data_dir: Path) -> Path:
    """Before the workers start: the directory their metrics meet in (PROMETHEUS_MULTIPROC_DIR,
    or `metrics/` in the data directory, emptied: a former run's workers are gone)."""
    chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    directory = Path(chosen) if chosen else data_dir / "metrics"
    if not chosen:
        shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def worker_stopped() -> None:
    """A worker's last word: its live gauges (in flight, breakers) no longer count."""
    if MULTIPROCESS_DIR is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]  # prometheus_client: no annotations


async def metrics_endpoint(request: Request) -> Response:
    """`GET /metrics`: no token (nothing personal is exposed); restrict it at the network edge."""
    publish(getattr(request.app.state, "hub", None))
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST, headers={"cache-control": "no-store"})
