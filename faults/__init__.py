"""Fault injection for tests and drills: a chosen agency's database fails, hangs, slows down or
returns corrupt rows, injected at the database connection (the engine's own events), below the
adapters, their time budgets, retries and breakers, so that every failure is rehearsed against
the real databases through the very code that serves requests.

Configured at start by `HUB_FAULTS` (inline) or `HUB_FAULTS_FILE` (a JSON or TOML file, read
again whenever it changes or appears, so a drill switches faults on and off while the server
runs; a file that cannot be read at start stops the start, later it leaves the faults as they
were), and
switchable at runtime in-process (`faults_of(sources).set(...)`). Never set in service.

    HUB_FAULTS="WORK_PERMIT_SYSTEM=down; EXIT_ENTRY=slow:0.5; CARD_SERVICE=hang:60"
    HUB_FAULTS="BEIJING_PASS=corrupt:ZT=X; SOCIAL_INSURANCE=down@0.3"   # @: share of statements

    # faults.toml                              # faults.json
    [WORK_PERMIT_SYSTEM]                        {"WORK_PERMIT_SYSTEM": {"kind": "down"},
    kind = "down"                                "EXIT_ENTRY": {"kind": "slow", "seconds": 0.5}}
    [BEIJING_PASS]
    kind = "corrupt"
    column = "ZT"
    value = "X"

Kinds: `down` raises the driver's OperationalError at connect and at every statement; `hang`
sleeps `seconds` (default an hour) before each statement and connect; `slow` sleeps `seconds`
before each statement; `corrupt` replaces the value of `column` in every fetched row that has
it with `value`. `rate` (0..1) hits only that share of statements, at random; `times` only the
next n statements, after which the fault is spent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
import tomllib
from collections import Counter, deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeGuard
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.engine import Engine

from adapters import Sources
from adapters.base import await_
from adapters.registry import DEFAULT_AGENCIES
from domain.records import AgencyId

log = logging.getLogger("hub.faults")
REGISTERED = tuple(spec.id for spec in DEFAULT_AGENCIES)

Kind = Literal["down", "hang", "slow", "corrupt"]
KINDS: tuple[str, ...] = ("down", "hang", "slow", "corrupt")
HANG_SECONDS = 3600.0
# How often a fault file is looked at for changes (seconds).
FILE_CHECK_INTERVAL = 0.05


class FaultConfigError(ValueError):
    """A fault configuration that cannot be read: the start stops (drills only)."""


@dataclass(frozen=True, slots=True)
class Fault:
    kind: Kind
    seconds: float = 0.0  # hang (0: an hour), slow
    column: str | None = None  # corrupt
    value: Any = None  # corrupt
    rate: float = 1.0
    times: int | None = None

    @classmethod
    def down(cls, rate: float = 1.0, times: int | None = None) -> Fault:
        return cls("down", rate=rate, times=times)

    @classmethod
    def hang(cls, seconds: float = HANG_SECONDS) -> Fault:
        return cls("hang", seconds=seconds)

    @classmethod
    def slow(cls, seconds: float, rate: float = 1.0) -> Fault:
        return cls("slow", seconds=seconds, rate=rate)

    @classmethod
    def corrupt(cls, column: str, value: Any, rate: float = 1.0) -> Fault:
        return cls("corrupt", column=column, value=value, rate=rate)


class FaultPlan:
    """Which agency misbehaves how, and what reached each agency's connection."""

    def __init__(
        self,
        faults: Mapping[AgencyId, Fault] | None = None,
        file: Path | None = None,
        agencies: Collection[AgencyId] = REGISTERED,
    ) -> None:
        self._set: dict[AgencyId, Fault] = dict(faults or {})
        self._file = file
        self._agencies = agencies
        self._file_faults: dict[AgencyId, Fault] = {}
        self._file_stamp: int | None = None
        self._file_checked = 0.0
        self.statements: Counter[str] = Counter()  # statements that reached the connection
        self.injected: Counter[str] = Counter()  # of which a fault hit
        if file is not None:
            self._file_stamp = _stamp(file)
            if self._file_stamp is not None:  # a file not there yet is read when it appears
                self._file_faults = read_fault_file(file, agencies)  # a broken one stops the start

    def set(self, agency: AgencyId, fault: Fault | None) -> None:
        """Switch a fault on (or off, with None) for an agency, at once."""
        if fault is None:
            self._set.pop(agency, None)
        else:
            self._set[agency] = fault

    def clear(self) -> None:
        """Switch every fault set in-process off (a fault file's stay as the file says)."""
        self._set.clear()

    def active(self) -> dict[AgencyId, Fault]:
        self._reread()
        return {**self._file_faults, **self._set}

    def fault(self, agency: AgencyId) -> Fault | None:
        """The fault that hits this statement of the agency's, if any (spending one of `times`)."""
        self._reread()
        fault = self._set.get(agency) or self._file_faults.get(agency)
        if fault is None or (fault.rate < 1.0 and random.random() >= fault.rate):
            return None
        if fault.times is not None:
            left = fault.times - 1
            target = self._set if self._set.get(agency) is fault else self._file_faults
            if left <= 0:
                target.pop(agency, None)
            else:
                target[agency] = replace(fault, times=left)
        self.injected[str(agency)] += 1
        return fault

    def _reread(self) -> None:
        if self._file is None:
            return
        now = time.monotonic()
        if now - self._file_checked < FILE_CHECK_INTERVAL:
            return
        self._file_checked = now
        stamp = _stamp(self._file)
        if stamp == self._file_stamp:
            return
        self._file_stamp = stamp
        try:
            self._file_faults = read_fault_file(self._file, self._agencies) if stamp is not None else {}
        except FaultConfigError as error:
            log.warning("fault file not applied: %s", error)  # the previous faults stay
            return
        log.warning("faults now: %s", describe(self._file_faults) or "none")


def _stamp(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def describe(faults: Mapping[AgencyId, Fault]) -> str:
    return "; ".join(f"{agency}={fault.kind}" for agency, fault in sorted(faults.items()))


# ---------------------------------------------------------------- configuration


def _agency(name: str, agencies: Collection[AgencyId]) -> AgencyId:
    agency = name.strip().upper()
    if agency not in agencies:
        raise FaultConfigError(f"{name!r} is not an agency ({', '.join(agencies)})")
    return agency


def _number(text: Any, what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise FaultConfigError(f"{what}: {text!r} is not a number") from None
    if not value >= 0:
        raise FaultConfigError(f"{what}: {text!r} is negative")
    return value


def _is_kind(kind: str) -> TypeGuard[Kind]:
    return kind in KINDS


def fault_from_mapping(agency: AgencyId, spec: Mapping[str, Any]) -> Fault:
    kind = str(spec.get("kind", "")).strip().lower()
    if not _is_kind(kind):
        raise FaultConfigError(f"{agency}: kind {kind!r} is not one of {', '.join(KINDS)}")
    rate = _number(spec.get("rate", 1.0), f"{agency}.rate")
    if rate > 1:
        raise FaultConfigError(f"{agency}.rate: {rate} is more than 1")
    times = spec.get("times")
    if times is not None and (not isinstance(times, int) or times < 1):
        raise FaultConfigError(f"{agency}.times: {times!r} is not a positive whole number")
    seconds = _number(spec.get("seconds", 0.0), f"{agency}.seconds")
    if kind == "hang" and not seconds:
        seconds = HANG_SECONDS
    if kind == "slow" and not seconds:
        raise FaultConfigError(f"{agency}: a slow fault needs seconds")
    column = spec.get("column")
    if kind == "corrupt" and not column:
        raise FaultConfigError(f"{agency}: a corrupt fault needs a column")
    return Fault(kind, seconds, column, spec.get("value"), rate, times)


def parse_faults(text: str, agencies: Collection[AgencyId] = REGISTERED) -> dict[AgencyId, Fault]:
    """`AGENCY=kind[:argument][@rate]; ...`, or the same as a JSON object."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            return _from_document(json.loads(text), agencies)
        except json.JSONDecodeError as error:
            raise FaultConfigError(f"HUB_FAULTS is not JSON: {error}") from None
    faults: dict[AgencyId, Fault] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, equals, rest = part.partition("=")
        if not equals:
            raise FaultConfigError(f"{part!r} is not AGENCY=kind")
        agency = _agency(name, agencies)
        rest, _at, rate = rest.partition("@")
        kind, _colon, argument = rest.strip().partition(":")
        spec: dict[str, Any] = {"kind": kind, "rate": rate or 1.0}
        if kind.strip().lower() in ("hang", "slow") and argument:
            spec["seconds"] = argument
        elif kind.strip().lower() == "corrupt":
            column, _eq, value = argument.partition("=")
            spec |= {"column": column.strip(), "value": value}
        faults[agency] = fault_from_mapping(agency, spec)
    return faults


def _from_document(document: Any, agencies: Collection[AgencyId]) -> dict[AgencyId, Fault]:
    if not isinstance(document, dict):
        raise FaultConfigError("a fault configuration is a table of agencies")
    faults = {}
    for name, spec in document.items():
        agency = _agency(name, agencies)
        if not isinstance(spec, dict):
            raise FaultConfigError(f"{agency}: a fault is a table with a kind")
        faults[agency] = fault_from_mapping(agency, spec)
    return faults


def read_fault_file(path: Path, agencies: Collection[AgencyId] = REGISTERED) -> dict[AgencyId, Fault]:
    try:
        text = path.read_text()
    except OSError as error:
        raise FaultConfigError(f"{path}: {error.strerror}") from None
    try:
        document = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text or "{}")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise FaultConfigError(f"{path}: {error}") from None
    return _from_document(document, agencies)


def plan_from_environment(
    environ: Mapping[str, str] | None = None, agencies: Collection[AgencyId] = REGISTERED
) -> FaultPlan:
    """HUB_FAULTS and HUB_FAULTS_FILE, naming the given agencies; none set: a plan with no
    fault, switchable at runtime."""
    env = os.environ if environ is None else environ
    inline = parse_faults(env.get("HUB_FAULTS", ""), agencies)
    file = env.get("HUB_FAULTS_FILE", "").strip()
    plan = FaultPlan(inline, Path(file) if file else None, agencies)
    active = plan.active()
    if active:
        log.warning("fault injection is on: %s (drills and tests only)", describe(active))
    return plan


# ---------------------------------------------------------------- injection at the connection

_PLANS: WeakKeyDictionary[Engine, FaultPlan] = WeakKeyDictionary()


def install(sources: Sources, plan: FaultPlan | None = None) -> FaultPlan:
    """Put the plan under every source's connections (once per engine); returns it."""
    plan = plan if plan is not None else FaultPlan()
    for source in sources.all():
        _install(source.engine.sync_engine, source.agency, plan)
    return plan


def faults_of(sources: Sources) -> FaultPlan:
    """The plan installed under these sources (tests switch faults through it)."""
    return _PLANS[sources.work_permits.engine.sync_engine]


def _install(engine: Engine, agency: AgencyId, plan: FaultPlan) -> None:
    if engine in _PLANS:
        _PLANS[engine] = plan
        return
    _PLANS[engine] = plan

    def current() -> FaultPlan:
        return _PLANS[engine]

    def fail(dialect: Any) -> Exception:
        error: Exception = dialect.loaded_dbapi.OperationalError(
            f"fault injected: the {agency} database is down"
        )
        return error

    @event.listens_for(engine, "do_connect")
    def _connecting(dialect: Any, _record: Any, _args: Any, _kwargs: Any) -> None:
        fault = current().fault(agency)
        if fault is None:
            return
        if fault.kind == "down":
            raise fail(dialect)
        if fault.kind == "hang":
            await_(asyncio.sleep(fault.seconds))

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: Any) -> None:
        plan = current()
        plan.statements[str(agency)] += 1
        fault = plan.fault(agency)
        if context is not None:
            context._hub_fault = fault
        if fault is None:
            return
        if fault.kind == "down":
            raise fail(conn.dialect)
        if fault.kind in ("hang", "slow"):
            await_(asyncio.sleep(fault.seconds))

    @event.listens_for(engine, "after_cursor_execute")
    def _after(_conn: Any, cursor: Any, _stmt: Any, _params: Any, context: Any, _many: Any) -> None:
        fault = getattr(context, "_hub_fault", None)
        if fault is None or fault.kind != "corrupt" or not cursor.description:
            return
        names = [column[0] for column in cursor.description]
        if fault.column not in names or not hasattr(cursor, "_rows"):
            return  # no such column here, or a streamed (server-side) cursor
        index = names.index(fault.column)
        # The async driver adapters buffer a result's rows before SQLAlchemy reads them.
        cursor._rows = deque(
            tuple(fault.value if i == index else v for i, v in enumerate(row)) for row in cursor._rows
        )
