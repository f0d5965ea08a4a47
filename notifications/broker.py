"""Wakes the live subscribers of a person in this process when something was written for them
(the doorbell, doorbell.py, carries the wake to the other processes of the hub).

The broker carries no events: notifications are stored first, and a woken subscriber reads
what is new from the store. So a wake can never be lost or delivered out of order, a
subscriber that was offline reads the same rows on reconnect, and a spurious wake costs one
read. Subscribers are keyed by the hub store (its URL) and the person."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable, Iterator

from identity.store import HubStore


class Signal:
    """One subscriber's doorbell: set from any thread, awaited on the subscriber's own loop."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def set(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._event.set()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, seconds: float) -> bool:
        """Whether it rang within so many seconds."""
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            return False
        return True


def store_key(store: HubStore) -> str:
    return store.engine.url.render_as_string(hide_password=True)


class Broker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._signals: dict[tuple[str, int], set[Signal]] = {}

    @contextlib.contextmanager
    def listen(self, store: HubStore, person_id: int) -> Iterator[Signal]:
        """A signal that rings whenever notifications are written for the person, until the
        block ends."""
        key = (store_key(store), person_id)
        signal = Signal()
        with self._lock:
            self._signals.setdefault(key, set()).add(signal)
        try:
            yield signal
        finally:
            with self._lock:
                listeners = self._signals.get(key)
                if listeners is not None:
                    listeners.discard(signal)
                    if not listeners:
                        del self._signals[key]

    def wake(self, store: HubStore, person_ids: Iterable[int]) -> None:
        """Ring every subscriber of these persons (call it once the notifications are committed)."""
        url = store_key(store)
        with self._lock:
            signals = [s for p in set(person_ids) for s in self._signals.get((url, p), ())]
        for signal in signals:
            signal.set()

    def wake_all(self, store: HubStore) -> None:
        """Ring every subscriber of the store in this process (a ring may have been missed)."""
        url = store_key(store)
        with self._lock:
            signals = [s for (key, _), found in self._signals.items() if key == url for s in found]
        for signal in signals:
            signal.set()

    def listeners(self, store: HubStore, person_id: int) -> int:
        """How many subscribers of the person are listening (for tests and diagnostics)."""
        with self._lock:
            return len(self._signals.get((store_key(store), person_id), ()))


# One per process: every hub store opened in this process shares it.
broker = Broker()
