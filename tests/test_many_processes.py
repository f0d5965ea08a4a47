"""Two real `hub run` processes on one estate and one Redis (HUB_REDIS_URL) share what each
used to keep alone: a client's rate limit, the persisted queries, the live subscriptions'
wake-ups and the subscription seats of a person; `/readyz` reports Redis. Run on SQLite and on
PostgreSQL (skipped, with the reason, where no server answers; so is all of it where no Redis
server answers)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from access.tokens import TOKEN_KEY, TokenAuthority
from domain.records import CallerRole
from keys.files import load_or_create_key
from settings import Settings
from tests.clock import SAFETY_NET, until
from tests.conftest import BACKENDS, fresh_estate
from tests.servers import free_port
from tests.test_news import PUBLISH, signed_persons
from tests.test_notifications import SUBSCRIBE
from tests.test_workers import Workers, redis_unavailable

# Redis database 12: the suite's own, apart from tests/test_workers.py's 15; every run's keys
# carry a prefix of their own besides.
SHARED_REDIS = os.environ.get("HUB_TEST_SHARED_REDIS", "redis://127.0.0.1:6379/12")
RATE = 20  # requests per client per hour: the test sends twice as many, half through each process
SEATS = 3
READ = "{ __typename }"
MY_LATEST = "{ me { notifications(first: 1) { edges { node { id message } } } } }"


@dataclass
class Pair:
    settings: Settings
    a: Workers
    b: Workers
    env: dict[str, str]  # what both were started with

    def token(self, role: CallerRole, purpose: str | None = None, **bound: Any) -> str:
        """A token of a client of its own (its rate limit untouched by the other tests)."""
        authority = TokenAuthority(load_or_create_key(self.settings.data_dir, TOKEN_KEY))
        subject = f"many-{role.value.lower()}-{uuid.uuid4().hex[:8]}"
        purposes = (purpose,) if purpose else ()
        return authority.issue(subject=subject, role=role, purposes=purposes, ttl=timedelta(hours=1), **bound)


def hub_process(settings: Settings, log: Path, **extra: str) -> Workers:
    return Workers(settings, 1, log, **extra)


@contextmanager
def stopped_at_end(*servers: Workers) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait()


@asynccontextmanager
async def two_processes(settings: Settings, directory: Path, **env: str) -> AsyncIterator[Pair]:
    """Two `hub run` processes, each on a port of its own, over one estate."""
    a = hub_process(settings, directory / "a.log", **env)
    with stopped_at_end(a):
        await a.ready(1)  # one at a time: each opens (and recovers) the stores at start
        b = hub_process(settings, directory / "b.log", **env)
        with stopped_at_end(b):
            await b.ready(1)
            yield Pair(settings, a, b, env)
            assert b.stop() == 0
        assert a.stop() == 0


@pytest.fixture(scope="module", params=BACKENDS)
async def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pair]:
    """Two processes over one estate and one Redis."""
    reason = redis_unavailable(SHARED_REDIS)
    if reason is not None:
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp(f"many-{request.param}")
    async with fresh_estate(request.param, directory, 120, 9) as estate:
        shared = {
            "HUB_REDIS_URL": SHARED_REDIS,
            "HUB_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:12]}:",
            "HUB_RATE_LIMIT": f"{RATE}/hour",
            "HUB_MAX_SUBSCRIPTIONS_PER_PERSON": str(SEATS),
            # No subscriber reads the store by itself within a test: only a ring wakes it.
            "HUB_SUBSCRIPTION_POLL": "3600",
        }
        async with two_processes(estate.settings, directory, **shared) as both:
            yield both


async def post(server: Workers, token: str, body: dict[str, Any], purpose: str = "") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": purpose}
    async with httpx.AsyncClient(base_url=server.url, timeout=SAFETY_NET) as http:
        return await http.post("/graphql", json=body, headers=headers)


async def publish(pair: Pair, message: str) -> None:
    """News to every person with a signed e-card, published through process A."""
    token = pair.token(CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    answer = await post(
        pair.a,
        token,
        {"query": PUBLISH, "variables": {"input": {"message": message}}},
        "permit-administration",
    )
    body = answer.json()
    assert answer.status_code == 200 and "errors" not in body, body
    assert body["data"]["publishNews"]["userErrors"] == []


async def latest_of(server: Workers, token: str) -> dict[str, str]:
    """The person's newest notification, as `Person.notifications` lists it."""
    body = (await post(server, token, {"query": MY_LATEST})).json()
    assert "errors" not in body, body
    node: dict[str, str] = body["data"]["me"]["notifications"]["edges"][0]["node"]
    return node


async def a_signed_person(pair: Pair, index: int) -> int:
    """A person who receives news (a signed e-card); each test its own."""
    persons = sorted(await signed_persons(pair.settings))
    assert len(persons) > index, "the estate has enough persons with a signed e-card"
    return persons[index]


def ws_url(server: Workers) -> str:
    return server.url.replace("http://", "ws://") + "/graphql"


@asynccontextmanager
async def subscribed(server: Workers, token: str) -> AsyncIterator[AsyncClientSession]:
    """A `gql` WebSocket session (graphql-transport-ws) with the process, as an app holds one."""
    transport = WebsocketsTransport(
        url=ws_url(server),
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        connect_timeout=SAFETY_NET,
        ack_timeout=SAFETY_NET,
    )
    async with Client(transport=transport) as session:
        yield session


async def next_message(stream: AsyncIterator[dict[str, Any]]) -> str:
    event = await asyncio.wait_for(anext(stream), SAFETY_NET)
    message: str = event["notifications"]["message"]
    return message


# ------------------------------------------------------------------------------- the tests


async def test_the_rate_limit_holds_across_processes(pair: Pair) -> None:
    """A client sending through both processes is admitted the limit, not twice it."""
    token = pair.token(CallerRole.INTEGRATION_DEVELOPER)
    statuses = [
        (await post(pair.a if n % 2 else pair.b, token, {"query": READ})).status_code for n in range(2 * RATE)
    ]
    assert statuses.count(200) == RATE, statuses
    assert statuses.count(429) == RATE
    assert statuses[:RATE] == [200] * RATE  # the first come are served, whichever process took them
    refused = await post(pair.a, token, {"query": READ})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_a_persisted_query_registered_through_one_process_runs_by_its_hash_on_the_other(
    pair: Pair,
) -> None:
    token = pair.token(CallerRole.INTEGRATION_DEVELOPER)
    document = f"query Shared{uuid.uuid4().hex[:8]} {{ __typename }}"
    by_hash = {
        "extensions": {
            "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(document.encode()).hexdigest()}
        }
    }
    unknown = (await post(pair.b, token, by_hash)).json()
    assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = (await post(pair.a, token, {"query": document, **by_hash})).json()
    assert registered == {"data": {"__typename": "Query"}}
    assert (await post(pair.b, token, by_hash)).json() == {"data": {"__typename": "Query"}}


async def test_news_through_one_process_reaches_a_subscriber_on_the_other_and_a_reconnect_replays_the_missed(
    pair: Pair,
) -> None:
    """Process B's subscriber is woken by A's ring over Redis at once (its poll is an hour
    away), and a reconnect with `after` replays exactly what it missed, in order."""
    await news_reach_the_other_process(pair, await a_signed_person(pair, 0))


async def test_without_redis_news_rings_across_processes_over_postgresql(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Hub store on PostgreSQL and no Redis: the ring goes over LISTEN/NOTIFY."""
    directory = tmp_path_factory.mktemp("many-listen-notify")
    async with (
        fresh_estate("postgresql", directory, 120, 9) as estate,
        two_processes(estate.settings, directory, HUB_SUBSCRIPTION_POLL="3600") as both,
    ):
        await news_reach_the_other_process(both, await a_signed_person(both, 0))


async def news_reach_the_other_process(pair: Pair, person: int) -> None:
    token = pair.token(CallerRole.CARDHOLDER, person_id=person)
    run = uuid.uuid4().hex[:6]
    await publish(pair, f"{run} before")
    before = await latest_of(pair.b, token)
    assert before["message"] == f"{run} before"
    await publish(pair, f"{run} seen")
    async with subscribed(pair.b, token) as session:
        stream = session.subscribe(GraphQLRequest(SUBSCRIBE, variable_values={"after": before["id"]}))
        # Replayed first: so B's subscription is listening before the next news is written.
        assert await next_message(stream) == f"{run} seen"
        await publish(pair, f"{run} live")
        assert await next_message(stream) == f"{run} live"
        await stream.aclose()
    live = await latest_of(pair.b, token)
    missed = [f"{run} missed {n}" for n in range(3)]
    for message in missed:
        await publish(pair, message)
    async with subscribed(pair.b, token) as session:
        stream = session.subscribe(GraphQLRequest(SUBSCRIBE, variable_values={"after": live["id"]}))
        assert [await next_message(stream) for _ in missed] == missed
        await publish(pair, f"{run} after")
        assert await next_message(stream) == f"{run} after"  # nothing repeated, nothing between
        await stream.aclose()


async def test_the_subscription_seats_of_a_person_are_counted_over_both_processes(pair: Pair) -> None:
    person = await a_signed_person(pair, 1)
    token = pair.token(CallerRole.CARDHOLDER, person_id=person)
    run = uuid.uuid4().hex[:6]
    await publish(pair, f"{run} first")
    await publish(pair, f"{run} second")
    first = await latest_of(pair.a, token)
    assert first["message"] == f"{run} second"
    # The position before the newest: each seated subscription proves itself by replaying it.
    body = (
        await post(pair.a, token, {"query": "{ me { notifications(first: 2) { edges { node { id } } } } }"})
    ).json()
    after = body["data"]["me"]["notifications"]["edges"][1]["node"]["id"]
    request = GraphQLRequest(SUBSCRIBE, variable_values={"after": after})

    async def seated(server: Workers) -> tuple[AsyncClientSession, AsyncIterator[dict[str, Any]], Any]:
        context = subscribed(server, token)
        session = await context.__aenter__()
        stream = session.subscribe(request)
        assert await next_message(stream) == f"{run} second"
        return session, stream, context

    held = [await seated(pair.a), await seated(pair.b), await seated(pair.a)]
    async with subscribed(pair.b, token) as session:
        with pytest.raises(TransportQueryError) as refused:
            await asyncio.wait_for(anext(session.subscribe(request)), SAFETY_NET)
    error = refused.value.errors[0] if refused.value.errors else {}
    assert error.get("extensions", {}).get("code") == "TOO_MANY_SUBSCRIPTIONS", refused.value
    assert f"at most {SEATS}" in error["message"]
    # One let go on A: its seat frees for a subscription on B.
    _session, stream, context = held.pop(0)
    await stream.aclose()  # type: ignore[attr-defined]
    await context.__aexit__(None, None, None)

    async def seat_on_b() -> bool:
        try:
            async with subscribed(pair.b, token) as session:
                stream = session.subscribe(request)
                return await next_message(stream) == f"{run} second"
        except TransportQueryError:
            return False

    async with asyncio.timeout(SAFETY_NET):
        while not await seat_on_b():
            pass  # the server frees the seat once it has seen the socket close
    for _session, stream, context in held:
        await stream.aclose()  # type: ignore[attr-defined]
        await context.__aexit__(None, None, None)


async def test_readyz_reports_redis_on_every_process(pair: Pair) -> None:
    for server in (pair.a, pair.b):
        async with httpx.AsyncClient(base_url=server.url, timeout=SAFETY_NET) as http:
            answer = await http.get("/readyz")
        body = answer.json()
        assert answer.status_code == 200 and body["redis"]["status"] == "up", body
        assert body["status"] == "ready"


async def test_without_redis_answering_a_process_serves_alone_and_readyz_says_so(
    pair: Pair, tmp_path: Path
) -> None:
    """Redis configured but not answering: requests are still served (limits counted by the
    process), `/readyz` is degraded naming Redis down, and the log says it once."""
    nowhere = f"redis://127.0.0.1:{free_port()}/12"
    log = tmp_path / "alone.log"
    alone = hub_process(pair.settings, log, HUB_REDIS_URL=nowhere, HUB_RATE_LIMIT=f"{RATE}/hour")
    with stopped_at_end(alone):
        await alone.ready(1)
        token = pair.token(CallerRole.INTEGRATION_DEVELOPER)
        statuses = [(await post(alone, token, {"query": READ})).status_code for _ in range(RATE + 1)]
        assert statuses == [200] * RATE + [429]  # the limit still holds, in this process
        # Persisted queries: those this process kept.
        developer = pair.token(CallerRole.INTEGRATION_DEVELOPER)
        document = f"query Alone{uuid.uuid4().hex[:8]} {{ __typename }}"
        digest = hashlib.sha256(document.encode()).hexdigest()
        by_hash = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
        assert (await post(alone, developer, {"query": document, **by_hash})).status_code == 200
        assert (await post(alone, developer, by_hash)).json() == {"data": {"__typename": "Query"}}
        async with httpx.AsyncClient(base_url=alone.url, timeout=SAFETY_NET) as http:
            ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded" and ready.json()["redis"]["status"] == "down"
        await until(lambda: "Redis unreachable for rate limits" in log.read_text(), "the log says so")
        assert log.read_text().count("Redis unreachable for rate limits") == 1
        assert alone.stop() == 0


class RedisLink:
    """A TCP link to Redis that the test cuts and mends: a process connected through it loses
    Redis as if the server went away, while the other processes keep it."""

    def __init__(self, target: str) -> None:
        host_port = target.split("//", 1)[1].split("/", 1)[0]
        self.host, _, port = host_port.rpartition(":")
        self.target_port = int(port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{SHARED_REDIS.rsplit('/', 1)[1]}"

    async def mend(self) -> None:
        self.server = await asyncio.start_server(self._carry, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.target_port)
        self.writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.close()
                self.writers.discard(sink)

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def test_a_process_that_loses_redis_degrades_and_catches_up_when_it_is_back(
    pair: Pair, tmp_path: Path
) -> None:
    """Process C reaches Redis through a link the test cuts: /readyz says Redis is down, news
    rung meanwhile does not reach C's subscriber at once (pub/sub keeps nothing), and once the
    link is mended C subscribes again and wakes its subscribers, who read what they missed."""
    link = RedisLink(SHARED_REDIS)
    await link.mend()
    c = hub_process(pair.settings, tmp_path / "c.log", **{**pair.env, "HUB_REDIS_URL": link.url()})
    with stopped_at_end(c):
        await c.ready(1)
        person = await a_signed_person(pair, 2)
        token = pair.token(CallerRole.CARDHOLDER, person_id=person)
        run = uuid.uuid4().hex[:6]
        await publish(pair, f"{run} before")
        before = await latest_of(c, token)
        await publish(pair, f"{run} seen")
        async with subscribed(c, token) as session:
            stream = session.subscribe(GraphQLRequest(SUBSCRIBE, variable_values={"after": before["id"]}))
            assert await next_message(stream) == f"{run} seen"
            await link.cut()
            async with httpx.AsyncClient(base_url=c.url, timeout=SAFETY_NET) as http:
                ready = (await http.get("/readyz")).json()
            assert ready["status"] == "degraded" and ready["redis"]["status"] == "down", ready
            await publish(pair, f"{run} while cut")  # through A, whose Redis is whole
            await link.mend()
            assert await next_message(stream) == f"{run} while cut"
            await stream.aclose()
        async with httpx.AsyncClient(base_url=c.url, timeout=SAFETY_NET) as http:
            await until_ready(http)
        assert c.stop() == 0
    await link.cut()


async def until_ready(http: httpx.AsyncClient) -> None:
    """Until /readyz says ready again (Redis answers through the mended link)."""
    async with asyncio.timeout(SAFETY_NET):
        # Redis is probed by /readyz itself; there is no event to wait for instead.
        while (await http.get("/readyz")).json()["status"] != "ready":  # noqa: ASYNC110
            await asyncio.sleep(0.05)
