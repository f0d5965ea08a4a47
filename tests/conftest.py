"""Seeded estates on real databases, and the hub served through its ASGI app.

Every database test runs twice: on SQLite files and on PostgreSQL (skipped, with the reason,
only where no PostgreSQL server answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from access.policy import load_policy
from access.tokens import TOKEN_KEY, TokenAuthority
from adapters import Sources
from adapters.base import SourceBudget
from app import close_hub, create_app, open_hub
from domain.records import Agency, CallerRole
from estate import generate_estate
from identity.linking import LinkReport, link_estate
from identity.store import HubStore
from keys.files import load_or_create_key
from opaque.ids import GlobalIds
from opaque.sealing import sealer
from resolvers.hub import HubState
from schema import build_schema
from schema.agencies import DEFAULT_PARTS, GraphPart
from settings import Settings
from tests.clock import SAFETY_NET
from tests.databases import postgres_settings, postgres_unavailable

AS_OF = date(2026, 6, 15)
PERSONS = 240
SEED = 7


READ_EVERYTHING = Path(__file__).parent / "policies" / "read_everything.toml"

# Safety nets, not budgets: no source call or readiness probe of a healthy run comes near them,
# however loaded the machine (the default 2 s budget did, and answered SOURCE_UNAVAILABLE).
# Tests about budgets and probes set their own, on a clock they move (tests/clock.py).
UNHURRIED_BUDGET = SourceBudget(timeout=SAFETY_NET)
# The same for a `hub run` in a process of its own.
UNHURRIED_ENV = {"HUB_SOURCE_TIMEOUT": f"{SAFETY_NET:g}", "HUB_READY_TIMEOUT": f"{SAFETY_NET:g}"}


def unhurried(settings: Settings) -> Settings:
    """The settings with every source's budget and the readiness probe's bound at the safety net."""
    return replace(settings, source_budgets=dict.fromkeys(Agency, UNHURRIED_BUDGET), ready_timeout=SAFETY_NET)


def caller_headers(
    settings: Settings,
    role: CallerRole,
    purpose: str | None = None,
    *,
    ttl: timedelta = timedelta(hours=1),
    **bound: Any,
) -> dict[str, str]:
    """Headers of a caller with this role, declaring `purpose` (and allowed it by its token)."""
    authority = TokenAuthority(load_or_create_key(settings.data_dir, TOKEN_KEY))
    token = authority.issue(
        subject=f"test-{role.value.lower()}",
        role=role,
        purposes=(purpose,) if purpose else (),
        ttl=ttl,
        **bound,
    )
    # Always sent, empty for a role without purposes, so that it replaces a client's default.
    return {"Authorization": f"Bearer {token}", "X-Purpose": purpose or ""}


def global_ids(settings: Settings) -> GlobalIds:
    """The global ids the hub serving this data directory makes and reads."""
    return GlobalIds(sealer(settings.data_dir))


def person_id_of(settings: Settings, global_id: str) -> int:
    """The hub's person id behind a Person's global id."""
    return int(global_ids(settings).key_of(global_id, "Person", "id"))


def read_everything(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """The settings and headers of a caller that may read every field."""
    policy = replace(settings, policy_path=READ_EVERYTHING)
    return policy, caller_headers(settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")


@dataclass
class Estate:
    backend: str
    settings: Settings
    report: LinkReport

    def headers(self, role: CallerRole, purpose: str | None = None, **bound: Any) -> dict[str, str]:
        return caller_headers(self.settings, role, purpose, **bound)


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


BACKENDS = ["sqlite", "postgresql"]


@asynccontextmanager
async def fresh_estate(
    backend: str, data_dir: Path, persons: int = PERSONS, seed: int = SEED
) -> AsyncIterator[Estate]:
    """A newly seeded and linked estate on SQLite files or on PostgreSQL databases (skipped,
    with the reason, where no PostgreSQL server answers), dropped afterwards."""
    if backend == "sqlite":
        settings = unhurried(Settings.for_directory(data_dir, fixed_today=AS_OF))
        yield Estate(backend, settings, await seed_estate(settings, persons, seed))
        return
    reason = await postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    settings, databases = await postgres_settings(data_dir, AS_OF)
    settings = unhurried(settings)
    try:
        yield Estate(backend, settings, await seed_estate(settings, persons, seed))
    finally:
        await databases.drop()


@pytest.fixture(scope="session", params=BACKENDS)
async def estate(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Estate]:
    async with fresh_estate(request.param, tmp_path_factory.mktemp(f"estate-{request.param}")) as seeded:
        yield seeded


@pytest.fixture(scope="session")
async def hub(estate: Estate) -> AsyncIterator[HubState]:
    state = await open_hub(estate.settings, load_policy(build_schema()._schema, estate.settings.policy_path))
    try:
        yield state
    finally:
        await close_hub(state)


@dataclass(frozen=True)
class SentDocument:
    """A GraphQL request a test sent through `serve`, for the planned path's differential test
    (tests/test_planned.py) to replay: the hub's data directory, the body (as sent, and
    read), the caller's headers."""

    data_dir: Path
    content: bytes
    body: dict[str, Any]
    headers: dict[str, str]


# Every GraphQL request the suite sent through `serve`, in order (tests/test_planned.py runs last).
SENT_DOCUMENTS: list[SentDocument] = []
CALLER_HEADERS = ("authorization", "x-purpose", "x-case-reference", "x-restricted-until")


def recorder(data_dir: Path) -> Callable[[httpx.Request], Awaitable[None]]:
    async def record(request: httpx.Request) -> None:
        if request.method != "POST" or request.url.path != "/graphql":
            return
        try:
            body = orjson.loads(request.content)
        except (httpx.RequestNotRead, orjson.JSONDecodeError):
            return  # a streamed, broken or too deep body: a test of the HTTP layer, not of execution
        if isinstance(body, dict) and isinstance(body.get("query"), str):
            headers = {k: v for k, v in request.headers.items() if k.lower() in CALLER_HEADERS}
            SENT_DOCUMENTS.append(SentDocument(data_dir, request.content, body, headers))

    return record


@asynccontextmanager
async def serve(
    settings: Settings,
    headers: dict[str, str] | None = None,
    parts: Sequence[GraphPart] = DEFAULT_PARTS,
    record: bool = True,
) -> AsyncIterator[httpx.AsyncClient]:
    """The hub's ASGI app (of the settings' agencies, whose graph parts are `parts`), with its
    lifespan, behind an HTTP client that records every document it sends (SENT_DOCUMENTS)
    unless `record` is off (the replaying test's own clients)."""
    app = create_app(settings, parts=parts)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://hub",
            headers=headers,
            event_hooks={"request": [recorder(settings.data_dir)] if record else []},
        ) as http:
            yield http


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `replays_suite` run last, after every document they replay was sent."""
    items.sort(key=lambda item: item.get_closest_marker("replays_suite") is not None)


@pytest.fixture(scope="session")
async def client(estate: Estate) -> AsyncIterator[httpx.AsyncClient]:
    """The read graph as one caller that may read every field (tests/policies/read_everything.toml)."""
    async with serve(*read_everything(estate.settings)) as http:
        yield http


@pytest.fixture(scope="session")
async def policy_client(estate: Estate) -> AsyncIterator[httpx.AsyncClient]:
    """The hub under its real policy (policy.toml); every request brings its own token."""
    async with serve(estate.settings) as http:
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
