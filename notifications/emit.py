"""The API the rest of the hub calls to tell a person something.

    await notify(store, person_id, NotificationKind.PERMIT_CHANGED, "Your work permit ...",
                 subject_type="WorkPermit", subject_key=permit.key)

stores the notification in the hub store's `notification` table (so `Person.notifications`
lists it and a client that was offline reads it on reconnect) and then wakes the live
subscribers of that person, on every process (doorbell.py). Call it once the change it
reports is final. A notification given a `key` is written at most once (a retried workflow
step, an expiry notice per permit period); `notify` then answers None.

To write notifications inside a hub-store transaction of your own, pass `conn=`; they commit
with it, and you call `await wake(store, person_ids)` after the commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.records import NotificationKind
from identity.store import HubStore, NewNotification, NotificationRecord
from notifications.doorbell import doorbell
from opaque.ids import NODE_TYPES

MAX_MESSAGE = 1000


def notice(
    person_id: int,
    kind: NotificationKind | str,
    message: str,
    *,
    subject_type: str | None = None,
    subject_key: str | int | None = None,
    key: str | None = None,
) -> NewNotification:
    """A checked notification to write: a known kind, a message, and a subject that `subject`
    can resolve (a Node type and its key, both or neither)."""
    kind = NotificationKind(kind)
    text = message.strip()
    if not text or len(text) > MAX_MESSAGE:
        raise ValueError(f"a notification's message is 1 to {MAX_MESSAGE} characters")
    if (subject_type is None) != (subject_key is None):
        raise ValueError("a notification's subject names both its type and its key, or neither")
    if subject_type is not None and subject_type not in NODE_TYPES:
        raise ValueError(f"a notification's subject is one of {', '.join(NODE_TYPES)}")
    if key is not None and not key.strip():
        raise ValueError("a notification's key is not blank")
    return NewNotification(
        person_id=person_id,
        kind=kind.value,
        message=text,
        subject_type=subject_type,
        subject_key=None if subject_key is None else str(subject_key),
        key=key,
    )


async def notify(
    store: HubStore,
    person_id: int,
    kind: NotificationKind | str,
    message: str,
    *,
    subject_type: str | None = None,
    subject_key: str | int | None = None,
    key: str | None = None,
    conn: AsyncConnection | None = None,
) -> NotificationRecord | None:
    """Store one notification for the person and wake their live subscribers; None when its
    key was already used."""
    new = notice(person_id, kind, message, subject_type=subject_type, subject_key=subject_key, key=key)
    written = await notify_many(store, [new], conn=conn)
    return written[0] if written else None


async def notify_many(
    store: HubStore, notices: Sequence[NewNotification], conn: AsyncConnection | None = None
) -> list[NotificationRecord]:
    """Store several notifications in one transaction (those whose key is taken are skipped),
    then wake the subscribers of every person written for (unless `conn` is the caller's)."""
    written = await store.add_notifications(notices, conn=conn)
    if conn is None:
        await wake(store, (record.person_id for record in written))
    return written


async def wake(store: HubStore, person_ids: Iterable[int]) -> None:
    """Wake the live subscribers of these persons, on every process (after a commit of your own)."""
    await doorbell.ring(store, person_ids)
