"""Per-client rate limits (HUB_RATE_LIMIT, a moving window by the `limits` library), counted
for all processes of the hub together in Redis when HUB_REDIS_URL is set, so N processes admit
the limit and not N times it; in this process's memory otherwise.

When Redis does not answer, each process counts alone in its memory (a client may then get up
to N times the limit for as long as Redis is down) rather than refusing everyone."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from shared_state import SharedRedis

PIECE = "rate limits"


class RateLimits:
    """`retry_after(key)`: None when the client may go on, else the seconds to wait."""

    def __init__(self, rate_limit: str, shared: SharedRedis | None = None) -> None:
        self.limit: RateLimitItem = parse(rate_limit)
        self.shared = shared
        self.local = MovingWindowRateLimiter(MemoryStorage())
        self.everywhere: MovingWindowRateLimiter | None = None
        if shared is not None:
            storage: Storage = RedisStorage(
                f"async+{shared.url}",
                wrap_exceptions=True,
                implementation="redispy",
                key_prefix=shared.key("limits"),
                connection_pool=shared.client.connection_pool,  # type: ignore[arg-type]  # typed too narrowly
            )
            self.everywhere = MovingWindowRateLimiter(storage)

    async def retry_after(self, key: str) -> int | None:
        if self.everywhere is not None and self.shared is not None:
            try:
                wait = await self._retry_after(self.everywhere, key)
            except StorageError as error:
                self.shared.failed(PIECE, error.storage_error)
            else:
                self.shared.worked(PIECE)
                return wait
        return await self._retry_after(self.local, key)

    async def _retry_after(self, limiter: MovingWindowRateLimiter, key: str) -> int | None:
        if await limiter.hit(self.limit, key):
            return None
        stats = await limiter.get_window_stats(self.limit, key)
        return max(1, math.ceil(stats.reset_time - time.time()))
