"""The HTTP gate in front of the graph: who calls (a signed token), for what (a declared
purpose), how often (per-client rate limits) and how much (document size). A request that
fails here never reaches the graph; GraphiQL's page itself loads without a token."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

import graphql
import orjson
from graphql import FieldNode, GraphQLError, OperationType, get_operation_ast
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from access.caller import Caller
from access.policy import ROLES_WITHOUT_PURPOSE, Policy
from access.tokens import InvalidToken, TokenAuthority
from domain.errors import ErrorCode, SourceUnavailable
from domain.limits import Limits
from domain.records import CallerRole
from edge.documents import DocumentRefused, KnownDocuments
from edge.rate_limits import RateLimits
from schema.errors import MASKED_MESSAGE
from tracing.request import SCOPE_KEY, RequestRecord, new_request, request_of

# The codes of the view's own HTTP refusals (a body that is not JSON, no query, a mutation by GET).
HTTP_CODES = {
    400: ErrorCode.BAD_REQUEST,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    415: ErrorCode.BAD_REQUEST,
}

log = logging.getLogger("hub.gateway")


class Refused(Exception):
    """A request the gate answers itself: its HTTP status, code, message and headers."""

    def __init__(
        self, status: int, code: ErrorCode, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers or {}


class Gate:
    """ASGI middleware in front of the GraphQL view."""

    def __init__(
        self,
        app: GraphQL[Any, Any],
        authority: TokenAuthority,
        policy: Policy,
        settings: Limits,
        documents: KnownDocuments | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.app = app
        self.documents = documents or KnownDocuments()
        self.authority = authority
        self.policy = policy
        self.settings = settings
        self.rate_limits = rate_limits or RateLimits(settings.rate_limit)
        # Set once the hub is open: whether a cardholder token's client was revoked (a lost
        # phone's, a revoked e-card's); None checks nothing.
        self.revoked: Callable[[str], Awaitable[bool]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # A WebSocket's connection is its request; its caller is admitted at connection_init.
            if request_of(scope) is None:
                scope.setdefault("state", {})[SCOPE_KEY] = new_request(scope)
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if _wants_graphiql_page(scope, headers):
            # The page itself holds no data; the queries it sends bring their token.
            await HTMLResponse(self.app.graphql_ide_html)(scope, receive, send)
            return
        record = _record_of(scope)
        try:
            # A GET carries its document in the query string: it counts against the same limit.
            in_url = len(unquote_to_bytes(scope.get("query_string", b"").replace(b"+", b" ")))
            body = await _read_body(receive, self.settings.max_document_bytes, in_url)
            if not headers.get("authorization", "").strip() and self._only_anonymous_calls(scope, body):
                caller = await self._admit_anonymous(scope, record.request_id)
            else:
                caller = (await self._admitted(headers, record.request_id))[0]
            self.admitted(record, caller)
            scope, body = await self.documents.rewrite(scope, body, caller)  # a document sent by its hash
        except DocumentRefused as refused:
            await _refuse(send, Refused(refused.status, refused.code, str(refused)), record)
            return
        except Refused as refused:
            await _refuse(send, refused, record)
            return
        sending = _Sending(send, record)
        try:
            await self.app(scope, _replay(body), sending)
        except SourceUnavailable as unavailable:
            if sending.started:
                raise
            # The caller's scope could not be worked out (an employer's staff): nothing is answered.
            unavailable_refusal = Refused(
                503, ErrorCode.SOURCE_UNAVAILABLE, str(unavailable), {"retry-after": "5"}
            )
            await _refuse(send, unavailable_refusal, record)
        except Exception as error:
            if sending.started:
                raise
            # Nothing of it reaches the client: no stack trace, SQL or legacy message.
            log.error(
                "unexpected %s serving request %s", type(error).__name__, record.request_id, exc_info=error
            )
            await _refuse(send, Refused(500, ErrorCode.INTERNAL_SERVER_ERROR, MASKED_MESSAGE), record)

    def admitted(self, record: RequestRecord, caller: Caller) -> None:
        """The request's caller, and the grant of its role and purpose, looked up once here."""
        record.caller = caller
        record.grant = (
            self.policy.grant(caller.role, caller.purpose) if caller.authenticated else self.policy.anonymous
        )

    async def _admitted(self, headers: dict[str, str], request_id: str) -> tuple[Caller, datetime]:
        """The caller and when its token expires, as `_admit` admits them, unless its
        cardholder token was revoked since."""
        caller, expires_at = self._admit(headers, request_id)
        await self._hit(caller.subject)
        if (
            caller.role is CallerRole.CARDHOLDER
            and self.revoked is not None
            and await self.revoked(caller.subject)
        ):
            raise Refused(
                401,
                ErrorCode.UNAUTHENTICATED,
                "Unauthenticated: the token was revoked with its e-card's activation.",
            )
        return caller, expires_at

    def _admit(self, headers: dict[str, str], request_id: str) -> tuple[Caller, datetime]:
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(
                401,
                ErrorCode.UNAUTHENTICATED,
                "Send `Authorization: Bearer <token>`; `hub token` issues one.",
            )
        try:
            claims = self.authority.verify(token.strip())
        except InvalidToken as error:
            raise Refused(401, ErrorCode.UNAUTHENTICATED, f"Unauthenticated: {error}.") from None
        purpose = headers.get("x-purpose", "").strip() or None
        declared = self.policy.purposes.get(purpose) if purpose is not None else None
        if claims.role in ROLES_WITHOUT_PURPOSE:
            if purpose is not None:
                # Served as if undeclared, the caller would believe its purpose was recorded.
                raise Refused(
                    400,
                    ErrorCode.BAD_REQUEST,
                    f"X-Purpose: {claims.role.value} declares no purpose; send none.",
                )
        elif purpose is None:
            raise Refused(
                403, ErrorCode.FORBIDDEN, f"X-Purpose: {claims.role.value} must declare one of its purposes."
            )
        elif declared is None or declared.role is not claims.role:
            raise Refused(
                403, ErrorCode.FORBIDDEN, f"X-Purpose: {purpose!r} is not a purpose of {claims.role.value}."
            )
        elif purpose not in claims.purposes:
            raise Refused(403, ErrorCode.FORBIDDEN, f"X-Purpose: the token does not allow {purpose!r}.")
        restricted_until = _restricted_until(headers, declared is not None and declared.investigation)
        caller = Caller(
            subject=claims.subject,
            role=claims.role,
            purpose=purpose,
            case_reference=headers.get("x-case-reference", "").strip()[:100] or None,
            restricted_until=restricted_until,
            request_id=request_id,
            person_id=claims.person_id,
            employer=claims.employer,
        )
        return caller, claims.expires_at

    def _only_anonymous_calls(self, scope: Scope, body: bytes) -> bool:
        """Whether a request without a token asks for nothing but what the policy grants without
        one (a POSTed mutation of `activateCardholder` only); anything else needs a token."""
        allowed = self.policy.anonymous.mutations
        if scope["method"] != "POST" or not allowed:
            return False
        try:
            request = orjson.loads(body)
            document = graphql.parse(request["query"], no_location=True, max_tokens=self.settings.max_tokens)
            name = request.get("operationName")
            operation = get_operation_ast(document, name if isinstance(name, str) else None)
        except (orjson.JSONDecodeError, GraphQLError, KeyError, TypeError, AttributeError):
            return False
        return (
            operation is not None
            and operation.operation is OperationType.MUTATION
            and all(
                isinstance(selection, FieldNode) and selection.name.value in {*allowed, "__typename"}
                for selection in operation.selection_set.selections
            )
        )

    async def _admit_anonymous(self, scope: Scope, request_id: str) -> Caller:
        """The caller without a token, rate-limited by its address like a client by its subject."""
        address = (scope.get("client") or ("unknown", 0))[0]
        await self._hit(f"anonymous:{address}")
        return Caller(
            subject="anonymous", role=CallerRole.CARDHOLDER, request_id=request_id, authenticated=False
        )

    async def _hit(self, key: str) -> None:
        retry = await self.rate_limits.retry_after(key)
        if retry is not None:
            raise Refused(
                429,
                ErrorCode.RATE_LIMITED,
                f"Too many requests; retry in {retry} s.",
                {"retry-after": str(retry)},
            )

    def guard(self, endpoint: Endpoint, *roles: CallerRole) -> Guarded:
        """A plain HTTP route behind this gate's token check, purpose rules and rate limit,
        open to `roles` only."""
        return Guarded(self, endpoint, frozenset(roles))

    async def admit_connection(self, scope: Scope, payload: object) -> datetime:
        """A WebSocket connection's caller, noted in its request's state, from the
        `connection_init` payload: the names of the HTTP headers (`Authorization: Bearer
        <token>`, `X-Purpose`, ...) in any case, or the token alone under `token`; admitted by
        the same rules, and counted against the same rate limit, as an HTTP request. Answers
        when the token expires; raises Refused."""
        headers: dict[str, str] = {}
        if isinstance(payload, dict):
            headers = {str(k).lower(): v.strip() for k, v in payload.items() if isinstance(v, str)}
        token = headers.pop("token", "")
        if "authorization" not in headers and token:
            scheme, _, rest = token.partition(" ")
            headers["authorization"] = token if scheme.lower() == "bearer" and rest else f"Bearer {token}"
        record = _record_of(scope)
        caller, expires_at = await self._admitted(headers, record.request_id)
        self.admitted(record, caller)
        return expires_at


def _restricted_until(headers: dict[str, str], investigation: bool) -> date | None:
    value = headers.get("x-restricted-until", "").strip()
    if not value:
        return None
    if not investigation:
        raise Refused(
            400,
            ErrorCode.BAD_USER_INPUT,
            "X-Restricted-Until: only a read for an investigation may be restricted.",
        )
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Refused(
            400, ErrorCode.BAD_USER_INPUT, "X-Restricted-Until: must be a date YYYY-MM-DD."
        ) from None


# A guarded route's handler: the request and its admitted caller; it may raise Refused.
Endpoint = Callable[[Request, Caller], Awaitable[Response]]


class Guarded:
    """An ASGI route admitted like the graph (401 `UNAUTHENTICATED` for a missing or bad
    token, 403 `FORBIDDEN` for a purpose it may not declare), and 403 for a role the route
    does not serve. Refusals, the endpoint's own included, have the graph's JSON error shape."""

    def __init__(self, gate: Gate, endpoint: Endpoint, roles: frozenset[CallerRole]) -> None:
        self.gate = gate
        self.endpoint = endpoint
        self.roles = roles

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        record = _record_of(scope)
        try:
            caller, _expires_at = await self.gate._admitted(headers, record.request_id)
            if caller.role not in self.roles:
                allowed = ", ".join(sorted(role.value for role in self.roles))
                raise Refused(403, ErrorCode.FORBIDDEN, f"{scope['path']} serves {allowed} only.")
            self.gate.admitted(record, caller)
            response = await self.endpoint(Request(scope, receive), caller)
        except Refused as refused:
            await _refuse(send, refused, record)
            return
        except Exception as error:
            log.error(
                "unexpected %s serving request %s", type(error).__name__, record.request_id, exc_info=error
            )
            await _refuse(send, Refused(500, ErrorCode.INTERNAL_SERVER_ERROR, MASKED_MESSAGE), record)
            return
        response.headers["x-request-id"] = record.request_id
        await response(scope, receive, send)


def _record_of(scope: Scope) -> RequestRecord:
    """The request's state, made by the outermost middleware (or here, for a gate served alone)."""
    record = request_of(scope)
    if record is None:
        record = new_request(scope)
        scope.setdefault("state", {})[SCOPE_KEY] = record
    return record


def _wants_graphiql_page(scope: Scope, headers: dict[str, str]) -> bool:
    return (
        scope["method"] == "GET"
        and b"query=" not in scope.get("query_string", b"")
        and ("text/html" in headers.get("accept", ""))
    )


async def _read_body(receive: Receive, limit: int, size: int = 0) -> bytes:
    """The body, read no further than the limit; `size` is what the query string already holds."""
    too_large = Refused(413, ErrorCode.QUERY_TOO_LARGE, f"The request's document exceeds {limit} bytes.")
    if size > limit:
        raise too_large
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
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


class _Sending:
    """The view's `send`: adds the request id, and gives the view's own plain-text HTTP refusals
    (strawberry's "Unable to parse request body as JSON" and the like) the JSON shape and
    `extensions.code` of every other error."""

    def __init__(self, send: Send, record: RequestRecord) -> None:
        self.send = send
        self.record = record
        self.started = False  # whether the client has been sent anything
        self.held: Message | None = None
        self.held_body: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            request_id = self.record.request_id.encode()
            message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            if message["status"] >= 400 and not _is_json(message["headers"]):
                self.held = message
                return
            self.started = True
        elif message["type"] == "http.response.body" and self.held is not None:
            self.held_body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await self._send_as_error(self.held["status"], b"".join(self.held_body))
            return
        await self.send(message)

    async def _send_as_error(self, status: int, text: bytes) -> None:
        if status >= 500:
            code, message = ErrorCode.INTERNAL_SERVER_ERROR, MASKED_MESSAGE
        else:
            code = HTTP_CODES.get(status, ErrorCode.BAD_REQUEST)
            message = text.decode("utf-8", "replace").strip()[:200] or "Bad request."
        await _refuse(self.send, Refused(status, code, message), self.record)


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and b"json" in v.lower() for k, v in headers)


async def _refuse(send: Send, refused: Refused, record: RequestRecord) -> None:
    """The refusal in the graph's JSON error shape; its code is the request's, for the metrics."""
    record.errors.append((refused.code.value, ""))
    body: dict[str, Any] = {
        "data": None,
        "errors": [{"message": str(refused), "extensions": {"code": refused.code}}],
    }
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"x-request-id", record.request_id.encode()),
        *((k.encode(), v.encode()) for k, v in refused.headers.items()),
    ]
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
