"""The relationships an agency declares: which of its records belong to a person, and which
it reads by the records' own keys, each answered by one of its source's batch reads.

A person's relationships are read per group of the person's owner keys in that agency (from
identity links); the per-request DataLoaders (resolvers/loaders.py) are built from these
declarations, one call per level for all parents.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

from adapters.base import Group, SqlSource

S = TypeVar("S", bound=SqlSource)
BatchRead = Callable[[Sequence[Any]], Awaitable[Sequence[Any]]]


@dataclass(frozen=True)
class PersonRelationship(Generic[S]):
    """Records of one agency that belong to a person, read per owner-key group."""

    name: str
    source: type[S]
    read: Callable[[S, date], BatchRead]
    many: bool = True  # False: the read answers each person's current record


@dataclass(frozen=True)
class PagedPersonRelationship(Generic[S]):
    """Like PersonRelationship, but a keyset page per person."""

    name: str
    source: type[S]
    read: Callable[[S, Sequence[Group], int, tuple[Any, ...] | None, date], Awaitable[Sequence[Any]]]


@dataclass(frozen=True)
class KeyedRead(Generic[S]):
    """A batch read by the records' own keys (not per person). `linked_as` is the identity
    link that names whose the records are (their owner key's): the loader notes each record's
    person with it, in one statement of the hub store per batch; None for records of nobody
    (employers) and for records read under their person's record (a permit's history)."""

    name: str
    source: type[S]
    read: Callable[[S, date], BatchRead]
    linked_as: str | None = None


Relationship = PersonRelationship[Any] | PagedPersonRelationship[Any] | KeyedRead[Any]
