"""The composition root: settings, the lifespan that opens the sources, the hub store, the
audit log and the keys, the gate in front of the GraphQL view whose get_context builds a
fresh Context and Loaders per request, and the routes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, overload

import orjson
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from access.activation import is_revoked
from access.attestation import Verifiers
from access.policy import Grant, Policy, load_policy
from access.qr import permit_keys
from access.scope import scope_of
from access.tokens import TOKEN_KEY, TokenAuthority
from adapters import Sources
from audit.log import AUDIT_KEY, AuditLog
from audit.witness import open_witness
from edge.documents import MAX_KEPT, KnownDocuments, TrustedDocuments
from edge.downloads import permit_routes
from edge.exports import export_routes
from edge.gateway import Gate
from edge.graphiql import graphiql_page, graphiql_routes
from edge.media import GRAPHQL_RESPONSE, is_request_error, request_error_status
from edge.rate_limits import RateLimits
from edge.shared_documents import SharedDocuments
from edge.websocket import HubWebSocketAdapter, admit_connection, subscriptions_handler
from faults import install as install_faults
from faults import plan_from_environment as fault_plan_from_environment
from identity.store import HubStore
from keys.data_dir import keep_private
from keys.files import load_or_create_key
from notifications.doorbell import doorbell
from notifications.expiry import expiry_checks, interval_from_environment
from notifications.seats import Seats
from opaque.cursors import Cursors
from opaque.ids import GlobalIds
from opaque.sealing import sealer
from operations import (
    ObserveRequests,
    OperationRecorder,
    Readiness,
    Telemetry,
    configure_logging,
    drain,
    know_agencies,
    metrics_endpoint,
    observe_engine,
    record_errors,
    tune_for_serving,
    worker_stopped,
)
from resolvers.connection import UNBOUND, connection_context
from resolvers.context import Context
from resolvers.hub import HubState
from resolvers.loaders import Loaders
from schema import build_schema
from schema.agencies import DEFAULT_PARTS, GraphPart
from schema.errors import shape_all
from schema.text_rules import NUL_MESSAGE
from settings import Settings
from shared_state import SharedRedis
from tracing import HUB_STORE, instrument
from tracing.request import request_of
from workflows.registry import workflow_runner

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

TRACE_HEADER = "x-hub-trace"
# No document or variables of this schema nest deeper; deeper JSON is refused before anything
# walks it.
MAX_JSON_DEPTH = 32


def _json_problem(value: object, limit: int) -> str | None:
    """Why the request's JSON cannot be served (nested deeper than `limit`, or text with a NUL,
    which no agency's system stores), walked without recursion; None when it can."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return NUL_MESSAGE
        elif isinstance(item, dict | list):
            if depth > limit:
                return f"The request's JSON is nested deeper than {limit} levels."
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return None


class HubGraphQL(GraphQL[Context, None]):
    websocket_adapter_class = HubWebSocketAdapter
    # Set by create_app: the gate's admission of a WebSocket's connection_init payload.
    admit_connection: Callable[[Any, object], Awaitable[datetime]]

    @property
    def graphql_ide_html(self) -> str:
        return graphiql_page()  # its assets served by the hub itself, not a CDN

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def parse_json(self, data: str | bytes) -> Any:
        """The request's JSON, or 400 naming the rule it breaks (not UTF-8, lone surrogates,
        not JSON, nested too deep): never an error inside the hub."""
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise HTTPException(400, f"The request is not JSON in UTF-8: {error.msg}.") from None
        # A POSTed body (strawberry hands it over as bytes; GET parameters come as text, and
        # strawberry checks their shape) is a request object, or a batch it refuses itself.
        if isinstance(data, bytes) and not isinstance(value, dict | list):
            raise HTTPException(400, "The request's JSON must be an object with a `query`.")
        problem = _json_problem(value, MAX_JSON_DEPTH)
        if problem is not None:
            raise HTTPException(400, problem)
        return value

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # An exception raised around execution (in an extension) skips ShapeErrors: shape it here.
        if result.errors:
            result.errors = shape_all(result.errors)
            record_errors(result.errors)  # metrics and the request's log line count their codes
        answer = process_result(result)
        record = request_of(request.scope)
        if record is not None and record.graphql_response and is_request_error(result.data, result.errors):
            # application/graphql-response+json: a request error has no `data` and a 4xx status.
            del answer["data"]
            codes = [(error.extensions or {}).get("code") for error in result.errors or ()]
            request.state.graphql_status = request_error_status(codes)
        return answer

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as error:
            # GraphQL over HTTP: a mutation sent by GET is 405 Method Not Allowed.
            if isinstance(error.__cause__, InvalidOperationTypeError):
                raise HTTPException(405, error.reason) from error
            raise

    @overload
    async def run(self, request: Request, context: Context = UNSET, root_value: None = UNSET) -> Response: ...

    @overload
    async def run(
        self, request: WebSocket, context: Context = UNSET, root_value: None = UNSET
    ) -> WebSocket: ...

    async def run(
        self, request: Request | WebSocket, context: Context = UNSET, root_value: None = UNSET
    ) -> Response | WebSocket:
        """The answer, as the media type the client's Accept chose (edge/media.py)."""
        response = await super().run(request, context, root_value)
        record = request_of(request.scope)
        streamed = isinstance(response, StreamingResponse)  # multipart, SSE: their own media type
        if isinstance(response, Response) and not streamed and record is not None and record.graphql_response:
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
            response.status_code = getattr(request.state, "graphql_status", response.status_code)
        return response

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        hub: HubState = request.app.state.hub
        websocket = isinstance(request, WebSocket)  # subscriptions: edge/websocket.py
        # The request's state, its caller and grant set by the gate (for a WebSocket, once
        # connection_init admitted it: UNBOUND until then).
        record = request_of(request.scope)
        caller = record.caller if record is not None and record.caller is not None else UNBOUND
        grant = record.grant if record is not None and record.grant is not None else Grant()
        # Every HTTP request's statements are counted for its log line; the answer reports
        # them only when asked.
        asked = not websocket and record is not None and request.headers.get(TRACE_HEADER) == "1"
        today = hub.settings.today()
        audit = hub.audit if hub.settings.audit else None
        context = Context(
            hub=hub,
            loaders=Loaders(hub.sources, hub.store, audit, today),
            today=today,
            caller=caller,
            grant=grant,
            scope=await scope_of(caller, hub.sources, hub.store, today),
            audit=audit,
            trace=record.trace if asked and record is not None else None,
            request=request,
            response=response,
        )
        return connection_context(context, hub.settings.today) if websocket else context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        await admit_connection(context, self.admit_connection, self.get_context)
        unset: UnsetType = UNSET  # strawberry types UNSET as Any
        return unset


async def open_hub(settings: Settings, policy: Policy, shared: SharedRedis | None = None) -> HubState:
    # Each source bounded, retried and cut off by its breaker; faults injected only in drills and tests.
    sources = Sources.open(
        settings.source_urls, settings.source_budgets, settings.clock, settings.agencies, settings.db_pool
    )
    install_faults(sources, fault_plan_from_environment(agencies=[spec.id for spec in settings.agencies]))
    store = HubStore.open(settings.store_url, settings.db_pool)
    audit = AuditLog.open(
        settings.audit_url,
        load_or_create_key(settings.data_dir, AUDIT_KEY),
        open_witness(settings.witness_location()),  # every checkpoint also goes there
        settings.db_pool,
    )
    for source in sources.all():
        instrument(source.engine, str(source.agency))
    instrument(store.engine, HUB_STORE)
    await store.create_tables()
    await audit.create_tables()
    workflows = workflow_runner(
        sources,
        store,
        clock=settings.clock,
        lease=settings.run_lease,
        idempotency_wait=settings.idempotency_wait,
        shared=settings.redis_url is not None,  # other processes serve the same databases
    )
    # A crash may have left runs unfinished: each is undone before anything else is served
    # (beside other processes: those whose lease expired; the rest as their leases expire).
    await workflows.start()
    tokens = TokenAuthority(load_or_create_key(settings.data_dir, TOKEN_KEY))
    sealed = sealer(settings.data_dir)
    return HubState(
        settings=settings,
        sources=sources,
        store=store,
        audit=audit,
        policy=policy,
        workflows=workflows,
        tokens=tokens,
        ids=GlobalIds(sealed),
        cursors=Cursors(sealed),
        verifiers=Verifiers.from_setting(settings.verifier_jwks),
        sealer=sealed,
        permit_keys=permit_keys(settings.data_dir),
        seats=Seats(settings.max_subscriptions_per_person, shared),
    )


async def close_hub(hub: HubState) -> None:
    await hub.sources.close()
    await hub.store.close()
    await hub.audit.close()


def observe_hub(hub: HubState, telemetry: Telemetry) -> None:
    """Metrics for every statement on every database; spans too when tracing is configured."""
    know_agencies(source.agency for source in hub.sources.all())
    for source in hub.sources.all():
        observe_engine(source.engine, str(source.agency))
        telemetry.instrument(source.engine, str(source.agency))
    observe_engine(hub.store.engine, HUB_STORE)
    telemetry.instrument(hub.store.engine, HUB_STORE)
    observe_engine(hub.audit.engine, "AUDIT")


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(
    settings: Settings | None = None,
    span_exporter: SpanExporter | None = None,
    parts: Sequence[GraphPart] = DEFAULT_PARTS,
) -> Starlette:
    """The app of the settings' agencies, whose parts of the graph are `parts`;
    `span_exporter` (tests) receives its spans besides any OTEL_* exporter."""
    settings = settings or Settings.from_environment()
    if [part.agency.id for part in parts] != [spec.id for spec in settings.agencies]:
        raise ValueError("the graph's parts must be those of the settings' agencies, in their order")
    keep_private(
        settings.data_dir, settings.private_files()
    )  # owner-only data directory and files, before anything is written
    schema = build_schema(settings.limits, parts, planned=settings.planned)
    schema.extensions = (*schema.extensions, OperationRecorder)  # the operation type, for metrics and logs
    telemetry = Telemetry.configure(exporter=span_exporter)  # OTEL_* variables; off when none is set
    # Loaded before serving: a policy that does not fit the schema stops the start.
    policy = load_policy(schema._schema, settings.policy_path)
    authority = TokenAuthority(load_or_create_key(settings.data_dir, TOKEN_KEY))
    notify_interval = interval_from_environment()  # the expiry check's, in seconds (None: off)
    # What every process of the hub shares (rate limits, persisted queries, the doorbell).
    shared = SharedRedis(settings.redis_url, settings.redis_prefix) if settings.redis_url else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub = await open_hub(settings, policy, shared)
        app.state.hub = hub
        tune_for_serving()
        graphql.revoked = partial(is_revoked, hub.store)  # a lost phone's token is refused
        observe_hub(hub, telemetry)
        try:
            checks = expiry_checks(
                hub.sources, hub.store, settings.today, notify_interval, settings.clock.sleep
            )
            rings = doorbell.across_processes(hub.store, shared)
            async with checks as task, rings, hub.workflows.keeping_leases():
                app.state.expiry_check = task
                yield
        finally:
            # Graceful shutdown: workflow runs and audit records in flight finish first.
            await drain(hub, settings.shutdown_grace)
            await close_hub(hub)
            if shared is not None:
                await shared.close()
            telemetry.shutdown()
            worker_stopped()

    view = HubGraphQL(schema, graphql_ide="graphiql", subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL])
    # Loaded before serving too: a trusted-documents file that cannot be read stops the start.
    trusted = TrustedDocuments.load(settings.trusted_documents) if settings.trusted_documents else None
    documents = KnownDocuments(trusted, SharedDocuments(shared, MAX_KEPT) if shared else None)
    rate_limits = RateLimits(settings.limits.rate_limit, shared)
    graphql = Gate(view, authority, policy, settings.limits, documents, rate_limits)
    view.admit_connection = graphql.admit_connection
    view.graphql_transport_ws_handler_class = subscriptions_handler(
        settings.limits.max_document_bytes, settings.clock, documents
    )
    routes: list[Route | WebSocketRoute | Mount] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        # Operations (no token, nothing personal): readiness per database, Prometheus metrics.
        Route("/readyz", Readiness(settings.ready_timeout, shared).endpoint),
        Route("/metrics", metrics_endpoint),
        # The published verification keys; a cardholder's QR image and signed permit document.
        *permit_routes(graphql, settings.data_dir),
        # Reporting jobs' exports, streamed as CSV, NDJSON or Parquet.
        *export_routes(graphql),
        *graphiql_routes(),  # the IDE's vendored assets
    ]
    return Starlette(
        routes=routes,
        # Outermost: request id, per-source counts, the request's log line, metrics and span.
        middleware=[Middleware(ObserveRequests, routes=[r.path for r in routes], telemetry=telemetry)],
        lifespan=lifespan,
    )


def worker_app() -> Starlette:
    """The app of one worker of `hub run --workers N` (a process of its own, spawned by
    uvicorn's supervisor): its settings from the environment `hub run` passed on, its logs
    JSON lines like the supervisor's."""
    settings = Settings.from_environment()
    configure_logging(settings.log_level)
    return create_app(settings)
