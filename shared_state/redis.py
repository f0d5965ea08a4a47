"""The Redis every process of one hub shares (HUB_REDIS_URL), its keys under one prefix
(HUB_REDIS_PREFIX, default `hub:`) so that several hubs, or a hub and other users, can share a
server.

Each shared piece (rate limits, persisted queries, subscription seats, the doorbell) calls
Redis itself and, when a call fails, falls back to what its process knows alone and reports it
here: the first failure of each piece is logged once (the error's type, never its message,
which may name hosts) until a call of that piece succeeds again. `/readyz` PINGs Redis itself
(operations/readiness.py)."""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger("hub.redis")

DEFAULT_PREFIX = "hub:"
# A call to Redis that takes longer than this is a failure: a slow Redis must not hold up
# requests that could be answered from the process's own state.
CALL_TIMEOUT = 2.0


class SharedRedis:
    """One client (a connection pool) per process, opened in the app's lifespan."""

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_timeout=CALL_TIMEOUT, socket_connect_timeout=CALL_TIMEOUT, health_check_interval=10
        )
        self._failing: set[str] = set()

    def key(self, *parts: object) -> str:
        """A key of this hub: `hub:limits`, `hub:documents`..."""
        return self.prefix + ":".join(str(part) for part in parts)

    def failed(self, piece: str, error: BaseException) -> None:
        """A piece's call failed: logged the first time since it last worked."""
        if piece not in self._failing:
            self._failing.add(piece)
            log.warning(
                "Redis unreachable for %s (%s): this process serves it alone until Redis answers",
                piece,
                type(error).__name__,
            )

    def worked(self, piece: str) -> None:
        """A piece's call succeeded again (logged once, when it had failed)."""
        if piece in self._failing:
            self._failing.discard(piece)
            log.warning("Redis answers again for %s: shared across processes once more", piece)

    async def ping(self) -> Any:
        return await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()
