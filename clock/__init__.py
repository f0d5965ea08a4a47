"""The hub's clock, for what waits for time to pass: a source's time budget and its circuit
breaker's pause (adapters/base.py), a WebSocket closed when its token expires
(notifications/websocket.py), the periodic expiry check (notifications/expiry.py).

The server runs on `SYSTEM_CLOCK` (the time and asyncio modules, nothing added). A test
passes a clock it moves itself (tests/clock.py), so that when a budget runs out or a pause
ends is decided by the test, never by how fast the machine happens to be.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The wall time, in UTC (a token's expiry is one)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back (to measure a pause)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed."""
        ...

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        """A block cancelled once `seconds` have passed (None: never), leaving it with
        TimeoutError, as `asyncio.timeout` does."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)


SYSTEM_CLOCK = SystemClock()
