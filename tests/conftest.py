"""Seeded estates on real databases, and the hub served through its ASGI app.

Every database test runs twice: on SQLite files and on PostgreSQL (skipped, with the reason,
only where no PostgreSQL server answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest

from adapters import Sources
from app import HubState, close_hub, create_app, open_hub
from estate import generate_estate
from identity.linking import LinkReport, link_estate
from identity.store import HubStore
from settings import Settings
from tests.databases import postgres_settings, postgres_unavailable

AS_OF = date(2026, 6, 15)
PERSONS = 240
SEED = 7


@dataclass
class Estate:
    backend: str
    settings: Settings
    report: LinkReport


async def seed_estate(settings: Settings, persons: int = PERSONS, seed: int = SEED) -> LinkReport:
    sources = Sources.open(settings.source_urls)
    store = HubStore.open(settings.store_url)
    try:
        await generate_estate({s.agency: s.engine for s in sources.all()}, persons, seed, AS_OF)
        await store.create_tables()
        return await link_estate(sources, store)
    finally:
        await sources.close()
        await store.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def estate(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Estate]:
    data_dir = tmp_path_factory.mktemp(f"estate-{request.param}")
    if request.param == "sqlite":
        settings = Settings.for_directory(data_dir, fixed_today=AS_OF)
        yield Estate("sqlite", settings, await seed_estate(settings))
        return
    reason = await postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    settings, databases = await postgres_settings(data_dir, AS_OF)
    try:
        yield Estate("postgresql", settings, await seed_estate(settings))
    finally:
        await databases.drop()


@pytest.fixture(scope="session")
async def hub(estate: Estate) -> AsyncIterator[HubState]:
    state = await open_hub(estate.settings)
    try:
        yield state
    finally:
        await close_hub(state)


@pytest.fixture(scope="session")
async def client(estate: Estate) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(estate.settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
            yield http


async def graphql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST a GraphQL document; the HTTP answer must be 200 and JSON."""
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
