"""Workflow state in the hub's store: each run, and the journal of what it changed where."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel, UniqueConstraint


class WorkflowRun(SQLModel, table=True):
    """One mutation's run. `(client, idempotency_key)` is unique, so a retry finds the first run."""

    __tablename__ = "workflow_run"
    __table_args__ = (UniqueConstraint("client", "idempotency_key", name="uq_workflow_idempotency"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    client: str
    idempotency_key: str | None = None
    input_hash: str
    status: str = Field(index=True)  # RUNNING, UNDOING (claimed to be undone), DONE, UNDONE
    result: str | None = None  # JSON: what the payload is built from
    started_at: datetime
    finished_at: datetime | None = None
    # The process that runs (or undoes) the run, and until when (UTC) its lease holds; a run
    # unfinished past its lease is any process's to undo (workflows/engine.py).
    lease_owner: str | None = None
    lease_expires: datetime | None = None


class WorkflowJournal(SQLModel, table=True):
    """A before-image written durably *before* the change it describes, so that an unfinished
    run can be undone after a crash: the row as it was (None: the row did not exist)."""

    __tablename__ = "workflow_journal"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(index=True, foreign_key="workflow_run.id")
    target: str  # an agency, or HUB_STORE
    table_name: str
    key: str  # JSON object: the row's key columns
    before: str | None = None  # JSON object, or None when the change inserts the row
    # JSON: the values the change sets (null: it deletes the row); the undo restores the row
    # only while it is so, i.e. the change committed and no later run changed it. None: always.
    after_image: str | None = None


class PendingPermit(SQLModel, table=True):
    """The end date an application asks for, kept by the hub until the notice writes it
    (`YXQQ`/`YXQZ` stay empty in the work-permit system before approval)."""

    __tablename__ = "pending_permit"

    permit_key: int = Field(primary_key=True)
    valid_to: date


async def add_lease_columns(conn: AsyncConnection) -> None:
    """A store made before run leases gets their columns (its unfinished runs have none: they
    count as expired), and the journal its after-images (its entries have none: undone as
    before)."""

    def columns(table: str) -> Any:
        return conn.run_sync(lambda sync: {c["name"] for c in inspect(sync).get_columns(table)})

    if "lease_owner" not in await columns("workflow_run"):
        timestamp = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
        await conn.execute(text("ALTER TABLE workflow_run ADD COLUMN lease_owner VARCHAR"))
        await conn.execute(text(f"ALTER TABLE workflow_run ADD COLUMN lease_expires {timestamp}"))
    if "after_image" not in await columns("workflow_journal"):
        await conn.execute(text("ALTER TABLE workflow_journal ADD COLUMN after_image VARCHAR"))
