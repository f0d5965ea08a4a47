"""Graceful shutdown, the lifespan's part.

On SIGTERM uvicorn stops accepting connections and lets the requests in flight finish, for up
to `HUB_SHUTDOWN_GRACE` seconds (`timeout_graceful_shutdown`, set by `hub run`); past that it
cancels them, and a workflow run cancelled mid-way undoes itself. Then the lifespan ends: before
the databases close, `drain` waits (again at most the grace) until no workflow run is in flight
and the audit writer has committed every record handed to it. A run still unfinished after
that is undone by the next start's recovery, as after a crash: no started write is lost
half-way.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("hub.shutdown")


async def drain(hub: Any, grace: float) -> bool:
    """Wait for in-flight workflow runs, then for the audit queue; whether both emptied in time."""
    started = time.monotonic()
    drained = True
    runs = getattr(hub.workflows, "drain", None)
    if runs is not None:
        in_flight = getattr(hub.workflows, "in_flight", 0)
        if in_flight:
            log.info("waiting for workflow runs", extra={"in_flight": in_flight})
        if not await runs(grace):
            log.warning(
                "workflow runs still in flight after the grace; the next start undoes them",
                extra={"in_flight": getattr(hub.workflows, "in_flight", None)},
            )
            drained = False
    audit_drain = getattr(hub.audit, "drain", None)
    if audit_drain is not None and not await audit_drain(max(0.0, grace - (time.monotonic() - started))):
        log.warning("audit records still queued after the grace")
        drained = False
    log.info("drained", extra={"seconds": round(time.monotonic() - started, 3), "complete": drained})
    return drained
