"""The root Subscription: a cardholder's own notifications, pushed over graphql-transport-ws
(notifications/websocket.py), with what was missed replayed first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import strawberry

from domain.errors import ClientError, Forbidden
from identity.store import HubStore
from notifications.feed import follow
from notifications.seats import Seat
from opaque.cursors import Cursors
from opaque.ids import GlobalIds
from resolvers.connection import ConnectionContext
from resolvers.context import Context, Info
from resolvers.person import NOTIFICATIONS
from schema.common import as_graph, subscription
from schema.notifications import Notification

GRANT = ("Subscription", "notifications")
AFTER = "after"
NOT_A_POSITION = "is neither a notification's id nor the cursor of a Person.notifications edge"


@strawberry.type(
    description=(
        "Events pushed over WebSocket (graphql-transport-ws, at /graphql); the token goes in "
        '`connection_init`\'s payload: {"Authorization": "Bearer <token>"}.'
    )
)
class Subscription:
    @subscription(
        description=(
            "The caller's own notifications, as they are written: a cardholder's token only. "
            "With `after`, those written since that notification come first, oldest first; "
            "each is sent once."
        )
    )
    async def notifications(
        self,
        info: Info,
        after: Annotated[
            str | None,
            strawberry.argument(
                description=(
                    "Resume after this notification: its `id` (as a previous subscription "
                    "delivered it) or the cursor of its edge in `Person.notifications`. "
                    "Without it, only notifications written from now on."
                )
            ),
        ] = None,
    ) -> AsyncIterator[Notification]:
        person_id = subscriber(info)
        position = resume_position(after, info.context.ids, info.context.cursors)
        # Taken before the stream starts: over the limit, the subscribe answers its error.
        seat = await info.context.hub.seats.take(person_id)
        return _events(info.context, info.context.store, person_id, position, seat)


def subscriber(info: Info) -> int:
    """The person whose notifications the caller receives: the one its token is bound to, and
    only with the grant (the policy gives it to cardholders)."""
    context = info.context
    caller = context.caller
    if GRANT not in context.grant.readable:
        raise Forbidden(
            f"Subscription.notifications is not granted to {caller.role.value}"
            + (f" for {caller.purpose}" if caller.purpose else "")
        )
    reachable = context.scope.person_ids
    if caller.person_id is None or (reachable is not None and caller.person_id not in reachable):
        raise Forbidden("Subscription.notifications needs a token bound to one person")
    return caller.person_id


def resume_position(after: str | None, ids: GlobalIds, cursors: Cursors) -> int | None:
    """The id of the notification to resume after, from its global id or an edge's cursor."""
    if after is None:
        return None
    try:
        position = cursors.decode(NOTIFICATIONS, after, AFTER)
    except ClientError:
        position = None
    if position is not None:
        if len(position) == 1 and type(position[0]) is int and position[0] >= 0:
            return position[0]
        raise ClientError(AFTER, NOT_A_POSITION)
    try:
        type_name, key = ids.decode(after, AFTER)
    except ClientError:
        raise ClientError(AFTER, NOT_A_POSITION) from None
    if type_name != "Notification" or not key.isdigit():
        raise ClientError(AFTER, NOT_A_POSITION)
    return int(key)


async def _events(
    context: Context,
    store: HubStore,
    person_id: int,
    after: int | None,
    seat: Seat,
) -> AsyncIterator[Notification]:
    seat.hold()
    try:
        async for record in follow(store, person_id, after, context.hub.settings.subscription_poll):
            if isinstance(context, ConnectionContext):
                context.renew()
            yield as_graph(Notification, record)
    finally:
        await seat.release()
