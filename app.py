"""The composition root: settings, the lifespan that opens the sources and the hub store, the
GraphQL view whose get_context builds a fresh Context and Loaders per request, and routes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from adapters import Sources
from identity.store import HubStore
from resolvers.context import Context
from resolvers.loaders import Loaders
from schema import build_schema
from settings import Settings
from tracing import HUB_STORE, SourceTrace, current_trace, instrument

TRACE_HEADER = "x-hub-trace"


@dataclass(frozen=True)
class HubState:
    settings: Settings
    sources: Sources
    store: HubStore


class HubGraphQL(GraphQL[Context, None]):
    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        hub: HubState = request.app.state.hub
        trace = SourceTrace() if request.headers.get(TRACE_HEADER) == "1" else None
        current_trace.set(trace)
        today = hub.settings.today()
        return Context(
            sources=hub.sources,
            store=hub.store,
            loaders=Loaders(hub.sources, hub.store, today),
            today=today,
            purpose=request.headers.get("x-purpose"),
            case_reference=request.headers.get("x-case-reference"),
            trace=trace,
            request=request,
            response=response,
        )


async def open_hub(settings: Settings) -> HubState:
    sources = Sources.open(settings.source_urls)
    store = HubStore.open(settings.store_url)
    for source in sources.all():
        instrument(source.engine, source.agency.value)
    instrument(store.engine, HUB_STORE)
    await store.create_tables()
    return HubState(settings, sources, store)


async def close_hub(hub: HubState) -> None:
    await hub.sources.close()
    await hub.store.close()


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_environment()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub = await open_hub(settings)
        app.state.hub = hub
        try:
            yield
        finally:
            await close_hub(hub)

    graphql = HubGraphQL(build_schema(), graphql_ide="graphiql")
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
