"""Notifications for a cardholder (DOMAIN.md workflow 7): stored in the hub store, listed by
`Person.notifications`, pushed live by `Subscription.notifications`.

- emit.py: `notify(store, person_id, kind, message, subject_type=..., subject_key=...)`, the
  call that stores an event and wakes the person's live subscribers on every process;
- broker.py: the per-process registry of live subscribers, and their wake;
- doorbell.py: the wake carried to every process of the hub (Redis pub/sub);
- seats.py: how many subscriptions one person may hold at once, over all processes;
- feed.py: what one subscriber receives (missed events oldest first, then live ones);
- expiry.py: the scheduled PERMIT_EXPIRING check (`hub notify`, and the server's periodic task);
- websocket.py: the graphql-transport-ws connection (token in `connection_init`, subscriptions
  only).
"""

from notifications.emit import notice, notify, notify_many, wake

__all__ = ["notice", "notify", "notify_many", "wake"]
