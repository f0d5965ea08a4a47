"""The pieces of shared_state's Redis on their own, on a real Redis (skipped, with the reason,
where none answers): the persisted queries' bound, least recently used first out."""

from __future__ import annotations

import uuid

import pytest

from edge.documents import sha256_of
from edge.shared_documents import SharedDocuments
from shared_state import SharedRedis
from tests.test_many_processes import SHARED_REDIS
from tests.test_workers import redis_unavailable


async def test_shared_documents_keep_the_most_recently_used_within_their_bound() -> None:
    reason = redis_unavailable(SHARED_REDIS)
    if reason is not None:
        pytest.skip(reason)
    shared = SharedRedis(SHARED_REDIS, f"test-{uuid.uuid4().hex[:12]}:")
    try:
        documents = SharedDocuments(shared, limit=3)
        texts = [f"query Q{n} {{ __typename }}" for n in range(4)]
        for text in texts[:3]:
            await documents.keep(sha256_of(text), text)
        assert await documents.find(sha256_of(texts[0])) == texts[0]  # used: now the most recent
        await documents.keep(sha256_of(texts[3]), texts[3])  # one over the bound: Q1 goes
        assert await documents.find(sha256_of(texts[1])) is None
        for kept in (texts[0], texts[2], texts[3]):
            assert await documents.find(sha256_of(kept)) == kept
        assert await shared.client.hlen(shared.key("documents")) == 3
    finally:
        await shared.client.delete(shared.key("documents"), shared.key("documents", "used"))
        await shared.close()
