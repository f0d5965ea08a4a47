"""Notifications (DOMAIN.md workflow 7): stored in the hub store, listed by Person.notifications,
written once per expiring permit period by `hub notify` and the server's periodic check, and
pushed to the cardholder over graphql-transport-ws by a real uvicorn server, with what a client
missed replayed on reconnect."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from adapters import Sources
from app import create_app
from audit.log import AUDIT_KEY, AuditLog
from domain.records import CallerRole, NotificationKind, WorkPermit
from edge.websocket import refusal_of
from identity.store import NOTIFICATION, HubStore
from keys.files import load_or_create_key
from notifications import notify
from notifications.broker import broker
from notifications.expiry import WINDOW_DAYS, write_expiry_notices
from settings import Settings
from tests.clock import SAFETY_NET, ManualClock, until
from tests.conftest import AS_OF, caller_headers, global_ids, graphql, seed_estate, serve, unhurried
from tests.databases import postgres_settings, postgres_unavailable
from tests.servers import uvicorn_serving

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
PERSONS = 120
SEED = 23
PROTOCOL = Subprotocol("graphql-transport-ws")
SUBSCRIBE = (
    "subscription($after: String) { notifications(after: $after) "
    "{ id kind message at subject { id __typename } } }"
)
LISTING = (
    "{ me { notifications(first: 50) { edges { cursor node { id kind message at "
    "subject { __typename ... on WorkPermit { number validTo } ... on Person { id } } } } } } }"
)


# ------------------------------------------------------------------ estates


@pytest.fixture(scope="module")
async def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SQLite estate as of the hub clock, never written to: tests copy it."""
    data_dir = tmp_path_factory.mktemp("notify-pristine")
    await seed_estate(Settings.for_directory(data_dir, fixed_today=AS_OF), PERSONS, SEED)
    return data_dir


def copy_of(pristine: Path, tmp_path: Path) -> Settings:
    data_dir = tmp_path / "estate"
    shutil.copytree(pristine, data_dir)
    return unhurried(Settings.for_directory(data_dir, fixed_today=AS_OF))


@pytest.fixture(params=["sqlite", "postgresql"])
async def estate(request: pytest.FixtureRequest, pristine: Path, tmp_path: Path) -> AsyncIterator[Settings]:
    """A fresh estate of this test's own, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield copy_of(pristine, tmp_path)
        return
    reason = await postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    settings, databases = await postgres_settings(tmp_path, AS_OF)
    settings = unhurried(settings)
    try:
        await seed_estate(settings, PERSONS, SEED)
        yield settings
    finally:
        await databases.drop()


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[tuple[Sources, HubStore]]:
    sources = Sources.open(settings.source_urls)
    store = HubStore.open(settings.store_url)
    try:
        yield sources, store
    finally:
        await sources.close()
        await store.close()


async def expected_expiry(settings: Settings) -> dict[str, tuple[int, date]]:
    """XKID -> (person, validTo) of every current valid period ending within 30 days of the
    hub clock whose applicant is linked to a person."""
    async with opened(settings) as (sources, store):
        page = await sources.work_permits.expiring_permits(
            AS_OF, AS_OF + timedelta(days=WINDOW_DAYS), 1000, None
        )
        permits = [p for p in page.items if isinstance(p, WorkPermit)]
        assert len(permits) == len(page.items)  # every row reads as a permit
        persons = await store.person_ids_by_owner([("WP_SQR", p.owner) for p in permits])
    expected = {
        p.key: (person, p.valid_to)
        for p, person in zip(permits, persons, strict=True)
        if person is not None and p.valid_to is not None
    }
    assert expected, "the seeded estate has permits expiring within 30 days"
    assert all(AS_OF <= valid_to <= AS_OF + timedelta(days=30) for _, valid_to in expected.values())
    return expected


async def expiry_notices(settings: Settings) -> list[tuple[int, str, str]]:
    """(person, subject key, message) of every PERMIT_EXPIRING notification stored."""
    store = HubStore.open(settings.store_url)
    try:
        async with store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(NOTIFICATION.c.person_id, NOTIFICATION.c.subject_key, NOTIFICATION.c.message)
                    .where(NOTIFICATION.c.kind == NotificationKind.PERMIT_EXPIRING.value)
                    .order_by(NOTIFICATION.c.id)
                )
            ).all()
    finally:
        await store.close()
    return [(r.person_id, r.subject_key, r.message) for r in rows]


def cardholder(settings: Settings, person_id: int) -> dict[str, str]:
    return caller_headers(settings, CallerRole.CARDHOLDER, person_id=person_id)


# ------------------------------------------------------------------ stored and listed


async def test_an_emitted_notification_is_listed_newest_first_with_its_subject(estate: Settings) -> None:
    async with opened(estate) as (_sources, store):
        first = await notify(store, 3, NotificationKind.CARD_ISSUED, "Your card was issued.")
        second = await notify(
            store,
            3,
            "NEWS",
            "  New: the e-card shows your permit.  ",
            subject_type="Person",
            subject_key=3,
        )
        other = await notify(store, 4, NotificationKind.NEWS, "Someone else's news.")
        assert first and second and other and first.key < second.key < other.key
        assert second.message == "New: the e-card shows your permit." and second.at.tzinfo is not None
        with pytest.raises(ValueError, match="NotificationKind"):
            await notify(store, 3, "PARTY", "not a kind")
        with pytest.raises(ValueError, match="subject"):
            await notify(store, 3, "NEWS", "half a subject", subject_type="WorkPermit")
    async with serve(estate) as http:
        body = await graphql(http, LISTING, headers=cardholder(estate, 3))
        assert "errors" not in body, body["errors"]
        edges = body["data"]["me"]["notifications"]["edges"]
        assert [e["node"]["message"] for e in edges] == [
            "New: the e-card shows your permit.",
            "Your card was issued.",
        ]
        assert [e["node"]["kind"] for e in edges] == ["NEWS", "CARD_ISSUED"]
        assert edges[0]["node"]["id"] == global_ids(estate).encode("Notification", second.key)
        assert edges[0]["node"]["subject"] == {
            "__typename": "Person",
            "id": global_ids(estate).encode("Person", 3),
        }
        assert edges[1]["node"]["subject"] is None
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", edges[0]["node"]["at"])
        # Another cardholder reaches neither the list nor the node.
        other_id = global_ids(estate).encode("Notification", first.key)
        body = await graphql(
            http, "query($id: ID!) { node(id: $id) { id } }", {"id": other_id}, cardholder(estate, 4)
        )
        assert body["data"]["node"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_keyed_notification_is_written_once(estate: Settings) -> None:
    async with opened(estate) as (_sources, store):
        written = await notify(store, 5, "ENROLLED", "You are enrolled.", key="enrolled:5:run-1")
        again = await notify(store, 5, "ENROLLED", "You are enrolled.", key="enrolled:5:run-1")
        assert written is not None and again is None
        assert [n.key for n in await store.notifications_after(5, 0, 10)] == [written.key]


async def test_the_expiry_check_writes_each_expiring_period_once(estate: Settings) -> None:
    expected = await expected_expiry(estate)
    async with opened(estate) as (sources, store):
        first = await write_expiry_notices(sources, store, AS_OF)
        second = await write_expiry_notices(sources, store, AS_OF)
    assert first.written == len(expected) and first.already == 0
    assert second.written == 0 and second.already == len(expected)
    notices = await expiry_notices(estate)
    assert sorted((person, key) for person, key, _ in notices) == sorted(
        (person, key) for key, (person, _) in expected.items()
    )
    person, (key, valid_to) = next((p, (k, v)) for k, (p, v) in expected.items())
    async with serve(estate) as http:
        body = await graphql(http, LISTING, headers=cardholder(estate, person))
        assert "errors" not in body, body["errors"]
        nodes = [e["node"] for e in body["data"]["me"]["notifications"]["edges"]]
        notice = next(n for n in nodes if n["kind"] == "PERMIT_EXPIRING")
        assert notice["subject"]["__typename"] == "WorkPermit"
        assert notice["subject"]["validTo"] == valid_to.isoformat()
        assert notice["subject"]["number"] in notice["message"]
        assert valid_to.isoformat() in notice["message"]


def _hub(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HUB_DATA_DIR": str(settings.data_dir), "HUB_TODAY": AS_OF.isoformat()}
    return subprocess.run(
        [*HUB, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def test_hub_notify_writes_expiry_notices_once(pristine: Path, tmp_path: Path) -> None:
    settings = copy_of(pristine, tmp_path)
    expected = await expected_expiry(settings)
    runs = [_hub(settings, "notify"), _hub(settings, "notify")]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
    counts = [re.search(r"wrote (\d+) expiry notices", run.stdout) for run in runs]
    assert counts[0] and counts[1], [run.stdout for run in runs]
    assert (int(counts[0].group(1)), int(counts[1].group(1))) == (len(expected), 0)
    notices = await expiry_notices(settings)
    assert sorted(key for _, key, _ in notices) == sorted(expected)


async def test_the_server_checks_expiry_periodically_and_stops_cleanly(
    pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = copy_of(pristine, tmp_path)
    expected = await expected_expiry(settings)
    monkeypatch.setenv("HUB_NOTIFY_INTERVAL", "3600")
    clock = ManualClock()  # the interval passes when the test moves the hub's clock on
    app = create_app(replace(settings, clock=clock))
    async with asyncio.timeout(SAFETY_NET):  # stopping does not wait out the interval
        async with app.router.lifespan_context(app):
            task = app.state.expiry_check
            await clock.slept(1)  # the check at start has run and waits for the next
            assert len(await expiry_notices(settings)) == len(expected)
            for run in (2, 3):  # two more runs: nothing written twice
                clock.advance(3600)
                await clock.slept(run)
            assert len(await expiry_notices(settings)) == len(expected)
            assert not task.done()
    assert task.cancelled()
    monkeypatch.setenv("HUB_NOTIFY_INTERVAL", "0")
    assert create_app(settings) is not None  # 0 turns the check off
    monkeypatch.setenv("HUB_NOTIFY_INTERVAL", "soon")
    with pytest.raises(ValueError, match="HUB_NOTIFY_INTERVAL"):
        create_app(settings)


# ------------------------------------------------------------------ pushed over WebSocket


@dataclass
class Live:
    settings: Settings
    url: str
    http: str
    store: HubStore


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
async def live(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    """The hub served by a real uvicorn server in this process (so that `notify` here wakes its
    subscribers), on a copy of the estate, with the periodic expiry check off."""
    # Seats for more than strawberry's 100 per connection, whose limit a test reaches.
    settings = replace(copy_of(pristine, tmp_path_factory.mktemp("live")), max_subscriptions_per_person=200)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HUB_NOTIFY_INTERVAL", "0")
        app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    await until(lambda: server.started or serving.done(), "the server starts")
    assert not serving.done(), "the server did not start"
    store = HubStore.open(settings.store_url)
    try:
        yield Live(settings, f"ws://127.0.0.1:{port}/graphql", f"http://127.0.0.1:{port}/graphql", store)
    finally:
        await store.close()
        server.should_exit = True
        await asyncio.wait_for(serving, SAFETY_NET)


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection, seconds: float = SAFETY_NET) -> dict[str, Any]:
    frame = await asyncio.wait_for(ws.recv(), seconds)
    assert isinstance(frame, str), "graphql-transport-ws messages are text frames"
    message: dict[str, Any] = json.loads(frame)
    return message


async def nothing_more(ws: ClientConnection, live: Live, person_id: int, op: str = "1") -> None:
    """Nothing else is on its way: a notice written now is the very next message (the
    person's notifications are delivered in order), however long anything takes."""
    marker = await notify(live.store, person_id, "NEWS", "Nothing before this one.")
    assert marker is not None
    assert (await event(ws, op))["id"] == global_ids(live.settings).encode("Notification", marker.key)


@asynccontextmanager
async def connection(live: Live, payload: dict[str, Any]) -> AsyncIterator[ClientConnection]:
    """An acknowledged graphql-transport-ws connection."""
    async with connect(live.url, subprotocols=[PROTOCOL], open_timeout=SAFETY_NET) as ws:
        assert ws.subprotocol == PROTOCOL
        await send(ws, {"type": "connection_init", "payload": payload})
        assert await receive(ws) == {"type": "connection_ack"}
        yield ws


async def listening(live: Live, person_id: int, count: int = 1) -> None:
    """Wait until the server's subscription of the person listens (in this process's broker)."""
    await until(lambda: broker.listeners(live.store, person_id) == count, f"{count} subscriptions listening")


async def subscribe(
    ws: ClientConnection, live: Live, person_id: int, after: str | None = None, op: str = "1"
) -> None:
    before = broker.listeners(live.store, person_id)
    await send(
        ws, {"id": op, "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"after": after}}}
    )
    await listening(live, person_id, before + 1)


async def event(ws: ClientConnection, op: str = "1") -> dict[str, Any]:
    message = await receive(ws)
    assert message["type"] == "next" and message["id"] == op, message
    assert "errors" not in message["payload"], message
    node: dict[str, Any] = message["payload"]["data"]["notifications"]
    return node


def token(live: Live, person_id: int) -> str:
    return cardholder(live.settings, person_id)["Authorization"]


PERSON, OTHER = 7, 8


async def test_a_cardholder_receives_their_own_events_live(live: Live) -> None:
    async with connection(live, {"Authorization": token(live, PERSON)}) as ws:
        await subscribe(ws, live, PERSON)
        # Nothing written before the subscription is replayed: the first event is this one.
        mine = await notify(
            live.store,
            PERSON,
            "BENEFIT_PAID",
            "A benefit was paid.",
            subject_type="Person",
            subject_key=PERSON,
        )
        assert mine is not None
        got = await event(ws)
        assert got["id"] == global_ids(live.settings).encode("Notification", mine.key)
        assert (got["kind"], got["message"]) == ("BENEFIT_PAID", "A benefit was paid.")
        assert got["subject"] == {
            "id": global_ids(live.settings).encode("Person", PERSON),
            "__typename": "Person",
        }
        # Another person's event does not arrive; the next one of the person's own does.
        await notify(live.store, OTHER, "NEWS", "For someone else.")
        later = await notify(live.store, PERSON, "NEWS", "For you.")
        assert later is not None
        assert (await event(ws))["id"] == global_ids(live.settings).encode("Notification", later.key)
        await send(ws, {"id": "1", "type": "complete"})
        await listening(live, PERSON, 0)


async def test_deliveries_are_not_audited(live: Live) -> None:
    log = AuditLog.open(live.settings.audit_url, load_or_create_key(live.settings.data_dir, AUDIT_KEY))
    try:
        before = await log.counts()
        async with connection(live, {"Authorization": token(live, PERSON)}) as ws:
            await subscribe(ws, live, PERSON)
            await notify(live.store, PERSON, "NEWS", "Not in the access log.")
            assert (await event(ws))["message"] == "Not in the access log."
        await listening(live, PERSON, 0)
        assert await log.counts() == before
    finally:
        await log.close()


async def test_the_connection_ends_when_its_token_expires(pristine: Path, tmp_path: Path) -> None:
    """A hub of its own on a clock the test moves: the token expires when the clock passes its
    end, never while a slow machine is still setting the connection up."""
    clock = ManualClock()
    settings = replace(copy_of(pristine, tmp_path), clock=clock)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HUB_NOTIFY_INTERVAL", "0")
        app = create_app(settings)
    store = HubStore.open(settings.store_url)
    try:
        async with uvicorn_serving(app) as address:
            here = Live(settings, f"ws://{address}/graphql", f"http://{address}/graphql", store)
            an_hour = caller_headers(settings, CallerRole.CARDHOLDER, person_id=PERSON)
            async with connection(here, an_hour) as ws:
                await subscribe(ws, here, PERSON)
                clock.advance(timedelta(hours=1, seconds=1).total_seconds())
                with pytest.raises(ConnectionClosed):
                    await receive(ws)
                assert ws.close_code == 4403 and "expired" in (ws.close_reason or "")
            await listening(here, PERSON, 0)
    finally:
        await store.close()


async def test_a_reconnecting_client_receives_what_it_missed_in_order_once(live: Live) -> None:
    async with connection(live, {"authorization": token(live, PERSON)}) as ws:
        await subscribe(ws, live, PERSON)
        seen = await notify(live.store, PERSON, "PERMIT_CHANGED", "Your permit changed.")
        assert seen is not None
        last = (await event(ws))["id"]
    await listening(live, PERSON, 0)
    # While the client is away.
    missed = [await notify(live.store, PERSON, "NEWS", f"Missed {n}.") for n in (1, 2, 3)]
    await notify(live.store, OTHER, "NEWS", "Not yours.")
    async with connection(live, {"token": token(live, PERSON).removeprefix("Bearer ")}) as ws:
        await subscribe(ws, live, PERSON, after=last)
        replayed = [await event(ws) for _ in missed]
        assert [e["message"] for e in replayed] == ["Missed 1.", "Missed 2.", "Missed 3."]
        assert [e["id"] for e in replayed] == [
            global_ids(live.settings).encode("Notification", m.key) for m in missed if m
        ]
        live_one = await notify(live.store, PERSON, "CARD_ISSUED", "Your card was issued.")
        assert live_one is not None
        assert (await event(ws))["message"] == "Your card was issued."
        await nothing_more(ws, live, PERSON)  # none twice
    # The cursor of a Person.notifications edge resumes as well as a notification's id.
    async with httpx.AsyncClient(timeout=SAFETY_NET) as http:
        listed = await http.post(
            live.http, json={"query": LISTING}, headers=cardholder(live.settings, PERSON)
        )
        edges = listed.json()["data"]["me"]["notifications"]["edges"]
    cursor = next(e["cursor"] for e in edges if e["node"]["message"] == "Missed 2.")
    async with connection(live, {"Authorization": token(live, PERSON)}) as ws:
        await subscribe(ws, live, PERSON, after=cursor)
        assert [(await event(ws))["message"] for _ in range(3)] == [
            "Missed 3.",
            "Your card was issued.",
            "Nothing before this one.",
        ]
        await nothing_more(ws, live, PERSON)


async def test_two_subscribers_of_one_person_each_receive_every_event(live: Live) -> None:
    async with (
        connection(live, {"Authorization": token(live, PERSON)}) as first,
        connection(live, {"Authorization": token(live, PERSON)}) as second,
    ):
        await subscribe(first, live, PERSON)
        await subscribe(second, live, PERSON)
        written = await notify(live.store, PERSON, "RESIDENCE_PERMIT_ISSUED", "Residence permit issued.")
        assert written is not None
        assert (
            (await event(first))["message"] == (await event(second))["message"] == "Residence permit issued."
        )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({}, "Authorization"),
        ({"Authorization": "Bearer not-a-token"}, "not one this hub signed"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Authorization"),
        ({"token": ""}, "Authorization"),
    ],
)
async def test_a_missing_or_bad_token_is_refused_with_4403(
    live: Live, payload: dict[str, Any], reason: str
) -> None:
    async with connect(live.url, subprotocols=[PROTOCOL], open_timeout=SAFETY_NET) as ws:
        await send(ws, {"type": "connection_init", "payload": payload})
        with pytest.raises(ConnectionClosed):
            await receive(ws)
        assert ws.close_code == 4403
        assert ws.close_reason and reason in ws.close_reason


async def test_an_expired_token_is_refused(live: Live) -> None:
    expired = caller_headers(
        live.settings, CallerRole.CARDHOLDER, ttl=timedelta(seconds=-60), person_id=PERSON
    )
    async with connect(live.url, subprotocols=[PROTOCOL], open_timeout=SAFETY_NET) as ws:
        await send(ws, {"type": "connection_init", "payload": expired})
        with pytest.raises(ConnectionClosed):
            await receive(ws)
        assert ws.close_code == 4403 and "expired" in (ws.close_reason or "")


@pytest.mark.parametrize(
    ("role", "purpose"),
    [
        (CallerRole.EXIT_ENTRY, "entry-control"),
        (CallerRole.REPORTING, None),
        (CallerRole.DATA_PROTECTION_OFFICER, "complaint-handling"),
    ],
)
async def test_only_a_cardholder_may_subscribe(live: Live, role: CallerRole, purpose: str | None) -> None:
    headers = caller_headers(live.settings, role, purpose)
    async with connection(live, headers) as ws:
        await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        answer = await receive(ws)
        assert answer["type"] == "error" and answer["id"] == "1", answer
        assert answer["payload"][0]["extensions"]["code"] == "FORBIDDEN"
        assert "Subscription.notifications" in answer["payload"][0]["message"]


async def test_only_subscriptions_run_over_websocket(live: Live) -> None:
    async with connection(live, {"Authorization": token(live, PERSON)}) as ws:
        await send(ws, {"id": "q", "type": "subscribe", "payload": {"query": "{ me { id } }"}})
        answer = await receive(ws)
        assert answer["type"] == "error" and answer["payload"][0]["extensions"]["code"] == "BAD_REQUEST"
        huge = "subscription { notifications { id } }" + " " * 70_000
        await send(ws, {"id": "big", "type": "subscribe", "payload": {"query": huge}})
        answer = await receive(ws)
        assert answer["type"] == "error" and answer["payload"][0]["extensions"]["code"] == "QUERY_TOO_LARGE"
        aliased = "subscription { notifications { " + " ".join(f"a{n}: id" for n in range(31)) + " } }"
        await send(ws, {"id": "wide", "type": "subscribe", "payload": {"query": aliased}})
        answer = await receive(ws)
        assert answer["type"] == "error" and answer["payload"][0]["extensions"]["code"] == "TOO_MANY_ALIASES"
        await send(
            ws,
            {
                "id": "bad",
                "type": "subscribe",
                "payload": {"query": SUBSCRIBE, "variables": {"after": "nonsense"}},
            },
        )
        answer = await receive(ws)
        assert answer["type"] == "error", answer
        error = answer["payload"][0]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


def _fragments(count: int, body: str) -> str:
    """`count` fragments on Person; `body` names what fragment `i` holds ({i}, {next})."""
    return (
        " ".join(f"fragment F{i} on Person {{ {body.format(i=i, next=i + 1)} }}" for i in range(count))
        + f" fragment F{count} on Person {{ id }}"
    )


OVER_THE_LIMITS = {
    "cost": (
        "subscription { notifications { subject { ... on Person { "
        "entries(first: 100000) { edges { node { port } } } } } } }",
        "QUERY_TOO_COSTLY",
    ),
    "depth": (
        "subscription { notifications { subject { ... on Person { "
        + "workPermit { holder { " * 8
        + "id"
        + " } }" * 8
        + " } } } }",
        "QUERY_TOO_DEEP",
    ),
    "bomb": (
        "subscription { notifications { subject { ...F0 } } } " + _fragments(20, "...F{next} ...F{next}"),
        "QUERY_TOO_COMPLEX",
    ),
    "chain": (
        "subscription { notifications { subject { ...F0 } } } " + _fragments(100, "id ...F{next}"),
        "QUERY_TOO_COMPLEX",
    ),
    "cycle": (
        "subscription { notifications { subject { ...F0 } } } "
        "fragment F0 on Person { id ...F1 } fragment F1 on Person { id ...F0 }",
        "GRAPHQL_VALIDATION_FAILED",
    ),
}


@pytest.mark.parametrize("limit", sorted(OVER_THE_LIMITS))
async def test_a_document_over_a_limit_is_an_error_with_its_code(live: Live, limit: str) -> None:
    document, code = OVER_THE_LIMITS[limit]
    async with connection(live, {"Authorization": token(live, PERSON)}) as ws:
        await send(ws, {"id": "over", "type": "subscribe", "payload": {"query": document}})
        answer = await receive(ws)
        assert answer["type"] == "error" and answer["id"] == "over", answer
        assert [e["extensions"]["code"] for e in answer["payload"]] == [code], answer
        # The connection goes on serving; an error ended the operation: no `complete` follows.
        await subscribe(ws, live, PERSON)
        await nothing_more(ws, live, PERSON)
        await send(ws, {"id": "1", "type": "complete"})
    await listening(live, PERSON, 0)


async def test_the_whole_subscribe_payload_counts_against_the_size_limit(live: Live) -> None:
    limit = live.settings.limits.max_document_bytes
    async with connection(live, {"Authorization": token(live, PERSON)}) as ws:
        padding = {"after": "x" * (limit + 1)}
        await send(
            ws, {"id": "big", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": padding}}
        )
        answer = await receive(ws)
        assert answer["type"] == "error", answer
        assert answer["payload"][0]["extensions"] == {"code": "QUERY_TOO_LARGE"}
        assert str(limit) in answer["payload"][0]["message"]


async def test_the_subscription_limit_has_a_code(live: Live) -> None:
    async with connection(live, {"Authorization": token(live, OTHER)}) as ws:
        for n in range(100):  # strawberry's limit per connection
            await send(ws, {"id": str(n), "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        await listening(live, OTHER, 100)
        await send(ws, {"id": "one-more", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        answer = await receive(ws)
        assert answer["type"] == "error" and answer["id"] == "one-more", answer
        assert answer["payload"][0]["extensions"] == {"code": "TOO_MANY_SUBSCRIPTIONS"}
        assert "100" in answer["payload"][0]["message"]
    await listening(live, OTHER, 0)


async def test_a_person_holds_at_most_their_seats_over_all_connections(
    pristine: Path, tmp_path: Path
) -> None:
    """HUB_MAX_SUBSCRIPTIONS_PER_PERSON in one process without Redis (across processes:
    tests/test_many_processes.py): counted over the person's connections, freed when one ends."""
    settings = replace(copy_of(pristine, tmp_path), max_subscriptions_per_person=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HUB_NOTIFY_INTERVAL", "0")
        app = create_app(settings)
    async with uvicorn_serving(app) as address:
        store = HubStore.open(settings.store_url)
        seated = Live(settings, f"ws://{address}/graphql", f"http://{address}/graphql", store)
        payload = {"Authorization": token(seated, PERSON)}
        try:
            async with connection(seated, payload) as one, connection(seated, payload) as two:
                await subscribe(one, seated, PERSON)
                await subscribe(two, seated, PERSON)
                await send(two, {"id": "3", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
                answer = await receive(two)
                assert answer["type"] == "error" and answer["id"] == "3", answer
                assert answer["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
                assert "at most 2 subscriptions at once per person" in answer["payload"][0]["message"]
                await send(one, {"id": "1", "type": "complete"})
                await listening(seated, PERSON, 1)
                await subscribe(two, seated, PERSON, op="4")  # the seat let go is free again
        finally:
            await store.close()


async def test_json_nested_too_deeply_closes_with_4400(live: Live) -> None:
    async with connection(live, {"Authorization": token(live, PERSON)}) as ws:
        nested = "[" * 100_000 + "]" * 100_000
        await ws.send(
            '{"id": "deep", "type": "subscribe", "payload": {"query": "subscription { notifications { id } }", '
            f'"variables": {{"after": {nested}}}}}}}'
        )
        with pytest.raises(ConnectionClosed):
            await receive(ws)
        assert ws.close_code == 4400


def test_a_payload_too_deep_to_measure_is_a_bad_request() -> None:
    nested: list[Any] = []
    for _ in range(100_000):  # deeper than any JSON encoder recurses
        nested = [nested]
    refusal = refusal_of({"query": SUBSCRIBE, "variables": {"after": nested}}, 65536)
    assert refusal is not None and refusal["extensions"] == {"code": "BAD_REQUEST"}


async def test_subscriptions_end_with_their_connection(live: Live) -> None:
    async with connection(live, {"Authorization": token(live, OTHER)}) as ws:
        await subscribe(ws, live, OTHER)
        await subscribe(ws, live, OTHER, op="2")
    await listening(live, OTHER, 0)


async def test_websocket_needs_the_transport_ws_protocol(live: Live) -> None:
    # The legacy subscriptions-transport-ws protocol is not served (its handler would skip ours).
    async with connect(live.url, subprotocols=[Subprotocol("graphql-ws")], open_timeout=SAFETY_NET) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4406


async def test_the_server_stops_cleanly_with_subscribers_connected(
    pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = copy_of(pristine, tmp_path)
    monkeypatch.setenv("HUB_NOTIFY_INTERVAL", "0.5")
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    await until(lambda: server.started or serving.done(), "the server starts")
    assert not serving.done(), "the server did not start"
    store = HubStore.open(settings.store_url)
    here = Live(settings, f"ws://127.0.0.1:{port}/graphql", f"http://127.0.0.1:{port}/graphql", store)
    try:
        async with connection(here, {"Authorization": token(here, PERSON)}) as ws:
            await subscribe(ws, here, PERSON)
            server.should_exit = True
            with pytest.raises(ConnectionClosed):
                await receive(ws)
            await asyncio.wait_for(serving, SAFETY_NET)
        assert app.state.expiry_check.cancelled()
        assert broker.listeners(store, PERSON) == 0
    finally:
        server.should_exit = True
        await store.close()


# ---------------------------------------------------------------- standard clients


def _gql_transport(live: Live, person_id: int) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=live.url,
        init_payload={"Authorization": token(live, person_id)},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        connect_timeout=SAFETY_NET,
        ack_timeout=SAFETY_NET,
    )


async def test_the_gql_client_receives_live_then_what_it_missed_oldest_first(live: Live) -> None:
    """The Python `gql` client's websockets transport, as an app would use it: live delivery, a
    disconnect, and a reconnect with `after` replaying exactly the missed ones."""
    ids = global_ids(live.settings)
    before = broker.listeners(live.store, PERSON)
    async with Client(transport=_gql_transport(live, PERSON)) as session:
        stream = session.subscribe(GraphQLRequest(SUBSCRIBE, variable_values={"after": None}))
        first = asyncio.ensure_future(anext(stream))
        await listening(live, PERSON, before + 1)
        live_notice = await notify(live.store, PERSON, NotificationKind.NEWS, "Seen live by gql.")
        assert live_notice is not None
        received = (await asyncio.wait_for(first, SAFETY_NET))["notifications"]
        assert received["id"] == ids.encode("Notification", live_notice.key)
        assert received["message"] == "Seen live by gql."
        await stream.aclose()
    await listening(live, PERSON, before)  # the disconnect ended the server's subscription
    missed = [
        await notify(live.store, PERSON, NotificationKind.NEWS, f"Missed by gql {n}.") for n in range(3)
    ]
    async with Client(transport=_gql_transport(live, PERSON)) as session:
        stream = session.subscribe(GraphQLRequest(SUBSCRIBE, variable_values={"after": received["id"]}))
        replayed = [(await asyncio.wait_for(anext(stream), SAFETY_NET))["notifications"] for _ in missed]
        await stream.aclose()
    assert [r["id"] for r in replayed] == [ids.encode("Notification", m.key) for m in missed if m]
    assert [r["message"] for r in replayed] == ["Missed by gql 0.", "Missed by gql 1.", "Missed by gql 2."]


CLIENTS = Path(__file__).parent / "clients"


def _node_client_unavailable() -> str | None:
    if shutil.which("node") is None:
        return "Node.js is not installed (the graphql-ws client test needs `node`)"
    if not (CLIENTS / "node_modules" / "graphql-ws").is_dir():
        return "tests/clients has no node_modules: run `npm ci --prefix tests/clients` (.ci/run does)"
    return None


async def _node_lines(process: asyncio.subprocess.Process, count: int) -> list[dict[str, Any]]:
    assert process.stdout is not None
    lines: list[dict[str, Any]] = []
    while len(lines) < count:
        line = await asyncio.wait_for(process.stdout.readline(), SAFETY_NET)
        assert line, "the graphql-ws client ended early"
        lines.append(json.loads(line))
    return lines


async def _graphql_ws_client(live: Live, after: str | None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "node",
        str(CLIENTS / "subscribe.mjs"),
        live.url,
        token(live, PERSON),
        SUBSCRIBE,
        after or "",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_the_javascript_graphql_ws_client_receives_live_then_what_it_missed(live: Live) -> None:
    """The `graphql-ws` JavaScript client (what web and React Native apps use), run by Node."""
    reason = _node_client_unavailable()
    if reason is not None:
        pytest.skip(reason)
    ids = global_ids(live.settings)
    before = broker.listeners(live.store, PERSON)
    client = await _graphql_ws_client(live, None)
    try:
        await listening(live, PERSON, before + 1)
        live_notice = await notify(live.store, PERSON, NotificationKind.NEWS, "Seen live by graphql-ws.")
        assert live_notice is not None
        (received,) = await _node_lines(client, 1)
    finally:
        client.kill()
        await client.wait()
    assert received["data"]["notifications"]["id"] == ids.encode("Notification", live_notice.key)
    await listening(live, PERSON, before)
    missed = [
        await notify(live.store, PERSON, NotificationKind.NEWS, f"Missed by graphql-ws {n}.")
        for n in range(2)
    ]
    client = await _graphql_ws_client(live, received["data"]["notifications"]["id"])
    try:
        replayed = await _node_lines(client, len(missed))
    finally:
        client.kill()
        await client.wait()
    assert [r["data"]["notifications"]["id"] for r in replayed] == [
        ids.encode("Notification", m.key) for m in missed if m
    ]


async def test_the_legacy_graphql_ws_protocol_is_refused_clearly(live: Live) -> None:
    """Apollo's old `graphql-ws` subprotocol is not spoken: the handshake offers only
    graphql-transport-ws, and a client insisting on the old one is closed with 4406."""
    async with connect(live.url, subprotocols=[Subprotocol("graphql-ws")], open_timeout=SAFETY_NET) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), SAFETY_NET)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4406
    assert "graphql-transport-ws" in closed.value.rcvd.reason
