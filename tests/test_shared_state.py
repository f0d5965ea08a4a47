"""The settings of what the processes share, and its pieces on their own: the persisted
queries' bound on a real Redis (skipped, with the reason, where none answers), least recently
used first out; the doorbell over PostgreSQL with more persons than a NOTIFY holds."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import pytest

from edge.documents import sha256_of
from edge.shared_documents import SharedDocuments
from identity.store import HubStore
from notifications.broker import broker
from notifications.doorbell import PostgresRing
from settings import Settings
from shared_state import SharedRedis
from tests.clock import SAFETY_NET
from tests.conftest import AS_OF
from tests.databases import postgres_settings, postgres_unavailable
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


def test_the_shared_settings_are_read_and_checked() -> None:
    env = {
        "HUB_REDIS_URL": "redis://cache:6379/3",
        "HUB_REDIS_PREFIX": "hub-a:",
        "HUB_MAX_SUBSCRIPTIONS_PER_PERSON": "4",
        "HUB_SUBSCRIPTION_POLL": "2.5",
    }
    settings = Settings.from_environment(env)
    assert (settings.redis_url, settings.redis_prefix) == ("redis://cache:6379/3", "hub-a:")
    assert (settings.max_subscriptions_per_person, settings.subscription_poll) == (4, 2.5)
    defaults = Settings.from_environment({})
    assert (defaults.redis_url, defaults.redis_prefix) == (None, "hub:")
    assert (defaults.max_subscriptions_per_person, defaults.subscription_poll) == (10, 30.0)
    for name, value in [
        ("HUB_MAX_SUBSCRIPTIONS_PER_PERSON", "0"),
        ("HUB_MAX_SUBSCRIPTIONS_PER_PERSON", "many"),
        ("HUB_SUBSCRIPTION_POLL", "0"),
        ("HUB_SUBSCRIPTION_POLL", "soon"),
    ]:
        with pytest.raises(ValueError, match=name):
            Settings.from_environment({name: value})


async def test_a_postgresql_ring_naming_more_persons_than_fit_wakes_every_subscriber(tmp_path: Path) -> None:
    """NOTIFY holds under 8000 bytes: news to a city's thousands wakes every subscriber of the
    other process (each reads once) rather than none."""
    reason = await postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    settings, databases = await postgres_settings(tmp_path, AS_OF)
    store = HubStore.open(settings.store_url)
    try:
        sender, listener = PostgresRing(store), PostgresRing(store)  # two processes' rings
        listening = asyncio.get_running_loop().create_task(listener.listen())
        try:
            await asyncio.wait_for(listener.subscribed.wait(), SAFETY_NET)
            with broker.listen(store, 5) as named, broker.listen(store, 90_000) as unnamed:
                many = list(range(1, 3000))
                assert sender.message(many) is None  # too many to name
                await sender.publish(many)
                assert await unnamed.wait(SAFETY_NET), "a ring too big to name wakes everyone"
                named.clear()
                await sender.publish([5])
                assert await named.wait(SAFETY_NET)
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
    finally:
        await store.close()
        await databases.drop()
