"""The WebSocket side of the graph (graphql-transport-ws), which serves `Subscription.notifications`.

- The client's token travels in `connection_init`'s payload, with the same names as HTTP
  headers, in any case: `{"Authorization": "Bearer <token>"}` (or the bare token under
  `token`). A missing or bad token, or a refused purpose, closes the socket with 4403
  Forbidden (the protocol's answer to a refused `connection_init`), the reason saying why.
- Only subscriptions run here. Queries and mutations go over HTTP, where every read is in the
  audit trail before its answer leaves; over WebSocket they answer an `error` message.
- Every error of a `next` or `error` message carries `extensions.code`, as over HTTP.
- The connection's context: notifications/connection.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, NoReturn

import orjson
from graphql import (
    GraphQLError,
    GraphQLFormattedError,
    GraphQLSyntaxError,
    OperationType,
    get_operation_ast,
    parse,
)
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import NonJsonMessageReceived, WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.types import ExecutionResult

from clock import SYSTEM_CLOCK, Clock
from domain.errors import ErrorCode
from edge.documents import DocumentRefused, KnownDocuments
from edge.gateway import Refused
from resolvers.connection import ConnectionContext
from resolvers.context import Context
from schema.errors import shape_all

UNSPOKEN_PROTOCOL = 4406  # the close for a subprotocol the server does not speak
REFUSED = 4403  # graphql-transport-ws: "Forbidden", the answer to a refused connection_init
MAX_REASON_BYTES = 123  # what a WebSocket close frame holds


async def admit_connection(
    context: Context,
    admit: Callable[[Any, object], Awaitable[datetime]],
    context_for: Callable[[Any, Any], Awaitable[Context]],
) -> None:
    """connection_init: admit the payload's token (as the HTTP gate admits a request's, into
    the connection's request state), then bind the connection's context to that caller until
    the token expires, when the socket is closed with 4403; a refusal closes it with 4403 at once."""
    assert isinstance(context, ConnectionContext)
    try:
        expires_at = await admit(context.request.scope, context.connection_params)
    except Refused as refused:
        await refuse_connection(context, str(refused))
    context.bind(await context_for(context.request, context.response))
    context.expires_at = expires_at


async def refuse_connection(context: ConnectionContext, reason: str) -> NoReturn:
    """Close the socket with 4403 and the reason (strawberry's own close then does nothing)."""
    encoded = reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")
    await context.response.close(code=REFUSED, reason=encoded)
    raise ConnectionRejectionError()


class HubWebSocketAdapter(ASGIWebSocketAdapter):
    async def send_json(self, message: Mapping[str, object]) -> None:
        """Every graphql-transport-ws message as a text frame, as the protocol and its clients
        (graphql-ws, gql) expect: the view encodes JSON to bytes, which would go out binary."""
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as disconnected:
            raise WebSocketDisconnected from disconnected

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        messages = super().iter_json(ignore_parsing_errors=ignore_parsing_errors)
        try:
            async for message in messages:
                yield message
        except RecursionError:
            # JSON nested deeper than the decoder goes is a client's mistake: closed with 4400.
            raise NonJsonMessageReceived() from None
        finally:
            await messages.aclose()

    async def close(self, code: int, reason: str) -> None:
        if code == UNSPOKEN_PROTOCOL:  # strawberry's reason does not say what is spoken
            reason = "Only the graphql-transport-ws subprotocol is spoken here (not the legacy graphql-ws)."
        # A socket already closed (a refused connection_init) is not closed twice.
        if self.ws.application_state != WebSocketState.DISCONNECTED:
            await super().close(code, reason)


def subscriptions_handler(
    max_document_bytes: int, clock: Clock = SYSTEM_CLOCK, documents: KnownDocuments | None = None
) -> type[BaseGraphQLTransportWSHandler[Context, None]]:
    """The graphql-transport-ws handler of the hub: subscriptions only, documents within the
    size limit and, with trusted documents, among the caller's (edge/documents.py), every
    error with its code, each connection closed when its token expires by `clock`."""
    known = documents or KnownDocuments()

    class SubscriptionsOnly(BaseGraphQLTransportWSHandler[Context, None]):
        expiry: asyncio.Task[None] | None = None

        async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
            await super().handle_connection_init(message)
            expires_at = getattr(self.context, "expires_at", None)
            if self.connection_acknowledged and expires_at is not None and self.expiry is None:
                self.expiry = asyncio.create_task(self.close_at(expires_at))
                self.expiry.add_done_callback(self._task_done)

        async def close_at(self, expires_at: datetime) -> None:
            """End the connection when its token expires: a token is not valid for longer
            over WebSocket than over HTTP."""
            await clock.sleep(max((expires_at - clock.now()).total_seconds(), 0))
            for operation_id in list(self.operations):
                await self.cleanup_operation(operation_id)
            await self.websocket.close(REFUSED, "Unauthenticated: the token has expired.")

        async def shutdown(self) -> None:
            if self.expiry is not None and self.expiry is not asyncio.current_task():
                self.expiry.cancel()
            await super().shutdown()

        async def handle_subscribe(self, message: SubscribeMessage) -> None:
            if self.connection_acknowledged and message["id"] not in self.operations:
                refusal = (
                    self.too_many()
                    or await self.untrusted(message["payload"])
                    or refusal_of(message["payload"], max_document_bytes)
                )
                if refusal is not None:
                    await self.send_message({"id": message["id"], "type": "error", "payload": [refusal]})
                    return
            await super().handle_subscribe(message)

        async def untrusted(self, payload: object) -> GraphQLFormattedError | None:
            """A document refused by its hash or the trusted list; one sent by its hash alone
            gets its text here."""
            if not isinstance(payload, dict):
                return None
            try:
                caller = self.context.caller
                query = await known.document(payload.get("query"), payload.get("extensions"), caller)
            except DocumentRefused as refused:
                return _error(str(refused), refused.code)
            if query is not None:
                payload["query"] = query
            return None

        def too_many(self) -> GraphQLFormattedError | None:
            """strawberry's own check, with a code and the limit named."""
            limit = self.max_subscriptions_per_connection
            if limit is None or len(self.operations) < limit:
                return None
            return _error(
                f"Subscription limit reached: at most {limit} at once per connection.",
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
            )

        async def _send_result_stream(
            self, operation: Operation[Context, None], result_source: AsyncIterator[Any]
        ) -> None:
            # Pinned strawberry (<0.342): each result passes here on its way to the client.
            await super()._send_result_stream(operation, self._coded(result_source))

        async def _coded(self, results: AsyncIterator[Any]) -> AsyncGenerator[Any, None]:
            async for result in results:
                if isinstance(result, ExecutionResult):
                    result.errors = coded_errors(result.errors, self.context)
                yield result

    return SubscriptionsOnly


def refusal_of(payload: object, max_document_bytes: int) -> GraphQLFormattedError | None:
    """Why a subscribe message is not run, as a GraphQL error; None to run it (a document that
    does not parse or names no operation is left to the protocol, which closes with 4400).
    The size limit is HTTP's body limit: the whole payload, variables included, counts."""
    if not isinstance(payload, dict):
        return None
    try:
        size = _json_size(payload)
    except RecursionError:
        return _error("The subscribe payload is nested too deeply to be read.", ErrorCode.BAD_REQUEST)
    if size > max_document_bytes:
        return _error(
            f"The request's document exceeds {max_document_bytes} bytes.", ErrorCode.QUERY_TOO_LARGE
        )
    query, operation_name = payload.get("query"), payload.get("operationName")
    if not isinstance(query, str):
        return None
    try:
        document = parse(query)
    except GraphQLSyntaxError:
        return None
    operation = get_operation_ast(document, operation_name if isinstance(operation_name, str) else None)
    if operation is not None and operation.operation is not OperationType.SUBSCRIPTION:
        return _error(
            "Only subscriptions are served over WebSocket; send queries and mutations over HTTP.",
            ErrorCode.BAD_REQUEST,
        )
    return None


def coded_errors(errors: list[GraphQLError] | None, context: Any) -> list[GraphQLError] | None:
    """The result's errors shaped as over HTTP, and the problems found in values that still
    answered (each event's own: they are taken from the connection's context)."""
    return shape_all(errors, getattr(context, "problems", None))


def _json_size(payload: dict[str, Any]) -> int:
    """The payload's size as compact JSON (the frame it came in was at least this big)."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode(errors="surrogatepass"))


def _error(message: str, code: str) -> GraphQLFormattedError:
    return {"message": message, "extensions": {"code": code}}
