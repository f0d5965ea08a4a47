"""Notifications kept for a person, so that a client can read what it missed."""

from __future__ import annotations

from datetime import datetime

import strawberry

from identity.store import NotificationRecord
from resolvers import query
from resolvers.context import Info
from schema.common import Node, NotificationKind, PageInfo, as_graph, resolver


@strawberry.type(
    description="An event for the person: a permit change, an expiry notice, a card issued, news."
)
class Notification(Node):
    at: datetime = strawberry.field(description="When the event happened.")
    message: str = strawberry.field(description="What happened, in words.")

    @resolver(description="The notification's opaque global id.")
    def id(root: NotificationRecord, info: Info) -> strawberry.ID:
        return strawberry.ID(info.context.ids.encode("Notification", root.key))

    @resolver(description="What the notification is about.")
    def kind(root: NotificationRecord) -> NotificationKind:
        return NotificationKind(root.kind)

    @resolver(description="The object the event concerns (a permit, a card, ...), where it has one.")
    async def subject(root: NotificationRecord, info: Info) -> Node | None:
        if root.subject_type is None or root.subject_key is None:
            return None
        return as_graph(Node, await query.node_by_key(info, root.subject_type, root.subject_key))

    @classmethod
    def is_type_of(cls, obj: object, _info: object) -> bool:
        return isinstance(obj, NotificationRecord)


@strawberry.type(description="A notification with its cursor.")
class NotificationEdge:
    cursor: str = strawberry.field(
        description="The cursor of this notification; pass it as `after` to resume."
    )
    node: Notification = strawberry.field(description="The notification.")


@strawberry.type(description="A page of notifications, newest first.")
class NotificationConnection:
    edges: list[NotificationEdge] = strawberry.field(description="The notifications of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page ends.")
