"""Real databases for the tests: SQLite files in a temporary directory, and PostgreSQL
databases (one per agency and one for the hub store) on the server of this machine."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.registry import DEFAULT_AGENCIES
from settings import Settings
from tests.clock import SAFETY_NET

POSTGRES_ADMIN_DSN = os.environ.get("HUB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
POSTGRES_URL_BASE = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")


async def execute(url: str, sql: str) -> None:
    """One statement on a database by its URL, committed: a test's edit of a legacy row or a trail."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@dataclass
class PostgresDatabases:
    names: list[str]

    async def drop(self) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            for name in self.names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used here, or None when a server answers."""
    try:
        # A refused connection fails at once; the timeout only nets a server that hangs, and
        # must not skip the PostgreSQL tests because a loaded machine answered slowly.
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=SAFETY_NET)
    except (OSError, asyncpg.PostgresError) as error:
        return f"no PostgreSQL server answers at {POSTGRES_ADMIN_DSN} ({type(error).__name__})"
    await conn.close()
    return None


async def postgres_settings(data_dir: Path, today: date) -> tuple[Settings, PostgresDatabases]:
    """One fresh database per agency, one for the hub store and one for the audit log."""
    tag = uuid.uuid4().hex[:8]
    names = {spec.id: f"hubtest_{tag}_{spec.id.lower()}" for spec in DEFAULT_AGENCIES}
    store_name, audit_name = f"hubtest_{tag}_store", f"hubtest_{tag}_audit"
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        for name in [*names.values(), store_name, audit_name]:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    settings = Settings(
        data_dir=data_dir,
        source_urls={agency: f"{POSTGRES_URL_BASE}/{name}" for agency, name in names.items()},
        store_url=f"{POSTGRES_URL_BASE}/{store_name}",
        audit_url=f"{POSTGRES_URL_BASE}/{audit_name}",
        fixed_today=today,
    )
    return settings, PostgresDatabases([*names.values(), store_name, audit_name])
