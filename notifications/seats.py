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
from collections.abc import Awaitable

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


class Seat:
    """One subscription's seat: renewed from `hold` (once its stream runs) until `release`
    (which may be called more than once). A seat in Redis never held lapses by itself."""

    def __init__(self, seats: Seats, person_id: int, key: str | None) -> None:
        self.seats = seats
        self.person_id = person_id
        self.key = key  # the seat in Redis; None: counted by this process
        self.renewing: asyncio.Task[None] | None = None
        self.released = False

    def hold(self) -> None:
        if self.key is not None and self.renewing is None and not self.released:
            renewal = self.seats.renew(self.person_id, self.key)
            self.renewing = asyncio.get_running_loop().create_task(renewal)

    async def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.renewing is not None:
            self.renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.renewing
        if self.key is None:
            self.seats.local[self.person_id] -= 1
            if self.seats.local[self.person_id] <= 0:
                del self.seats.local[self.person_id]
        else:
            await self.seats.quietly(self.seats.redis().zrem(self.seats.key_of(self.person_id), self.key))


class Seats:
    def __init__(self, limit: int, shared: SharedRedis | None = None) -> None:
        self.limit = limit
        self.shared = shared
        self.local: Counter[int] = Counter()
        self._take = shared.client.register_script(TAKE) if shared is not None else None

    async def take(self, person_id: int) -> Seat:
        """A seat for one more subscription of the person, or TooManySubscriptions."""
        seat_key = uuid.uuid4().hex
        if await self._take_shared(person_id, seat_key):
            return Seat(self, person_id, seat_key)
        if self.local[person_id] >= self.limit:
            raise TooManySubscriptions(self.limit)
        self.local[person_id] += 1
        return Seat(self, person_id, None)

    def key_of(self, person_id: int) -> str:
        assert self.shared is not None
        return self.shared.key("seats", person_id)

    def redis(self) -> Redis:
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
                keys=[self.key_of(person_id)], args=[now, now + LEASE, seat, self.limit, int(LEASE * 2000)]
            )
        except RedisError as error:
            self.shared.failed(PIECE, error)
            return False
        self.shared.worked(PIECE)
        if not taken:
            raise TooManySubscriptions(self.limit)
        return True

    async def renew(self, person_id: int, seat: str) -> None:
        while True:
            await asyncio.sleep(RENEW)
            await self.quietly(
                self.redis().zadd(self.key_of(person_id), {seat: time.time() + LEASE}, xx=True)
            )

    async def quietly(self, call: Awaitable[object]) -> None:
        """A call whose failure only costs the seat its lease (it lapses by itself)."""
        assert self.shared is not None
        try:
            await call
        except RedisError as error:
            self.shared.failed(PIECE, error)
        else:
            self.shared.worked(PIECE)
