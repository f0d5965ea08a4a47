"""`GET /readyz`: whether this process can answer, database by database.

One `SELECT 1` per database (each agency's source, the hub store, the audit store), all at
once, each bounded by `HUB_READY_TIMEOUT`. The hub store and the audit store are needed for
every answer (who a person is; the record of each read), so either one down is 503. An agency
source down alone keeps 200: the hub still answers, with that agency's fields null and
`SOURCE_UNAVAILABLE`. Each source also shows its circuit breaker's state. With HUB_REDIS_URL,
Redis is probed too (a PING): down, it is `degraded` and not 503, as each process then serves
what Redis shared on its own (docs/decisions.md, "Redis"). Concurrent probes share one check,
so a flood of `/readyz` costs the databases one probe set at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from adapters import Sources
    from shared_state import SharedRedis

CLOSED = "closed"
NO_STORE = {"cache-control": "no-store"}


def sources_status(sources: Sources) -> dict[str, dict[str, Any]]:
    """Per agency, what its guard reports (adapters: `Sources.sources_status()`: the breaker's
    state, consecutive failures, call counts); a source without a guard reads as `closed`."""
    reader = getattr(sources, "sources_status", None)
    reported = reader() if callable(reader) else {}
    return {
        str(source.agency): {"breaker": CLOSED, **(reported.get(str(source.agency)) or {})}
        for source in sources.all()
    }


async def probe(connect: Callable[[], Any], seconds: float) -> dict[str, Any]:
    """`SELECT 1` on a fresh or pooled connection, within `seconds`."""
    started = time.perf_counter()

    async def select_one() -> None:
        async with connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(select_one(), seconds)
    except TimeoutError:
        return {"status": "down", "reason": "timeout", "ms": round(seconds * 1000, 1)}
    except Exception as error:  # any failure means down; its message may name hosts
        return {"status": "down", "reason": type(error).__name__, "ms": _ms(started)}
    return {"status": "up", "ms": _ms(started)}


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


async def ping(redis: SharedRedis, seconds: float) -> dict[str, Any]:
    """Redis's PING within `seconds`."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(redis.ping(), seconds)
    except TimeoutError:
        return {"status": "down", "reason": "timeout", "ms": round(seconds * 1000, 1)}
    except Exception as error:  # any failure means down; its message may name hosts
        return {"status": "down", "reason": type(error).__name__, "ms": _ms(started)}
    return {"status": "up", "ms": _ms(started)}


async def check(hub: Any, seconds: float, redis: SharedRedis | None = None) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the JSON body of a readiness check."""
    sources = hub.sources.all()
    shared = ping(redis, seconds) if redis is not None else asyncio.sleep(0, None)
    shared_answer, store, audit, *answers = await asyncio.gather(
        shared,
        probe(hub.store.engine.connect, seconds),
        probe(hub.audit.engine.connect, seconds),
        *(probe(source.engine.connect, seconds) for source in sources),
    )
    guards = sources_status(hub.sources)
    by_agency = {
        str(source.agency): {
            **answer,
            "breaker": guards[str(source.agency)]["breaker"],
            "consecutiveFailures": guards[str(source.agency)].get("failures", 0),
        }
        for source, answer in zip(sources, answers, strict=True)
    }
    if store["status"] != "up" or audit["status"] != "up":
        status = "unavailable"
    elif all(a["status"] == "up" and a["breaker"] == CLOSED for a in by_agency.values()) and (
        shared_answer is None or shared_answer["status"] == "up"
    ):
        status = "ready"
    else:
        status = "degraded"  # answering, without what a down agency (or Redis) would have given
    body = {"status": status, "store": store, "audit": audit, "sources": by_agency}
    if shared_answer is not None:
        body["redis"] = shared_answer
    return (503 if status == "unavailable" else 200), body


class Readiness:
    """The `/readyz` endpoint; concurrent requests share the check in progress."""

    def __init__(self, timeout: float, redis: SharedRedis | None = None) -> None:
        self.timeout = timeout
        self.redis = redis
        self._running: asyncio.Task[tuple[int, dict[str, Any]]] | None = None

    async def endpoint(self, request: Request) -> Response:
        hub = getattr(request.app.state, "hub", None)
        if hub is None:
            return JSONResponse({"status": "starting"}, status_code=503, headers=NO_STORE)
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().create_task(check(hub, self.timeout, self.redis))
        status, body = await asyncio.shield(self._running)
        return JSONResponse(body, status_code=status, headers=NO_STORE)
