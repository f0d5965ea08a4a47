"""Access control per field path, applied around every resolver (never inside one):

- a field that needs a grant and has none resolves to null with a FORBIDDEN error;
- a scoped caller (a cardholder, an employer) gets FORBIDDEN for any person, or any record of
  a person, outside its scope, whatever path reaches it;
- every leaf returned under a named person is noted (so is every null or empty list: "none"
  is data about the person too), and before the response leaves, one audit record per
  person is made durable; if that fails, the data is withheld.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
)
from graphql.pyutils import Path
from strawberry.extensions import SchemaExtension

from adapters.records import (
    ElectronicCard,
    Employer,
    Entry,
    ResidencePermit,
    SocialSecurityCard,
    Visa,
    WorkPermit,
)
from audit.chain import AuditEntry
from audit.log import AuditUnavailable
from identity.store import NotificationRecord, PersonCore
from resolvers.context import Context
from resolvers.errors import Forbidden, Refusal
from resolvers.verification import Verification
from schema.mutation import UserError, UserErrorCode

# Fields every authenticated caller may read: what it may read.
OPEN_FIELDS = frozenset({("Query", "accessGrants")})
# The identity link through which each kind of record names its person.
OWNER_LINK: dict[type, str] = {
    WorkPermit: "WP_SQR",
    ElectronicCard: "SBK_DZK",
    Visa: "CRJ_RY",
    Entry: "CRJ_RY",
    ResidencePermit: "CRJ_RY",
    SocialSecurityCard: "SBK_KXX",
}


class AuditNotRecorded(Refusal):
    """The response's audit records could not be made durable: its data is withheld."""

    code = "AUDIT_UNAVAILABLE"


class DeniedMutation:
    """The payload of a mutation the caller may not call: a FORBIDDEN user error, nothing else."""

    def __init__(self, context: Context, name: str) -> None:
        caller = context.caller
        purpose = f" for {caller.purpose}" if caller.purpose else ""
        self.user_errors = [
            UserError(
                code=UserErrorCode.FORBIDDEN,
                message=f"{name} may not be called by {caller.role.value}{purpose}.",
                field=None,
            )
        ]

    def __getattr__(self, _name: str) -> None:
        return None


class AccessControl(SchemaExtension):
    def __init__(self) -> None:
        # Keyed by id(): a field's Path is the very object its children point back to, and
        # hashing a Path hashes its whole chain.
        self.names: dict[int, str] = {}
        self.leaves: list[tuple[Path, str]] = []
        self.prefixes: dict[int, tuple[int, str] | None] = {}
        self.owned_at: dict[int, tuple[int, str]] = {}  # path -> (person id, type name)
        self.owners_at: dict[int, tuple[Path, tuple[str, str], str]] = {}
        self.leaf_fields: frozenset[tuple[str, str]] = frozenset()

    def on_execute(self) -> Iterator[None]:
        self.leaf_fields = _leaf_fields(self.execution_context.schema._schema)  # type: ignore[attr-defined]
        yield

    def resolve(
        self, _next: Callable[..., Any], root: Any, info: GraphQLResolveInfo, *args: str, **kwargs: Any
    ) -> Any:
        context: Context = info.context
        key = (info.parent_type.name, info.field_name)
        if key[0] == "Mutation" and key[1] not in context.grant.mutations:
            return _answer(DeniedMutation(context, key[1]))  # mutations are async: answer awaitably
        if (
            key in context.policy.guarded
            and key[0] != "Mutation"
            and key not in context.grant.readable
            and key not in OPEN_FIELDS
        ):
            caller = context.caller
            raise Forbidden(
                f"{key[0]}.{key[1]} is not granted to {caller.role.value}"
                + (f" for {caller.purpose}" if caller.purpose else "")
            )
        path = info.path
        if key in self.leaf_fields:
            self.leaves.append((path, info.field_name))
            return _next(root, info, *args, **kwargs)
        self.names[id(path)] = info.field_name
        result = _next(root, info, *args, **kwargs)
        if inspect.isawaitable(result):
            return self._inspect_later(result, info)
        return self._inspect(result, info)

    async def _inspect_later(self, result: Any, info: GraphQLResolveInfo) -> Any:
        value = self._inspect(await result, info)
        return await value if inspect.isawaitable(value) else value

    def _inspect(self, value: Any, info: GraphQLResolveInfo) -> Any:
        """Note whose data this object is; for a scoped caller, refuse another person's."""
        if value is None or (isinstance(value, list | tuple) and not value):
            # Nothing below it, yet "none" is data too (no visa, no permit): its path is noted.
            self.leaves.append((info.path, info.field_name))
            return value
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
            if self._owner_of(info.path.prev) is None:  # under a person already: theirs
                self.owners_at[id(info.path)] = (info.path, owner, _type_name(info))
            return value
        elif isinstance(value, Employer) and context.caller.scoped and info.parent_type.name == "Query":
            if value.credit_code != context.caller.employer:
                raise Forbidden("this employer is outside the caller's scope")
            return value
        if person_id is not None:
            _check_scope(context, person_id)
            self.owned_at[id(info.path)] = (person_id, _type_name(info))
        return value

    async def _check_owner(self, value: Any, owner: tuple[str, str], info: GraphQLResolveInfo) -> Any:
        context: Context = info.context
        person_id = await context.loaders.person_id_by_owner.load(owner)
        if person_id is None:
            raise Forbidden("this record is outside the caller's scope")
        _check_scope(context, person_id)
        self.owned_at[id(info.path)] = (person_id, _type_name(info))
        return value

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        result = self.execution_context.result
        context = self.execution_context.context
        if result is None or not result.data or not isinstance(context, Context) or context.audit is None:
            return
        entries = await self._audit_entries(context)
        try:
            await context.audit.append(entries)
        except AuditUnavailable:
            refusal = AuditNotRecorded(
                "The access could not be recorded in the audit trail, so no data is returned."
            )
            result.data = None
            # The refusal carries its code, so that shaping the errors keeps it.
            result.errors = [
                GraphQLError(str(refusal), original_error=refusal, extensions={"code": refusal.code})
            ]

    async def _audit_entries(self, context: Context) -> list[AuditEntry]:
        if self.owners_at:
            owners = list(self.owners_at.values())
            found = await context.loaders.person_id_by_owner.load_many([owner for _, owner, _ in owners])
            for (path, _, type_name), person_id in zip(owners, found, strict=True):
                if person_id is not None:
                    self.owned_at.setdefault(id(path), (person_id, type_name))
        if not self.owned_at:
            return []
        fields: dict[int, set[str]] = defaultdict(set)
        for leaf, name in self.leaves:
            prefix = self._prefix(leaf.prev)
            if prefix is not None:
                fields[prefix[0]].add(f"{prefix[1]}.{name}")
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
            owned = self.owned_at.get(id(path))
            if owned is not None:
                return owned[0]
            path = path.prev
        return None

    def _prefix(self, path: Path | None) -> tuple[int, str] | None:
        """The person an object belongs to, and its path from that person's object, named by
        the object's type (`Person.visas`, `WorkPermit`), however the query reached it;
        remembered per object, since every leaf below asks."""
        if path is None:
            return None
        known = self.prefixes.get(id(path), False)
        if known is not False:
            return known  # type: ignore[return-value]
        owned = self.owned_at.get(id(path))
        if owned is not None:
            prefix: tuple[int, str] | None = owned
        elif isinstance(path.key, int):  # a list item: its list's prefix
            prefix = self._prefix(path.prev)
        else:
            above = self._prefix(path.prev)
            prefix = None if above is None else (above[0], f"{above[1]}.{self.names.get(id(path), path.key)}")
        self.prefixes[id(path)] = prefix
        return prefix


async def _answer(value: Any) -> Any:
    return value


def _type_name(info: GraphQLResolveInfo) -> str:
    return get_named_type(info.return_type).name


_LEAF_FIELDS: dict[int, frozenset[tuple[str, str]]] = {}


def _leaf_fields(schema: GraphQLSchema) -> frozenset[tuple[str, str]]:
    """(type, field) of every field whose value is a scalar or an enum, once per schema."""
    leaves = _LEAF_FIELDS.get(id(schema))
    if leaves is None:
        leaves = frozenset(
            (type_name, field_name)
            for type_name, graphql_type in schema.type_map.items()
            if isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType)
            for field_name, definition in graphql_type.fields.items()
            if isinstance(get_named_type(definition.type), GraphQLScalarType | GraphQLEnumType)
        )
        _LEAF_FIELDS[id(schema)] = leaves
    return leaves


def _check_scope(context: Context, person_id: int) -> None:
    reachable = context.scope.person_ids
    if reachable is not None and person_id not in reachable:
        raise Forbidden("this person is outside the caller's scope")
