"""Running the hub in service: readiness (`/readyz`), Prometheus metrics (`/metrics`), one JSON
log line per request, OpenTelemetry traces when an exporter is configured, and the lifespan's
part of a graceful shutdown.

readiness.py  one bounded `SELECT 1` per database, breaker states; 503 when the hub store or
              the audit store is down
metrics.py    the registry, the metrics and their bounded labels, the engines' statement meters
requests.py   the outermost middleware: request id, per-source counts, log line, metrics, span
logs.py       the JSON formatter and what a request's log line holds (never personal data)
telemetry.py  the tracer from OTEL_* variables, request and statement spans
shutdown.py   drain: in-flight workflow runs and the audit queue, before the databases close
collector.py  the garbage collector's thresholds for serving
"""

from __future__ import annotations

from operations.collector import tune_for_serving
from operations.logs import configure_logging
from operations.metrics import (
    know_agencies,
    metrics_endpoint,
    observe_engine,
    share_between_workers,
    worker_stopped,
)
from operations.readiness import Readiness
from operations.requests import ObserveRequests, OperationRecorder, record_errors
from operations.shutdown import drain
from operations.telemetry import Telemetry

__all__ = [
    "ObserveRequests",
    "OperationRecorder",
    "Readiness",
    "Telemetry",
    "configure_logging",
    "drain",
    "know_agencies",
    "metrics_endpoint",
    "observe_engine",
    "record_errors",
    "share_between_workers",
    "tune_for_serving",
    "worker_stopped",
]
