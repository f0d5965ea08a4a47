"""The HTTP gate in front of the graph: who calls (a signed token), for what (a declared
purpose), how often (per-client rate limits) and how much (document size). A request that
fails here never reaches the graph; GraphiQL's page itself loads without a token."""

from __future__ import annotations

import math
import time
import uuid
from datetime import date
from typing import Any

import orjson
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.responses import HTMLResponse
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from access.policy import ROLES_WITHOUT_PURPOSE, Policy
from access.tokens import InvalidToken, TokenAuthority
from resolvers.context import Caller
from settings import Limits

CALLER_KEY = "caller"


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers or {}


class Gate:
    """ASGI middleware in front of the GraphQL view."""

    def __init__(
        self, app: GraphQL[Any, Any], authority: TokenAuthority, policy: Policy, settings: Limits
    ) -> None:
        self.app = app
        self.authority = authority
        self.policy = policy
        self.settings = settings
        self.limit: RateLimitItem = parse(settings.rate_limit)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if _wants_graphiql_page(scope, headers):
            # The page itself holds no data; the queries it sends bring their token.
            await HTMLResponse(self.app.graphql_ide_html)(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        try:
            body = await _read_body(receive, self.settings.max_document_bytes)
            caller = self._admit(headers, request_id)
        except Refused as refused:
            await _refuse(send, refused, request_id)
            return
        scope.setdefault("state", {})[CALLER_KEY] = caller
        await self.app(scope, _replay(body), _with_request_id(send, request_id))

    def _admit(self, headers: dict[str, str], request_id: str) -> Caller:
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(
                401, "UNAUTHENTICATED", "Send `Authorization: Bearer <token>`; `hub token` issues one."
            )
        try:
            claims = self.authority.verify(token.strip())
        except InvalidToken as error:
            raise Refused(401, "UNAUTHENTICATED", f"Unauthenticated: {error}.") from None
        purpose = headers.get("x-purpose", "").strip() or None
        if claims.role in ROLES_WITHOUT_PURPOSE:
            purpose = None
        elif purpose is None:
            raise Refused(
                403, "FORBIDDEN", f"X-Purpose: {claims.role.value} must declare one of its purposes."
            )
        elif purpose not in self.policy.purposes or self.policy.purposes[purpose].role is not claims.role:
            raise Refused(
                403, "FORBIDDEN", f"X-Purpose: {purpose!r} is not a purpose of {claims.role.value}."
            )
        elif purpose not in claims.purposes:
            raise Refused(403, "FORBIDDEN", f"X-Purpose: the token does not allow {purpose!r}.")
        restricted_until = self._restricted_until(headers, purpose)
        if not self.limiter.hit(self.limit, claims.subject):
            reset, _remaining = self.limiter.get_window_stats(self.limit, claims.subject)
            retry = max(1, math.ceil(reset - time.time()))
            raise Refused(
                429, "RATE_LIMITED", f"Too many requests; retry in {retry} s.", {"retry-after": str(retry)}
            )
        return Caller(
            subject=claims.subject,
            role=claims.role,
            purpose=purpose,
            case_reference=headers.get("x-case-reference", "").strip()[:100] or None,
            restricted_until=restricted_until,
            request_id=request_id,
            person_id=claims.person_id,
            employer=claims.employer,
        )

    def _restricted_until(self, headers: dict[str, str], purpose: str | None) -> date | None:
        value = headers.get("x-restricted-until", "").strip()
        if not value:
            return None
        if purpose is None or not self.policy.purposes[purpose].investigation:
            raise Refused(
                400,
                "BAD_USER_INPUT",
                "X-Restricted-Until: only a read for an investigation may be restricted.",
            )
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise Refused(400, "BAD_USER_INPUT", "X-Restricted-Until: must be a date YYYY-MM-DD.") from None


def _wants_graphiql_page(scope: Scope, headers: dict[str, str]) -> bool:
    return (
        scope["method"] == "GET"
        and b"query=" not in scope.get("query_string", b"")
        and ("text/html" in headers.get("accept", ""))
    )


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refused(413, "QUERY_TOO_LARGE", f"The request body exceeds {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _with_request_id(send: Send, request_id: str) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
        await send(message)

    return sending


async def _refuse(send: Send, refused: Refused, request_id: str) -> None:
    body: dict[str, Any] = {
        "data": None,
        "errors": [{"message": str(refused), "extensions": {"code": refused.code}}],
    }
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"x-request-id", request_id.encode()),
        *((k.encode(), v.encode()) for k, v in refused.headers.items()),
    ]
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
