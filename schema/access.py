"""Access control per field path, applied around every resolver (never inside one):

- an object of a type the caller's grants do not name (reached by `node`, a nested path or a
  list) is null with a FORBIDDEN error, so its non-null fields never come with it;
- a field that needs a grant and has none resolves to null with a FORBIDDEN error;
- an argument that tests a fact about a person (a filter, a lookup identifier) needs the
  grant to read that fact: otherwise FORBIDDEN naming the argument, before anything is read;
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
from typing import Any, Literal

from graphql import (
    BREAK,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    Visitor,
    get_named_type,
    visit,
)
from graphql.pyutils import Path
from strawberry.extensions import SchemaExtension

from audit.chain import AuditEntry
from audit.log import AuditUnavailable
from domain.errors import AuditNotRecorded, Forbidden, Refusal
from domain.records import PERSON_RECORDS, Employer
from identity.store import NotificationRecord, PersonCore
from resolvers.context import Context
from resolvers.entities import ENTITY_KEYS, entity_type, entity_type_of
from resolvers.verification import Verification
from schema.mutation import UserError, UserErrorCode

# Fields every authenticated caller may read: what it may read; federation's entry points,
# whose entities are checked as the root fields they stand for, and whose SDL is introspection.
ENTITIES = ("Query", "_entities")
OPEN_FIELDS = frozenset({("Query", "accessGrants"), ENTITIES, ("Query", "_service")})
# Fields that read the schema: granted with `introspect`.
INTROSPECTION_FIELDS = frozenset({"__schema", "__type", "_service"})


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
        self.leaf_fields: frozenset[tuple[str, str]] = frozenset()
        self.objects: list[Path] = []  # every object (or non-empty list) returned
        # Federation's `_entities`: its field's path, and per item (person id, type name).
        self.entities_path: Path | None = None
        self.entity_owners: dict[int, tuple[int, str]] = {}
        self.entities_reached: set[int] = set()  # the items some leaf or object is under

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        self.leaf_fields = _leaf_fields(execution.schema._schema)
        context = execution.context
        document = execution.graphql_document
        if isinstance(context, Context) and not context.grant.introspect and execution.result is None:
            if document is not None and _introspects(document):
                refusal = Forbidden(f"Introspection is not granted to {_caller(context)}")
                execution.result = ExecutionResult(data=None, errors=[_as_error(refusal)])
        yield

    def resolve(
        self, _next: Callable[..., Any], root: Any, info: GraphQLResolveInfo[Any], *args: str, **kwargs: Any
    ) -> Any:
        if info.field_name.startswith("__"):  # `__typename`: the type the query already named
            return _next(root, info, *args, **kwargs)
        context: Context = info.context
        key = (info.parent_type.name, info.field_name)
        if key == ENTITIES:
            return self._entities(_next, root, info, kwargs["representations"])
        if key[0] == "Mutation" and key[1] not in context.grant.mutations:
            return _answer(DeniedMutation(context, key[1]))  # mutations are async: answer awaitably
        if not context.policy.reaches(context.grant, key[0]):
            # Its object was let through unchecked: none of its fields comes with it either.
            raise Forbidden(f"{key[0]} is not granted to {_caller(context)}")
        if _denied(context, key):
            raise Forbidden(f"{key[0]}.{key[1]} is not granted to {_caller(context)}")
        tested = context.policy.tested.get(key)
        if tested:
            _check_arguments(context, info, tested, kwargs)
        path = info.path
        if key in self.leaf_fields:
            self.leaves.append((path, info.field_name))
            return _next(root, info, *args, **kwargs)
        self.names[id(path)] = info.field_name
        result = _next(root, info, *args, **kwargs)
        if inspect.isawaitable(result):
            return self._inspect_later(result, info)
        return self._inspect(result, info)

    def reads_plainly(self, context: Context, key: tuple[str, str]) -> bool:
        """Whether this hook, for the leaf field `key` (type, field), would do nothing but note
        its path: its type reached, the field granted, no argument tested. The planned path
        (schema/planned.py) answers such leaves itself and notes them with `note_leaf`."""
        return (
            key in self.leaf_fields
            and key[0] != "Mutation"
            and not key[1].startswith("__")
            and context.policy.reaches(context.grant, key[0])
            and not _denied(context, key)
            and key not in context.policy.tested
        )

    def note_leaf(self, path: Path, field_name: str) -> None:
        self.leaves.append((path, field_name))

    async def _inspect_later(self, result: Any, info: GraphQLResolveInfo[Any]) -> Any:
        value = self._inspect(await result, info)
        return await value if inspect.isawaitable(value) else value

    def _inspect(self, value: Any, info: GraphQLResolveInfo[Any]) -> Any:
        """Note whose data this object is; for a scoped caller, refuse another person's."""
        if value is None or (isinstance(value, list | tuple) and not value):
            # Nothing below it, yet "none" is data too (no visa, no permit): its path is noted.
            self.leaves.append((info.path, info.field_name))
            return value
        context: Context = info.context
        type_name = _concrete_type(value, info)
        _check_reach(context, type_name)
        self.objects.append(info.path)
        person_id = self._owner(value, context, info.path.prev, info.parent_type.name == "Query")
        if person_id is not None:
            self.owned_at[id(info.path)] = (person_id, type_name)
        return value

    async def _entities(
        self, _next: Callable[..., Any], root: Any, info: GraphQLResolveInfo[Any], representations: list[Any]
    ) -> list[Any]:
        """Federation's entities, each checked as the root field it stands for: that field's
        grant, before anything is read, then the entity's type, scope and owner, as `_inspect`
        checks a root field's object. A refused entity is null with its error; the rest stand."""
        context: Context = info.context
        refusals: dict[int, Exception] = {}
        for index, representation in enumerate(representations):
            try:
                _check_entity_field(context, representation, index)
            except Refusal as refusal:
                refusals[index] = refusal
        allowed = [r for index, r in enumerate(representations) if index not in refusals]
        resolved = iter(await _next(root, info, representations=allowed))
        self.entities_path = info.path
        results: list[Any] = []
        for index in range(len(representations)):
            value = refusals.get(index) or next(resolved)
            if value is not None and not isinstance(value, Exception):
                value = self._inspect_entity(value, context, index)
            results.append(value)
        return results

    def _inspect_entity(self, value: Any, context: Context, index: int) -> Any:
        type_name = entity_type_of(value)
        try:
            _check_reach(context, type_name)
            person_id = self._owner(value, context, None, at_root=True)
        except Refusal as refusal:
            return refusal
        if person_id is not None:
            self.entity_owners[index] = (person_id, type_name)
        return value

    def _owner(self, value: Any, context: Context, above: Path | None, at_root: bool) -> int | None:
        """Whose data an object is, where the audit notes it (None: nobody's, or its person's
        object above notes it); Forbidden for what is outside a scoped caller's scope."""
        person_id: int | None = None
        if isinstance(value, PersonCore):
            person_id = value.id
        elif isinstance(value, NotificationRecord):
            person_id = value.person_id
        elif isinstance(value, Verification):
            person_id = value.holder_id
        elif isinstance(value, PERSON_RECORDS):
            # The loader that read it noted whose it is (None: a record of nobody known).
            under = self._owner_of(above)
            if value.person_id is None:
                if under is None and context.caller.scoped:
                    raise Forbidden("this record is outside the caller's scope")
                return None
            _check_scope(context, value.person_id)
            if under is not None and not context.caller.scoped:  # under its person: theirs
                return None
            person_id = value.person_id
        elif isinstance(value, Employer) and context.caller.scoped and at_root:
            if value.credit_code != context.caller.employer:
                raise Forbidden("this employer is outside the caller's scope")
            return None
        if person_id is not None:
            _check_scope(context, person_id)
        return person_id

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
            result.errors = [_as_error(refusal)]

    async def _audit_entries(self, context: Context) -> list[AuditEntry]:
        if not self.owned_at and not self.entity_owners:
            return []
        fields: dict[int, set[str]] = defaultdict(set)
        above_leaves: set[int] = set()
        for leaf, name in self.leaves:
            prefix = self._prefix(leaf.prev)
            if prefix is not None:
                fields[prefix[0]].add(f"{prefix[1]}.{name}")
            _mark_ancestors(leaf.prev, above_leaves)
        # An object read for nothing but its existence (`__typename`) is audited by its path,
        # the deepest such object only (a visa's existence says the person's does too).
        for path in sorted(self.objects, key=_depth, reverse=True):
            prefix = self._prefix(path) if id(path) not in above_leaves else None
            if prefix is not None:
                fields[prefix[0]].add(prefix[1])
                _mark_ancestors(path, above_leaves)
        # An entity read for its `__typename` alone, as its root field's object would be.
        for index, (person_id, type_name) in self.entity_owners.items():
            if index not in self.entities_reached:
                fields[person_id].add(type_name)
        caller = context.caller
        now = datetime.now(UTC)
        return [
            caller.audit_entry(person_id, sorted(paths), now) for person_id, paths in sorted(fields.items())
        ]

    def _entity_owner(self, path: Path) -> tuple[int, str] | None:
        """The owner of an item of `_entities`, which graphql-core's list path stands for."""
        if self.entities_path is None or path.prev is not self.entities_path or not isinstance(path.key, int):
            return None
        self.entities_reached.add(path.key)
        return self.entity_owners.get(path.key)

    def _owner_of(self, path: Path | None) -> int | None:
        while path is not None:
            owned = self.owned_at.get(id(path)) or self._entity_owner(path)
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
        known: tuple[int, str] | None | Literal[False] = self.prefixes.get(id(path), False)
        if known is not False:
            return known
        owned = self.owned_at.get(id(path)) or self._entity_owner(path)
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


def _as_error(refusal: Refusal) -> GraphQLError:
    """A refusal of the whole request; it carries its code, so that shaping the errors keeps it."""
    return GraphQLError(str(refusal), original_error=refusal, extensions={"code": refusal.code})


def _depth(path: Path | None) -> int:
    depth = 0
    while path is not None:
        depth, path = depth + 1, path.prev
    return depth


def _mark_ancestors(path: Path | None, marked: set[int]) -> None:
    while path is not None and id(path) not in marked:
        marked.add(id(path))
        path = path.prev


def _introspects(document: DocumentNode) -> bool:
    """Whether the document asks for the schema (`__schema`, `__type`; `__typename` is data)."""
    found = False

    class Finder(Visitor):
        def enter_field(self, node: FieldNode, *_args: Any) -> Any:
            nonlocal found
            if node.name.value in INTROSPECTION_FIELDS:
                found = True
                return BREAK
            return None

    visit(document, Finder())
    return found


def _caller(context: Context) -> str:
    caller = context.caller
    return caller.role.value + (f" for {caller.purpose}" if caller.purpose else "")


def _concrete_type(value: Any, info: GraphQLResolveInfo[Any]) -> str:
    """The object type of a field's value (of a list's items): for an interface such as
    `Node`, the type the value is, so grants and audit paths name `WorkPermit`, never `Node`."""
    named = get_named_type(info.return_type)
    if not isinstance(named, GraphQLInterfaceType):
        return named.name
    item = value[0] if isinstance(value, list | tuple) else value
    for candidate in info.schema.get_possible_types(named):
        if candidate.is_type_of is not None and candidate.is_type_of(item, info):
            return candidate.name
    return named.name


def _check_reach(context: Context, type_name: str) -> None:
    if not context.policy.reaches(context.grant, type_name):
        raise Forbidden(f"{type_name} is not granted to {_caller(context)}")


def _check_entity_field(context: Context, representation: object, index: int) -> None:
    """An entity's root field (`Query.person` for a Person) must be granted, and its key
    testable as that field's argument is (`Query.person.lookup.id`)."""
    type_name = entity_type(representation, index)
    key_field, root_field = ENTITY_KEYS[type_name]
    if _denied(context, ("Query", root_field)):
        raise Forbidden(f"Query.{root_field} is not granted to {_caller(context)}")
    argument = f"Query.{root_field}.lookup.{key_field}"
    if argument in context.policy.tests and argument not in context.grant.arguments:
        field = f"representations[{index}].{key_field}"
        tested = f"{type_name}.{key_field}"
        raise Forbidden(f"{field} tests {tested}, which {_caller(context)} may not read", field=field)


def _denied(context: Context, key: tuple[str, str]) -> bool:
    """A field that needs a grant, and the caller's grant does not name it."""
    return (
        key in context.policy.guarded
        and key[0] != "Mutation"
        and key not in context.grant.readable
        and key not in OPEN_FIELDS
    )


def _check_arguments(
    context: Context, info: GraphQLResolveInfo[Any], arguments: tuple[str, ...], given: dict[str, Any]
) -> None:
    """Each filter or lookup field given must be one the grant may test (access/policy.py)."""
    definition = info.parent_type.fields[info.field_name]
    for argument in arguments:
        value = given.get(argument)
        input_type = get_named_type(definition.args[argument].type)
        if not isinstance(value, dict) or not isinstance(input_type, GraphQLInputObjectType):
            continue
        for name in input_type.fields:
            # Extensions see the arguments as graphql-core coerced them: dicts by GraphQL name.
            if value.get(name) is None:
                continue
            path = f"{info.parent_type.name}.{info.field_name}.{argument}.{name}"
            if path not in context.grant.arguments:
                tested = ", ".join(".".join(step) for step in context.policy.tests[path])
                raise Forbidden(
                    f"{argument}.{name} tests {tested}, which {_caller(context)} may not read",
                    field=f"{argument}.{name}",
                )


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
