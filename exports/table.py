"""What every export answers: its columns, and its rows in batches, each batch naming the
persons it shows (audited before the batch leaves the hub)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Literal, TypeVar

from adapters import Sources
from domain.errors import ClientError
from domain.records import StatisticsDimension
from identity.store import HubStore
from opaque.ids import GlobalIds

E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True)
class Column:
    name: str
    kind: Literal["string", "integer", "date"] = "string"


@dataclass(frozen=True)
class Batch:
    rows: list[tuple[Any, ...]]
    # The hub's persons the rows show, once each (none for an aggregate).
    person_ids: list[int]


@dataclass
class Extract:
    columns: tuple[Column, ...]
    batches: AsyncGenerator[Batch, None]
    # How many rows follow, when it was cheap to know up front.
    rows: int | None = None


@dataclass(frozen=True)
class Reader:
    """What an export reads with, for one caller: the sources, the hub store, the hub's global
    ids, the hub's today, rows per batch, and the employer an EMPLOYER's token is bound to."""

    sources: Sources
    store: HubStore
    ids: GlobalIds
    today: date
    batch_rows: int
    employer: str | None = None


class Params:
    """An export's query parameters, each read once by its name; a bad one is a ClientError
    naming it and the rule, and so is a parameter the export does not take."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._read: set[str] = set()

    def text(self, name: str) -> str | None:
        self._read.add(name)
        value = self._values.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int | None = None) -> int:
        """A whole number; required when it has no default."""
        value = self.text(name)
        if value is None:
            if default is None:
                raise ClientError(name, "is required")
            return default
        try:
            return int(value)
        except ValueError:
            raise ClientError(name, "must be a whole number") from None

    def boolean(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise ClientError(name, "must be true or false")
        return value == "true"

    def choice(self, name: str, kind: type[E], allowed: Sequence[E] | None = None) -> E | None:
        value = self.text(name)
        return None if value is None else _member(name, value, kind, allowed)

    def choices(self, name: str, kind: type[E], allowed: Sequence[E] | None = None) -> list[E]:
        """A comma-separated list, each value once."""
        value = self.text(name)
        if value is None:
            return []
        chosen = [_member(name, v.strip(), kind, allowed) for v in value.split(",")]
        if len(set(chosen)) != len(chosen):
            raise ClientError(name, "names a value twice")
        return chosen

    def check_all_read(self, also: Sequence[str] = ()) -> None:
        """Refuse a parameter nobody read (a misspelt one would otherwise widen the export)."""
        unknown = sorted(set(self._values) - self._read - set(also))
        if unknown:
            known = ", ".join(sorted(self._read | set(also)))
            raise ClientError(unknown[0], f"is not a parameter of this export (it takes {known})")


def _member(name: str, value: str, kind: type[E], allowed: Sequence[E] | None) -> E:
    options = list(allowed if allowed is not None else kind)
    for option in options:
        if option.value == value:
            return option
    raise ClientError(name, f"must be one of {', '.join(o.value for o in options)}")


# An export: its reads for one caller, from its parameters.
Opener = Callable[[Params, Reader], Awaitable[Extract]]


def dimension_column(dimension: StatisticsDimension) -> Column:
    """A statistics dimension's column, named as the graph's enum value in camelCase."""
    first, *rest = dimension.value.lower().split("_")
    return Column(first + "".join(word.title() for word in rest))
