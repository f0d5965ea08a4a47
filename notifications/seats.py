"""How many subscriptions one person may hold at once (HUB_MAX_SUBSCRIPTIONS_PER_PERSON), over
every process of the hub.

With HUB_REDIS_URL each subscription takes a seat in a Redis sorted set of its person, scored
by when the seat lapses; a live subscription renews its seat every RENEW seconds, so the seats
of a process that died free themselves after LEASE seconds. Taking a seat is one Lua script,
which Redis runs atomically: lapsed seats go, and a seat is added only while fewer than the
limit remain. Without Redis, or while it does not answer, each process counts its own."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.errors import ErrorCode, Refusal
from shared_state import SharedRedis

PIECE = "subscription seats"
LEASE = 60.0
RENEW = LEASE / 3

# KEYS[1]: the person's seats; ARGV: now, the seat's lapse, the seat, the limit, the lease (ms).
TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


class TooManySubscriptions(Refusal):
    code = ErrorCode.TOO_MANY_SUBSCRIPTIONS

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Subscription limit reached: at most {limit} subscriptions at once per person "
            "(HUB_MAX_SUBSCRIPTIONS_PER_PERSON), on all connections together."
        )


class Seats:
    def __init__(self, limit: int, shared: SharedRedis | None = None) -> None:
        self.limit = limit
        self.shared = shared
        self.local: Counter[int] = Counter()
        self._take = shared.client.register_script(TAKE) if shared is not None else None

    @contextlib.asynccontextmanager
    async def seat(self, person_id: int) -> AsyncIterator[None]:
        """A seat for one subscription of the person while the block runs, or
        TooManySubscriptions."""
        seat = uuid.uuid4().hex
        shared = await self._take_shared(person_id, seat)
        if not shared:
            if self.local[person_id] >= self.limit:
                raise TooManySubscriptions(self.limit)
            self.local[person_id] += 1
            try:
                yield
            finally:
                self.local[person_id] -= 1
                if self.local[person_id] <= 0:
                    del self.local[person_id]
            return
        renewing = asyncio.get_running_loop().create_task(self._renew(person_id, seat))
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await self._quietly(self._client().zrem(self._key(person_id), seat))

    def _key(self, person_id: int) -> str:
        assert self.shared is not None
        return self.shared.key("seats", person_id)

    def _client(self) -> Redis:
        assert self.shared is not None
        return self.shared.client

    async def _take_shared(self, person_id: int, seat: str) -> bool:
        """Whether the seat was taken in Redis; False when Redis is not used or fails (the
        process counts alone then); TooManySubscriptions when every seat is held."""
        if self._take is None or self.shared is None:
            return False
        now = time.time()
        try:
            taken = await self._take(
                keys=[self._key(person_id)], args=[now, now + LEASE, seat, self.limit, int(LEASE * 2000)]
            )
        except RedisError as error:
            self.shared.failed(PIECE, error)
            return False
        self.shared.worked(PIECE)
        if not taken:
            raise TooManySubscriptions(self.limit)
        return True

    async def _renew(self, person_id: int, seat: str) -> None:
        while True:
            await asyncio.sleep(RENEW)
            renewal = self._client().zadd(self._key(person_id), {seat: time.time() + LEASE}, xx=True)
            await self._quietly(renewal)

    async def _quietly(self, call: Awaitable[object]) -> None:
        """A call whose failure only costs the seat its lease (it lapses by itself)."""
        assert self.shared is not None
        try:
            await call
        except RedisError as error:
            self.shared.failed(PIECE, error)
        else:
            self.shared.worked(PIECE)
