"""What a subscriber receives: the notifications it missed, oldest first, then each new one as
it is written, each exactly once and in id order.

The subscriber registers with the broker before it first reads, then reads the store after its
last position whenever it is woken. Ids commit in id order (identity/store.py), so reading
`id > last` never skips a notification nor repeats one. Notifications written by another
process of the hub wake it through the doorbell (doorbell.py, with HUB_REDIS_URL); those of a
process without it (the `hub notify` command) or a ring lost while Redis was away arrive at the
next poll, at most `poll` seconds (HUB_SUBSCRIPTION_POLL) later, or on reconnect."""

from __future__ import annotations

from collections.abc import AsyncIterator

from identity.store import HubStore, NotificationRecord
from notifications.broker import broker

POLL_SECONDS = 30.0
BATCH = 100


async def follow(
    store: HubStore, person_id: int, after: int | None, poll: float = POLL_SECONDS
) -> AsyncIterator[NotificationRecord]:
    """The person's notifications after position `after` (the id of the last one seen), then
    live ones; with no position, only those written from now on."""
    # Read before listening: whatever is written from here on is after `last`, woken or not.
    last = after if after is not None else await store.last_notification_key(person_id)
    with broker.listen(store, person_id) as signal:
        while True:
            signal.clear()
            batch = await store.notifications_after(person_id, last, BATCH)
            for record in batch:
                last = record.key
                yield record
            if len(batch) < BATCH:
                await signal.wait(poll)
