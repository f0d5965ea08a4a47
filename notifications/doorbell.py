"""Rings the live subscribers of a person on every process of the hub, once their
notifications are stored.

The doorbell carries no events, as the broker does not: it names the persons written for, and
each process wakes its own subscribers of them (broker.py), who read what is new from the hub
store. So the durable replay of `after` is unchanged, a lost ring delays a notification until
the subscriber's next poll (feed.py) but never loses or reorders one, and a spurious ring
costs one read.

Across processes the ring goes over Redis pub/sub (HUB_REDIS_URL), on a channel of the hub
store it is about. Without Redis, or while Redis does not answer, only this process's
subscribers are woken at once; the others read at their next poll, and every subscriber of
this process is woken when Redis answers again, in case a ring was missed meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterable

import orjson
from redis.exceptions import RedisError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from identity.store import HubStore
from notifications.broker import broker, store_key
from shared_state import SharedRedis

PIECE = "notification doorbell"
# How long one read of the channel waits before it checks the connection's health again.
LISTEN_SECONDS = 5.0


class RedisRing:
    """The channel of one hub store: rings published to it, and a task listening to it that
    wakes this process's subscribers of the persons named by other processes."""

    def __init__(self, shared: SharedRedis, store: HubStore) -> None:
        self.shared = shared
        self.store = store
        digest = hashlib.sha256(store_key(store).encode()).hexdigest()[:16]
        self.channel = shared.key("doorbell", digest)
        self.origin = uuid.uuid4().hex  # this process's own rings are not woken twice
        self.subscribed = asyncio.Event()

    async def publish(self, person_ids: list[int]) -> None:
        message = orjson.dumps({"from": self.origin, "persons": person_ids})
        try:
            await self.shared.client.publish(self.channel, message)
        except RedisError as error:
            self.shared.failed(PIECE, error)
            return
        self.shared.worked(PIECE)

    async def listen(self) -> None:
        """Until cancelled: subscribed to the channel, again and again while Redis fails."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((RedisError, OSError)),
            wait=wait_exponential(multiplier=0.1, max=5),
            before_sleep=lambda state: self._lost(state.outcome.exception() if state.outcome else None),
        )
        async for attempt in retrying:
            with attempt:
                await self._listen_once()

    def _lost(self, error: BaseException | None) -> None:
        self.subscribed.clear()
        self.shared.failed(PIECE, error or RedisError())

    async def _listen_once(self) -> None:
        pubsub = self.shared.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            if PIECE in self.shared.failing:
                broker.wake_all(self.store)  # rings may have been missed while Redis was away
            self.shared.worked(PIECE)
            self.subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=LISTEN_SECONDS)
                if message is not None and message.get("type") == "message":
                    self._wake(message["data"])
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped

    def _wake(self, data: bytes) -> None:
        try:
            ring = orjson.loads(data)
            persons = [int(p) for p in ring["persons"]]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return  # not a ring of this hub's: nothing to wake
        if ring.get("from") != self.origin:
            broker.wake(self.store, persons)


class Doorbell:
    """One per process, like the broker: the Redis ring of each hub store opened with one."""

    def __init__(self) -> None:
        self._rings: dict[str, RedisRing] = {}

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
    async def shared(self, store: HubStore, redis: SharedRedis) -> AsyncIterator[RedisRing]:
        """While the block runs, rings of this store reach, and come from, every process."""
        ring = RedisRing(redis, store)
        self._rings[store_key(store)] = ring
        listening = asyncio.get_running_loop().create_task(ring.listen())
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
