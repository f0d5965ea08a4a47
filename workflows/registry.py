"""The runner with every database a workflow may write, and every table its journal names."""

from __future__ import annotations

import os

from sqlmodel import SQLModel

from adapters import Sources
from clock import SYSTEM_CLOCK, Clock
from identity.store import HubStore
from workflows import tables as _workflow_tables  # noqa: F401  (registers the workflow tables)
from workflows.engine import HUB_STORE, WorkflowRunner


def workflow_runner(
    sources: Sources,
    store: HubStore,
    *,
    clock: Clock = SYSTEM_CLOCK,
    lease: float = 30.0,
    idempotency_wait: float = 10.0,
    shared: bool = False,
) -> WorkflowRunner:
    """The runner; `shared`: other processes serve the same databases (HUB_REDIS_URL set)."""
    engines = {str(source.agency): source.engine for source in sources.all()}
    tables = {
        (str(source.agency), table.name): table
        for source in sources.all()
        for table in source.metadata.tables.values()
    }
    tables |= {(HUB_STORE, table.name): table for table in SQLModel.metadata.tables.values()}
    guards = {str(source.agency): source.guard for source in sources.all() if source.guard is not None}
    return WorkflowRunner(
        store,
        engines,
        tables,
        crash_drill(),
        guards,
        clock=clock,
        lease=lease,
        idempotency_wait=idempotency_wait,
        shared=shared,
    )


def crash_drill() -> tuple[str, int] | None:
    """`HUB_CRASH_DRILL=enrollInInsurance:3`: die after that run's third change (recovery drills)."""
    value = os.environ.get("HUB_CRASH_DRILL", "")
    kind, _, count = value.partition(":")
    return (kind, int(count)) if kind and count.isdigit() else None
