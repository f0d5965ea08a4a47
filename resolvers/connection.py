"""The context of one WebSocket connection: built at the handshake with no caller (UNBOUND: no
grant, nobody in scope), bound to the token's caller by `connection_init`, and renewed for each
event (new loaders, so nothing is cached from an earlier event, and the hub's clock read again)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from access.caller import Caller, Scope
from access.policy import Grant
from domain.records import CallerRole
from resolvers.context import Context
from resolvers.loaders import Loaders

# The caller of a connection before connection_init; its context has no grant and reaches nobody.
UNBOUND = Caller(subject="", role=CallerRole.CARDHOLDER)


@dataclass
class ConnectionContext(Context):
    """One WebSocket connection's context (see the module's docstring)."""

    connection_params: dict[str, Any] | None = None
    clock: Callable[[], date] | None = None
    # When the caller's token expires: the connection is closed then (notifications/websocket.py).
    expires_at: datetime | None = None

    def bind(self, bound: Context) -> None:
        """Take the caller, grant, scope and the rest from a context built for the caller."""
        for item in fields(Context):
            if item.name not in ("request", "response", "problems"):
                setattr(self, item.name, getattr(bound, item.name))

    def renew(self) -> None:
        """A fresh view for the next event: new loaders, and today by the hub's clock."""
        if self.clock is not None:
            self.today = self.clock()
        self.loaders = Loaders(self.sources, self.store, self.loaders.audit, self.today)


def connection_context(context: Context, clock: Callable[[], date]) -> ConnectionContext:
    """A WebSocket's context, made from the one get_context built for its caller (UNBOUND at
    the handshake)."""
    connection = ConnectionContext(**{item.name: getattr(context, item.name) for item in fields(Context)})
    connection.clock = clock
    # Deliveries are not audited (docs/decisions.md): the audit runs per operation, and a
    # subscription's operation only ends when the client leaves. Only subscriptions run here.
    connection.audit = None
    if context.caller is UNBOUND:
        connection.grant, connection.scope = Grant(), Scope(person_ids=frozenset())
    return connection
