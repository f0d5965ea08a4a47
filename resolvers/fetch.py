"""The few moves every resolver makes: follow a declared relationship, page it, and hand
back values together with the problems found in them."""

from __future__ import annotations

from typing import Any, TypeVar

from adapters.relationships import PagedPersonRelationship, PersonRelationship
from domain.errors import SourceDataInvalid
from domain.records import Page
from opaque.cursors import page_size
from resolvers.context import Info

_Value = TypeVar("_Value")


def deliver(info: Info, value: _Value) -> _Value:
    """Report what came with the value (unreadable rows of a list, failed check characters),
    then return it: the value still answers, with an error at this path."""
    path = tuple(info.path.as_list())
    problems = getattr(value, "problems", None)
    if problems:
        for problem in problems:
            info.context.report(path, problem)
    return value


async def person_related(info: Info, relationship: PersonRelationship[Any], person_id: int) -> Any:
    """The records a person has in one agency, through the person's identity links."""
    return deliver(info, await info.context.loaders.person_relation(relationship).load(person_id))


async def person_current(info: Info, relationship: PersonRelationship[Any], person_id: int) -> Any:
    """The person's current record: decided by the read itself, or the first of the
    relationship's order."""
    records = await info.context.loaders.person_relation(relationship).load(person_id)
    if not relationship.many:
        return deliver(info, records)
    if records.head_problem is not None:
        # The row that comes first in the current-record order cannot be read.
        raise SourceDataInvalid(records.head_problem)
    return deliver(info, records[0]) if records else None


async def person_page(
    info: Info,
    relationship: PagedPersonRelationship[Any],
    person_id: int,
    first: int | None,
    after: str | None,
) -> tuple[Page[Any], str]:
    """One keyset page of a person's records in one agency."""
    size = page_size(first)
    position = info.context.cursors.decode(relationship.name, after)
    page = await info.context.loaders.paged_relation(relationship).load((person_id, size, position))
    return page, relationship.name


def edges(info: Info, page: Page[Any]) -> list[tuple[tuple[Any, ...], Any]]:
    """The page's readable items with their positions; an unreadable row is reported at this path."""
    path = tuple(info.path.as_list())
    kept = []
    for position, item in zip(page.positions, page.items, strict=True):
        if isinstance(item, SourceDataInvalid):
            info.context.report(path, item.problem)
        else:
            deliver(info, item)
            kept.append((position, item))
    return kept
