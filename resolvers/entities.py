"""Federation's entity references, read as the root field each stands for: a `Person` by its
id as `person(lookup: {id:})`, a `WorkPermit` by its number as `workPermit(number:)` (the
current period), an `Employer` by its credit code as `employer(creditCode:)`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from domain.errors import ClientError
from domain.records import Employer, WorkPermit
from identity.store import PersonCore
from resolvers import permit, query
from resolvers.context import Info

# Per entity type: its key field, and the root field that reads it the same way.
ENTITY_KEYS: dict[str, tuple[str, str]] = {
    "Person": ("id", "person"),
    "WorkPermit": ("number", "workPermit"),
    "Employer": ("creditCode", "employer"),
}


def _person(info: Info, key: str) -> Awaitable[object]:
    return query.person(info, query.Lookup(id=key))


_READERS: dict[str, Callable[[Info, str], Awaitable[object]]] = {
    "Person": _person,
    "WorkPermit": permit.by_number,
    "Employer": permit.employer_by_credit_code,
}


def entity_type(representation: object, index: int) -> str:
    """The representation's `__typename`, one of the entity types; ClientError otherwise."""
    where = f"representations[{index}]"
    if not isinstance(representation, dict):
        raise ClientError(where, "must be an object with `__typename` and the type's key")
    type_name = representation.get("__typename")
    if type_name not in ENTITY_KEYS:
        raise ClientError(f"{where}.__typename", f"must be one of {', '.join(ENTITY_KEYS)}")
    return str(type_name)


def entity_type_of(record: object) -> str:
    """The entity type a record read by `entity` is."""
    if isinstance(record, PersonCore):
        return "Person"
    if isinstance(record, WorkPermit):
        return "WorkPermit"
    if isinstance(record, Employer):
        return "Employer"
    raise TypeError(f"{type(record).__name__} is not an entity")


async def entity(info: Info, representation: Any, index: int) -> object:
    """The entity a representation names, or None where there is none; ClientError naming the
    representation's field for a representation that names none."""
    type_name = entity_type(representation, index)
    key_field = ENTITY_KEYS[type_name][0]
    key = representation.get(key_field)
    if not isinstance(key, str) or not key.strip():
        raise ClientError(f"representations[{index}].{key_field}", f"a {type_name}'s key must be a string")
    return await _READERS[type_name](info, key)
