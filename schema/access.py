"""Access control per field path, applied around every resolver (never inside one):

- a field that needs a grant and has none resolves to null with a FORBIDDEN error;
- a scoped caller (a cardholder, an employer) gets FORBIDDEN for any person, or any record of
  a person, outside its scope, whatever path reaches it;
- every leaf returned under a named person is noted, and before the response leaves, one
  audit record per person is made durable; if that fails, the data is withheld.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLEnumType, GraphQLError, GraphQLResolveInfo, GraphQLScalarType, get_named_type
from graphql.pyutils import Path
from strawberry.extensions import SchemaExtension

from adapters.records import ElectronicCard, Employer, WorkPermit
from audit.chain import AuditEntry
from audit.log import AuditUnavailable
from identity.store import NotificationRecord, PersonCore
from resolvers.context import Context
from resolvers.errors import Forbidden
from resolvers.verification import Verification

# Fields every authenticated caller may read: what it may read.
OPEN_FIELDS = frozenset({("Query", "accessGrants")})
# The identity link through which each kind of record names its person.
OWNER_LINK: dict[type, str] = {WorkPermit: "WP_SQR", ElectronicCard: "SBK_DZK"}


class AccessControl(SchemaExtension):
    def __init__(self) -> None:
        self.names: dict[Path, str] = {}
        self.leaves: list[Path] = []
        self.persons_at: dict[Path, int] = {}
        self.owners_at: dict[Path, tuple[str, str]] = {}

    def resolve(
        self, _next: Callable[..., Any], root: Any, info: GraphQLResolveInfo, *args: str, **kwargs: Any
    ) -> Any:
        context: Context = info.context
        key = (info.parent_type.name, info.field_name)
        if key in context.policy.guarded and key not in context.grant.readable and key not in OPEN_FIELDS:
            caller = context.caller
            raise Forbidden(
                f"{key[0]}.{key[1]} is not granted to {caller.role.value}"
                + (f" for {caller.purpose}" if caller.purpose else "")
            )
        path = info.path
        self.names[path] = info.field_name
        if isinstance(get_named_type(info.return_type), GraphQLScalarType | GraphQLEnumType):
            self.leaves.append(path)
            return _next(root, info, *args, **kwargs)
        result = _next(root, info, *args, **kwargs)
        if inspect.isawaitable(result):
            return self._inspect_later(result, info)
        return self._inspect(result, info)

    async def _inspect_later(self, result: Any, info: GraphQLResolveInfo) -> Any:
        value = self._inspect(await result, info)
        return await value if inspect.isawaitable(value) else value

    def _inspect(self, value: Any, info: GraphQLResolveInfo) -> Any:
        """Note whose data this object is; for a scoped caller, refuse another person's."""
        context: Context = info.context
        person_id: int | None = None
        if isinstance(value, PersonCore):
            person_id = value.id
        elif isinstance(value, NotificationRecord):
            person_id = value.person_id
        elif isinstance(value, Verification):
            person_id = value.holder_id
        elif type(value) in OWNER_LINK:
            owner = (OWNER_LINK[type(value)], value.owner)
            if context.caller.scoped:
                return self._check_owner(value, owner, info)
            self.owners_at[info.path] = owner
            return value
        elif isinstance(value, Employer) and context.caller.scoped and info.parent_type.name == "Query":
            if value.credit_code != context.caller.employer:
                raise Forbidden("this employer is outside the caller's scope")
            return value
        if person_id is not None:
            _check_scope(context, person_id)
            self.persons_at[info.path] = person_id
        return value

    async def _check_owner(self, value: Any, owner: tuple[str, str], info: GraphQLResolveInfo) -> Any:
        context: Context = info.context
        person_id = await context.loaders.person_id_by_owner.load(owner)
        if person_id is None:
            raise Forbidden("this record is outside the caller's scope")
        _check_scope(context, person_id)
        self.persons_at[info.path] = person_id
        return value

    async def on_execute(self) -> AsyncIterator[None]:
        yield
        result = self.execution_context.result
        context: Context = self.execution_context.context
        if result is None or not result.data or context.audit is None:
            return
        entries = await self._audit_entries(context)
        try:
            await context.audit.append(entries)
        except AuditUnavailable:
            result.data = None
            result.errors = [
                GraphQLError(
                    "The access could not be recorded in the audit trail, so no data is returned.",
                    extensions={"code": "AUDIT_UNAVAILABLE"},
                )
            ]

    async def _audit_entries(self, context: Context) -> list[AuditEntry]:
        if self.owners_at:
            owners = list(self.owners_at.items())
            found = await context.loaders.person_id_by_owner.load_many([owner for _, owner in owners])
            for (path, _), person_id in zip(owners, found, strict=True):
                if person_id is not None:
                    self.persons_at.setdefault(path, person_id)
        if not self.persons_at:
            return []
        fields: dict[int, set[str]] = defaultdict(set)
        for leaf in self.leaves:
            person_id = self._owner_of(leaf)
            if person_id is not None:
                fields[person_id].add(self._field_path(leaf))
        caller = context.caller
        now = datetime.now(UTC)
        return [
            AuditEntry(
                at=now,
                request_id=caller.request_id,
                client=caller.subject,
                role=caller.role.value,
                purpose=caller.purpose,
                case_reference=caller.case_reference,
                person_id=person_id,
                fields=tuple(sorted(paths)),
                restricted_until=caller.restricted_until,
            )
            for person_id, paths in sorted(fields.items())
        ]

    def _owner_of(self, path: Path | None) -> int | None:
        while path is not None:
            person_id = self.persons_at.get(path)
            if person_id is not None:
                return person_id
            path = path.prev
        return None

    def _field_path(self, path: Path | None) -> str:
        names: list[str] = []
        while path is not None:
            if isinstance(path.key, str):
                names.append(self.names.get(path, path.key))
            path = path.prev
        return ".".join(reversed(names))


def _check_scope(context: Context, person_id: int) -> None:
    reachable = context.scope.person_ids
    if reachable is not None and person_id not in reachable:
        raise Forbidden("this person is outside the caller's scope")
