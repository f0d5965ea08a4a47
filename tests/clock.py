"""A clock the test moves: the hub's budgets, breaker pauses, token expiry over WebSocket and
expiry-check intervals (clock.py) end when the test says, not when the machine gets there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

SAFETY_NET = 60.0  # seconds: only a hub that is broken makes a test wait this long


class ManualClock:
    """Time stands still until `advance`: a sleep ends, and a timeout cancels its block, once
    the clock has been moved past their end, at once and in no other case. Use it on one
    event loop (the tests' own)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime.now(UTC)
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._timeouts: list[tuple[float, asyncio.Timeout]] = []
        self.sleeps = 0  # sleeps begun so far
        self.timeouts = 0  # timeouts begun so far

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        entry = (self._elapsed + seconds, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        try:
            await entry[1]
        finally:
            self._sleepers.remove(entry)

    @asynccontextmanager
    async def timeout(self, seconds: float | None) -> AsyncIterator[None]:
        self.timeouts += 1
        async with asyncio.timeout(None) as limit:
            if seconds is None:
                yield
                return
            entry = (self._elapsed + seconds, limit)
            self._timeouts.append(entry)
            try:
                yield
            finally:
                self._timeouts.remove(entry)

    def advance(self, seconds: float) -> None:
        """Move the clock on: every sleep and timeout whose end is now past ends."""
        self._elapsed += seconds
        loop = asyncio.get_running_loop()
        for end, waiter in self._sleepers:
            if end <= self._elapsed and not waiter.done():
                waiter.set_result(None)
        for end, limit in self._timeouts:
            if end <= self._elapsed and not limit.expired():
                limit.reschedule(loop.time())  # expires on the loop's next turn, as a real one would

    async def slept(self, count: int) -> None:
        """Wait until `count` sleeps have begun in all (a periodic task is back to waiting)."""
        await until(lambda: self.sleeps >= count, f"{count} sleeps on the clock")


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for something the hub does (an event, not an amount of time): `condition` is
    looked at every 10 ms, with a safety net only a broken hub reaches."""
    try:
        async with asyncio.timeout(SAFETY_NET):
            # The hub's parts offer no event for these (a broker's count, a fault's counter).
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None
