"""The scheduled expiry check: a PERMIT_EXPIRING notice for every current, valid permit period
whose end falls within 30 days of the hub's clock, once per period and end date.

Run once by `hub notify`, and every HUB_NOTIFY_INTERVAL seconds by the server. A notice is
keyed by the permit period (XKID) and its end date (`validTo`): running the check again writes
nothing new, and a period extended to a new end date is noticed again when that date nears."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from adapters import Sources
from adapters.work_permit import APPLICANT_LINK
from domain.records import NotificationKind, WorkPermit
from identity.store import HubStore, NewNotification
from notifications.emit import notice, notify_many

log = logging.getLogger("hub.notifications")

WINDOW_DAYS = 30
INTERVAL_VARIABLE = "HUB_NOTIFY_INTERVAL"
DEFAULT_INTERVAL = 3600.0
PAGE = 500


@dataclass(frozen=True)
class ExpiryReport:
    expiring: int  # current valid periods ending within the window
    written: int  # notices written by this run
    already: int  # notices an earlier run wrote
    unlinked: int  # periods of an applicant linked to no person
    unreadable: int  # rows the adapter could not map

    def summary(self, today: date) -> str:
        until = today + timedelta(days=WINDOW_DAYS)
        return (
            f"wrote {self.written} expiry notices: {self.expiring} permits expire from "
            f"{today.isoformat()} to {until.isoformat()}, {self.already} already noticed, "
            f"{self.unlinked} of no linked person, {self.unreadable} unreadable"
        )


def notice_key(permit: WorkPermit) -> str:
    assert permit.valid_to is not None
    return f"{NotificationKind.PERMIT_EXPIRING.value}:{permit.key}:{permit.valid_to.isoformat()}"


def expiry_message(permit: WorkPermit, today: date) -> str:
    assert permit.valid_to is not None
    days = (permit.valid_to - today).days
    when = "today" if days == 0 else ("tomorrow" if days == 1 else f"in {days} days")
    return (
        f"Your work permit {permit.number} expires {when}, on {permit.valid_to.isoformat()}. "
        "Apply for an extension before it ends."
    )


async def expiring_permits(sources: Sources, today: date) -> tuple[list[WorkPermit], int]:
    """Every current valid period ending within the window (the adapter's expiringWorkPermits
    read, page by page), and how many rows could not be read."""
    until = today + timedelta(days=WINDOW_DAYS)
    permits: list[WorkPermit] = []
    unreadable = 0
    after: tuple[Any, ...] | None = None
    while True:
        page = await sources.work_permits.expiring_permits(today, until, PAGE, after)
        for item in page.items:
            if isinstance(item, WorkPermit) and item.valid_to is not None:
                permits.append(item)
            else:
                unreadable += 1
        if not page.has_next or not page.positions:
            return permits, unreadable
        after = page.positions[-1]


async def write_expiry_notices(sources: Sources, store: HubStore, today: date) -> ExpiryReport:
    """One run of the check; wakes the live subscribers of every person it wrote for."""
    permits, unreadable = await expiring_permits(sources, today)
    persons = await store.person_ids_by_owner([(APPLICANT_LINK, permit.owner) for permit in permits])
    taken = await store.notification_keys_taken([notice_key(permit) for permit in permits])
    notices: list[NewNotification] = []
    unlinked = 0
    for permit, person_id in zip(permits, persons, strict=True):
        if person_id is None:
            unlinked += 1
        elif notice_key(permit) not in taken:
            notices.append(
                notice(
                    person_id,
                    NotificationKind.PERMIT_EXPIRING,
                    expiry_message(permit, today),
                    subject_type="WorkPermit",
                    subject_key=permit.key,
                    key=notice_key(permit),
                )
            )
    # The store checks the keys again as it writes: a concurrent run writes nothing twice.
    written = await notify_many(store, notices)
    return ExpiryReport(
        expiring=len(permits),
        written=len(written),
        already=len(permits) - unlinked - len(written),
        unlinked=unlinked,
        unreadable=unreadable,
    )


def interval_from_environment(environ: Mapping[str, str] | None = None) -> float | None:
    """HUB_NOTIFY_INTERVAL in seconds (default 3600); 0 turns the server's check off."""
    env = os.environ if environ is None else environ
    value = env.get(INTERVAL_VARIABLE, "").strip()
    if not value:
        return DEFAULT_INTERVAL
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{INTERVAL_VARIABLE} must be a number of seconds, not {value!r}") from None
    if seconds < 0:
        raise ValueError(f"{INTERVAL_VARIABLE} must not be negative")
    return seconds or None


async def run_expiry_checks(
    sources: Sources,
    store: HubStore,
    clock: Callable[[], date],
    interval: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Check now, then every `interval` seconds (as `sleep` counts them: the hub clock's),
    until cancelled; a failed run (a source down) is logged and tried again at the next
    interval."""
    while True:
        today = clock()
        try:
            report = await write_expiry_notices(sources, store, today)
        except Exception as error:
            log.error("the expiry check failed (%s); next try in %s s", type(error).__name__, interval)
        else:
            if report.written or report.unreadable:
                log.info("expiry check: %s", report.summary(today))
        await sleep(interval)


@contextlib.asynccontextmanager
async def expiry_checks(
    sources: Sources,
    store: HubStore,
    clock: Callable[[], date],
    interval: float | None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[asyncio.Task[None] | None]:
    """The server's periodic check, running while the block runs (none for interval None);
    stopped, and waited for, when it ends."""
    if interval is None:
        yield None
        return
    task = asyncio.create_task(
        run_expiry_checks(sources, store, clock, interval, sleep), name="hub-expiry-check"
    )
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
