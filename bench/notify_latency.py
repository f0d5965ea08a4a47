"""How long a notification made by one process takes to reach a subscriber on another.

.venv/bin/python bench/notify_latency.py [--count 200] [--postgres] [--ring redis|postgres]

Seeds a small estate (SQLite files in a temporary directory, or PostgreSQL databases on
HUB_TEST_POSTGRES with `--postgres`; `--ring postgres` implies it), starts `hub run` (process
B) with its poll an hour away and, for `--ring redis` (the default), HUB_REDIS_URL
(HUB_BENCH_REDIS, default `redis://127.0.0.1:6379/14`, under a prefix of its own); for
`--ring postgres`, no Redis: the ring goes over the hub store's LISTEN/NOTIFY. It subscribes
to a cardholder's notifications on B over WebSocket. This process (A) then, `--count` times
one after another, stores a notification for that person with `notify` (its doorbell on the
same channel) and waits for it to arrive through B. Prints p50, p99 and the worst of the time
from `notify` being called to the event received: the store's write, the ring, B's read of
the store and its WebSocket message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from domain.records import CallerRole, NotificationKind
from identity.store import HubStore
from notifications import notify
from notifications.doorbell import doorbell
from settings import Settings
from shared_state import SharedRedis
from tests.clock import SAFETY_NET
from tests.conftest import AS_OF, caller_headers, global_ids, seed_estate
from tests.databases import postgres_settings
from tests.test_notifications import SUBSCRIBE
from tests.test_workers import Workers

REDIS_URL = os.environ.get("HUB_BENCH_REDIS", "redis://127.0.0.1:6379/14")
PERSON = 7


async def measure(settings: Settings, count: int, log: Path, redis: bool) -> list[float]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    channel = {"HUB_REDIS_URL": REDIS_URL, "HUB_REDIS_PREFIX": prefix} if redis else {}
    server = Workers(settings, 1, log, HUB_SUBSCRIPTION_POLL="3600", **channel)
    shared = SharedRedis(REDIS_URL, prefix) if redis else None
    store = HubStore.open(settings.store_url)
    try:
        await server.ready(1)
        token = caller_headers(settings, CallerRole.CARDHOLDER, person_id=PERSON)["Authorization"]
        url = server.url.replace("http://", "ws://") + "/graphql"
        async with (
            doorbell.across_processes(store, shared) as ring,
            connect(url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws,
        ):
            assert ring is not None, "no channel between processes"
            await asyncio.wait_for(ring.subscribed.wait(), SAFETY_NET)
            await ws.send(
                orjson.dumps({"type": "connection_init", "payload": {"Authorization": token}}).decode()
            )
            assert orjson.loads(await ws.recv())["type"] == "connection_ack"
            first = await notify(store, PERSON, NotificationKind.NEWS, "Bench: the position to resume from.")
            assert first is not None
            after = global_ids(settings).encode("Notification", first.key)
            subscribe = {"query": SUBSCRIBE, "variables": {"after": after}}
            await ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": subscribe}).decode())
            await notify(store, PERSON, NotificationKind.NEWS, "Bench: warm-up.")
            await asyncio.wait_for(ws.recv(), SAFETY_NET)  # replayed or rung: B listens now
            latencies = []
            for n in range(count):
                started = time.perf_counter()
                await notify(store, PERSON, NotificationKind.NEWS, f"Bench {n}.")
                message = orjson.loads(await asyncio.wait_for(ws.recv(), SAFETY_NET))
                latencies.append(time.perf_counter() - started)
                assert message["payload"]["data"]["notifications"]["message"] == f"Bench {n}."
        return latencies
    finally:
        server.stop()
        await store.close()
        if shared is not None:
            await shared.close()


async def run(count: int, postgres: bool, ring: str) -> None:
    with tempfile.TemporaryDirectory(prefix="notify-bench-") as directory:
        databases = None
        if postgres:
            settings, databases = await postgres_settings(Path(directory), AS_OF)
        else:
            settings = Settings.for_directory(Path(directory), fixed_today=AS_OF)
        try:
            await seed_estate(settings, 200, 1)
            latencies = await measure(settings, count, Path(directory) / "server.log", ring == "redis")
        finally:
            if databases is not None:
                await databases.drop()
    ms = sorted(seconds * 1000 for seconds in latencies)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    store = "PostgreSQL" if postgres else "SQLite"
    channel = "Redis pub/sub" if ring == "redis" else "PostgreSQL LISTEN/NOTIFY"
    print(
        f"cross-process notification, {channel}, hub store on {store}: {len(ms)} notifications, "
        f"p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, worst {ms[-1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--ring", choices=["redis", "postgres"], default="redis")
    args = parser.parse_args()
    asyncio.run(run(args.count, args.postgres or args.ring == "postgres", args.ring))


if __name__ == "__main__":
    main()
