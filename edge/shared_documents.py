"""The automatic persisted queries of all processes of the hub, in Redis (HUB_REDIS_URL): a
hash of text by SHA-256 and a sorted set of when each was last kept or used, trimmed to the
most recent `limit` (edge/documents.py MAX_KEPT, the bound of each process's own memory too).

When Redis does not answer, a process runs what it kept itself; a document registered
elsewhere answers PERSISTED_QUERY_NOT_FOUND there, and the client (as the protocol has it)
sends it again with its text."""

from __future__ import annotations

import time

from redis.exceptions import RedisError

from shared_state import SharedRedis

PIECE = "persisted queries"


class SharedDocuments:
    def __init__(self, shared: SharedRedis, limit: int) -> None:
        self.shared = shared
        self.limit = limit
        self.texts = shared.key("documents")
        self.used = shared.key("documents", "used")

    async def keep(self, digest: str, text: str) -> None:
        """Kept for every process; the least recently kept beyond the bound are dropped."""
        try:
            async with self.shared.client.pipeline(transaction=True) as pipe:
                pipe.hset(self.texts, digest, text)
                pipe.zadd(self.used, {digest: time.time()})
                pipe.zcard(self.used)
                *_, count = await pipe.execute()
            if count > self.limit:
                oldest = await self.shared.client.zpopmin(self.used, count - self.limit)
                dropped = [pair[0] for pair in oldest]
                if dropped:
                    await self.shared.client.hdel(self.texts, *dropped)
        except RedisError as error:
            self.shared.failed(PIECE, error)
            return
        self.shared.worked(PIECE)

    async def find(self, digest: str) -> str | None:
        """The text kept under the hash by any process, or None (also when Redis is down)."""
        try:
            async with self.shared.client.pipeline(transaction=False) as pipe:
                pipe.hget(self.texts, digest)
                pipe.zadd(self.used, {digest: time.time()}, xx=True)  # used: kept the longer
                text, _ = await pipe.execute()
        except RedisError as error:
            self.shared.failed(PIECE, error)
            return None
        self.shared.worked(PIECE)
        return text.decode() if isinstance(text, bytes) else None
