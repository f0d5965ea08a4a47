"""A real uvicorn server in this process, for tests about what only a server shows: WebSocket
connections and the lines uvicorn itself logs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette

from tests.clock import SAFETY_NET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def uvicorn_serving(app: Starlette, log_level: str = "warning") -> AsyncIterator[str]:
    """`app` served on a free loopback port, its lifespan included; yields `127.0.0.1:<port>`.
    uvicorn logs as under `hub run`: through the loggers as configured, without its access log."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, log_level=log_level, access_log=False
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(SAFETY_NET):  # a safety net: start-up is a matter of milliseconds
            while not server.started:
                assert not serving.done(), "the server did not start"
                await asyncio.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, SAFETY_NET)
