"""Rings the live subscribers of a person on every process of the hub, once their
notifications are stored.

The doorbell carries no events, as the broker does not: it names the persons written for, and
each process wakes its own subscribers of them (broker.py), who read what is new from the hub
store. So the durable replay of `after` is unchanged, a lost ring delays a notification until
the subscriber's next poll (feed.py) but never loses or reorders one, and a spurious ring
costs one read.

Across processes the ring goes over Redis pub/sub (HUB_REDIS_URL), on a channel of the hub
store it is about; without Redis, over PostgreSQL's LISTEN/NOTIFY when the hub store is
PostgreSQL. While neither answers, only this process's subscribers are woken at once; the
others read at their next poll, and every subscriber of this process is woken when the
channel answers again, in case a ring was missed meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterable

import asyncpg
import orjson
from redis.exceptions import RedisError
from sqlalchemy import text
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from identity.store import HubStore
from notifications.broker import broker, store_key
from shared_state import SharedRedis

log = logging.getLogger("hub.doorbell")

PIECE = "notification doorbell"
# How long one read of the channel waits before it checks the connection's health again.
LISTEN_SECONDS = 5.0


class Ring:
    """The rings of one hub store across processes: published by this process, and a task
    listening for those of the others, which wakes this process's subscribers of the persons
    they name."""

    piece = PIECE
    failures: tuple[type[BaseException], ...] = (OSError,)  # what a lost connection raises

    def __init__(self, store: HubStore) -> None:
        self.store = store
        self.origin = uuid.uuid4().hex  # this process's own rings are not woken twice
        self.subscribed = asyncio.Event()
        self._failing = False

    async def publish(self, person_ids: list[int]) -> None:
        raise NotImplementedError

    async def _listen_once(self) -> None:
        """Subscribed until the connection fails (then raises)."""
        raise NotImplementedError

    async def listen(self) -> None:
        """Until cancelled: subscribed, again and again while the connection fails."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(self.failures),
            wait=wait_exponential(multiplier=0.1, max=5),
            before_sleep=lambda state: self._lost(state.outcome.exception() if state.outcome else None),
        )
        async for attempt in retrying:
            with attempt:
                await self._listen_once()

    def _lost(self, error: BaseException | None) -> None:
        self.subscribed.clear()
        self.failed(error or ConnectionError())

    def failed(self, error: BaseException) -> None:
        """A publish or the listening connection failed: said once, until it works again."""
        if not self._failing:
            self._failing = True
            self.report_failure(error)

    def report_failure(self, error: BaseException) -> None:
        log.warning("%s unreachable (%s): rings reach this process only", self.piece, type(error).__name__)

    def report_recovery(self) -> None:
        log.warning("%s answers again", self.piece)

    def listening(self) -> None:
        """Subscribed (again): every subscriber here reads once, in case a ring came before."""
        broker.wake_all(self.store)
        if self._failing:
            self._failing = False
            self.report_recovery()
        self.subscribed.set()

    def message(self, person_ids: list[int]) -> bytes | None:
        """A ring's payload; None when it names too many persons to fit (then it wakes all)."""
        return orjson.dumps({"from": self.origin, "persons": person_ids})

    def woken(self, data: bytes | str) -> None:
        try:
            ring = orjson.loads(data)
            everyone = ring.get("persons") is None
            persons = [] if everyone else [int(p) for p in ring["persons"]]
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            return  # not a ring of this hub's: nothing to wake
        if ring.get("from") == self.origin:
            return
        if everyone:
            broker.wake_all(self.store)
        else:
            broker.wake(self.store, persons)


class RedisRing(Ring):
    """Over Redis pub/sub, on a channel of the hub store (HUB_REDIS_URL)."""

    failures = (RedisError, OSError)

    def __init__(self, shared: SharedRedis, store: HubStore) -> None:
        super().__init__(store)
        self.shared = shared
        digest = hashlib.sha256(store_key(store).encode()).hexdigest()[:16]
        self.channel = shared.key("doorbell", digest)

    def report_failure(self, error: BaseException) -> None:
        self.shared.failed(PIECE, error)  # said there, and shown by /readyz

    def report_recovery(self) -> None:
        self.shared.worked(PIECE)

    async def publish(self, person_ids: list[int]) -> None:
        try:
            await self.shared.client.publish(self.channel, self.message(person_ids) or b"")
        except RedisError as error:
            self.failed(error)
        else:
            self.shared.worked(PIECE)

    async def _listen_once(self) -> None:
        pubsub = self.shared.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self.listening()
            while True:
                message = await pubsub.get_message(timeout=LISTEN_SECONDS)
                if message is not None and message.get("type") == "message":
                    self.woken(message["data"])
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped


class PostgresRing(Ring):
    """Over PostgreSQL's LISTEN/NOTIFY in the hub store's own database, when it is PostgreSQL
    and there is no Redis. A NOTIFY payload holds under 8000 bytes: a ring naming more persons
    than fit wakes every subscriber instead (a spurious wake costs one read)."""

    piece = "notification doorbell (PostgreSQL)"
    failures = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)
    channel = "hub_doorbell"
    MAX_PAYLOAD = 7900

    def message(self, person_ids: list[int]) -> bytes | None:
        payload = super().message(person_ids)
        return payload if payload is not None and len(payload) <= self.MAX_PAYLOAD else None

    async def publish(self, person_ids: list[int]) -> None:
        payload = self.message(person_ids) or orjson.dumps({"from": self.origin, "persons": None})
        try:
            async with self.store.engine.begin() as conn:
                await conn.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {
                        "channel": self.channel,
                        "payload": payload.decode(),
                    },
                )
        except Exception as error:  # a ring is best effort: the poll still reads what it missed
            self.failed(error)

    async def _listen_once(self) -> None:
        url = self.store.engine.url.set(drivername="postgresql")
        conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(self.channel, lambda _c, _pid, _channel, payload: self.woken(payload))
            self.listening()
            await lost.wait()
            raise ConnectionError("the listening connection closed")
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=LISTEN_SECONDS)


class Doorbell:
    """One per process, like the broker: the ring of each hub store opened with one."""

    def __init__(self) -> None:
        self._rings: dict[str, Ring] = {}

    async def ring(self, store: HubStore, person_ids: Iterable[int]) -> None:
        """Wake every subscriber of these persons on every process (call it once the
        notifications are committed)."""
        persons = sorted(set(person_ids))
        if not persons:
            return
        broker.wake(store, persons)
        shared = self._rings.get(store_key(store))
        if shared is not None:
            await shared.publish(persons)

    @contextlib.asynccontextmanager
    async def across_processes(
        self, store: HubStore, redis: SharedRedis | None
    ) -> AsyncIterator[Ring | None]:
        """While the block runs, rings of this store reach, and come from, every process: over
        Redis when there is one, else over PostgreSQL when the store is there, else (SQLite
        without Redis: one process) nowhere but here."""
        if redis is not None:
            ring: Ring = RedisRing(redis, store)
        elif store.engine.dialect.name == "postgresql":
            ring = PostgresRing(store)
        else:
            yield None
            return
        self._rings[store_key(store)] = ring
        listening = asyncio.get_running_loop().create_task(ring.listen())
        # A process listens before it serves, unless the channel does not answer soon.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ring.subscribed.wait(), LISTEN_SECONDS)
        try:
            yield ring
        finally:
            if self._rings.get(store_key(store)) is ring:
                del self._rings[store_key(store)]
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening


# One per process: every hub store opened in this process shares it.
doorbell = Doorbell()
