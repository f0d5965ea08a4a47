"""The grants policy: one reviewable TOML file, validated against the schema at start.

Default deny. A role reads an object type only through a grant that names it; then its
non-null fields come with it, and each nullable field needs a grant of its own (DOMAIN.md:
grants are given on fields that can be null). An argument that tests a fact about a person
(a filter, a lookup identifier) needs the grant to read that fact, unless the role's grant
lists it as presentable (what the person at a desk hands over)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
)

from domain.records import CallerRole

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policy.toml"
ROLES_WITHOUT_PURPOSE = frozenset(
    {CallerRole.CARDHOLDER, CallerRole.REPORTING, CallerRole.INTEGRATION_DEVELOPER}
)
# Types that come with the field that reaches them, for every caller: paging structure, a
# mutation's answer (it comes with the grant to call the mutation), the caller's own grants,
# and a person's identity (DOMAIN.md: name and passports come with any grant on the person).
# `_Service`: federation's SDL, which only introspection reads (schema/federation.py).
OPEN_TYPES = frozenset({"PageInfo", "AccessGrants", "PersonName", "Passport", "UserError", "_Service"})
OPEN_SUFFIXES = ("Connection", "Edge", "Payload")

FieldKey = tuple[str, str]


class PolicyError(Exception):
    """The policy file is not valid against the schema; the message lists every problem."""


@dataclass(frozen=True)
class Purpose:
    name: str
    role: CallerRole
    investigation: bool = False


@dataclass(frozen=True)
class Grant:
    """What one role may read and call under one purpose."""

    readable: frozenset[FieldKey] = frozenset()
    mutations: frozenset[str] = frozenset()
    # The object types the role reads (their non-null fields come with them).
    types: frozenset[str] = frozenset()
    # The tested arguments (`Query.persons.filter.insured`) the role may give.
    arguments: frozenset[str] = frozenset()
    introspect: bool = False

    def names(self) -> list[str]:
        return sorted(f"{type_name}.{field_name}" for type_name, field_name in self.readable)

    def reads(self, type_name: str, field_name: str, guarded: frozenset[FieldKey]) -> bool:
        """Whether the grant reads this field: its type granted, and the field too if it needs a grant."""
        if type_name not in self.types:
            return False
        return (type_name, field_name) not in guarded or (type_name, field_name) in self.readable


@dataclass(frozen=True)
class Policy:
    purposes: dict[str, Purpose]
    grants: dict[tuple[CallerRole, str | None], Grant]
    # Fields that need a grant: root fields and nullable fields, as (type, field).
    guarded: frozenset[FieldKey] = field(default_factory=frozenset)
    # Types every caller reaches with the field that leads to them (roots, paging, payloads).
    open_types: frozenset[str] = field(default_factory=frozenset)
    # Per root field, the input-object arguments whose fields test facts (`filter`, `lookup`).
    tested: dict[FieldKey, tuple[str, ...]] = field(default_factory=dict)
    # Per tested argument (`Query.persons.filter.insured`), the fields it tests.
    tests: dict[str, tuple[FieldKey, ...]] = field(default_factory=dict)
    # What a request without a token may do: exchange an activation code, nothing else.
    anonymous: Grant = field(default_factory=Grant)

    def grant(self, role: CallerRole, purpose: str | None) -> Grant:
        return self.grants.get((role, purpose), Grant())

    def purposes_of(self, role: CallerRole) -> list[str]:
        return sorted(p.name for p in self.purposes.values() if p.role is role)

    def reaches(self, grant: Grant, type_name: str) -> bool:
        """Whether a caller with this grant may read objects of this type at all."""
        return type_name in grant.types or type_name in self.open_types


def load_policy(schema: GraphQLSchema, path: Path = DEFAULT_POLICY) -> Policy:
    """Read and validate the policy; every problem is named, none is skipped."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PolicyError(f"{path}: cannot be read: {error}") from None
    problems: list[str] = []
    purposes = _purposes(document.get("purposes", {}), problems)
    sets: dict[str, list[str]] = document.get("sets", {})
    guarded = _guarded_fields(schema)
    open_types = _open_types(schema)
    tests = _argument_tests(document.get("arguments", {}), schema, problems)
    grants: dict[tuple[CallerRole, str | None], Grant] = {}
    for number, entry in enumerate(document.get("grant", []), start=1):
        where = f"grant #{number}"
        try:
            role = CallerRole(entry.get("role"))
        except ValueError:
            problems.append(f"{where}: unknown role {entry.get('role')!r}")
            continue
        where = f"{where} ({role.value})"
        readable, types = _expand(entry.get("read", []), sets, schema, where, problems)
        _check_types_of_fields(readable, types, open_types, schema, where, problems)
        partial = Grant(readable=frozenset(readable), types=frozenset(types))
        arguments = {path for path, steps in tests.items() if all(partial.reads(*s, guarded) for s in steps)}
        for presented in entry.get("presentable", []):
            if presented not in tests:
                problems.append(f"{where}: presentable {presented!r} names no tested argument")
            arguments.add(presented)
        grant = Grant(
            readable=frozenset(readable),
            mutations=frozenset(_mutations(entry.get("mutations", []), schema, where, problems)),
            types=frozenset(types),
            arguments=frozenset(arguments),
            introspect=bool(entry.get("introspect", False)),
        )
        declared = entry.get("purposes", [])
        if role in ROLES_WITHOUT_PURPOSE:
            if declared:
                problems.append(f"{where}: {role.value} declares no purpose")
            grants[(role, None)] = grant
            continue
        if not declared:
            problems.append(f"{where}: {role.value} grants need at least one purpose")
        for name in declared:
            purpose = purposes.get(name)
            if purpose is None or purpose.role is not role:
                problems.append(f"{where}: purpose {name!r} is not one of {role.value}'s purposes")
                continue
            grants[(role, name)] = grant
    if problems:
        raise PolicyError(f"{path} does not fit the schema:\n  " + "\n  ".join(problems))
    tested: dict[FieldKey, list[str]] = {}
    for argument_path in tests:
        type_name, field_name, argument, _ = argument_path.split(".")
        names = tested.setdefault((type_name, field_name), [])
        if argument not in names:
            names.append(argument)
    tested_arguments = {key: tuple(names) for key, names in tested.items()}
    anonymous = document.get("anonymous", {})
    if set(anonymous) - {"mutations"}:
        problems.append("anonymous: only `mutations` may be granted without a token")
    mutations = frozenset(_mutations(anonymous.get("mutations", []), schema, "anonymous", problems))
    if problems:
        raise PolicyError(f"{path} does not fit the schema:\n  " + "\n  ".join(problems))
    return Policy(purposes, grants, guarded, open_types, tested_arguments, tests, Grant(mutations=mutations))


def _purposes(table: dict[str, dict[str, object]], problems: list[str]) -> dict[str, Purpose]:
    purposes: dict[str, Purpose] = {}
    for name, rule in table.items():
        try:
            role = CallerRole(str(rule.get("role")))
        except ValueError:
            problems.append(f"purpose {name!r}: unknown role {rule.get('role')!r}")
            continue
        purposes[name] = Purpose(name, role, bool(rule.get("investigation", False)))
    return purposes


def _roots(schema: GraphQLSchema) -> set[str]:
    return {t.name for t in (schema.query_type, schema.mutation_type, schema.subscription_type) if t}


def _open_types(schema: GraphQLSchema) -> frozenset[str]:
    return frozenset(
        name
        for name in schema.type_map
        if name in _roots(schema)
        or name in OPEN_TYPES
        or name.endswith(OPEN_SUFFIXES)
        or name.startswith("__")
    )


def _guarded_fields(schema: GraphQLSchema) -> frozenset[FieldKey]:
    guarded: set[FieldKey] = set()
    roots = _roots(schema)
    for type_name, graphql_type in schema.type_map.items():
        if type_name.startswith("__") or not isinstance(graphql_type, GraphQLObjectType):
            continue
        if type_name in OPEN_TYPES or type_name.endswith(OPEN_SUFFIXES):
            continue
        for field_name, definition in graphql_type.fields.items():
            if type_name in roots or not isinstance(definition.type, GraphQLNonNull):
                guarded.add((type_name, field_name))
    return frozenset(guarded)


def _expand(
    names: list[str], sets: dict[str, list[str]], schema: GraphQLSchema, where: str, problems: list[str]
) -> tuple[set[FieldKey], set[str]]:
    """The fields and the types a `read` list grants: `Type` (the type with its non-null
    fields), `Type.field`, `Type.*` (every field), or `@set`."""
    readable: set[FieldKey] = set()
    types: set[str] = set()
    for name in names:
        if name.startswith("@"):
            members = sets.get(name[1:])
            if members is None:
                problems.append(f"{where}: no field set {name!r}")
                continue
            more_fields, more_types = _expand(members, sets, schema, where, problems)
            readable |= more_fields
            types |= more_types
            continue
        type_name, _, field_name = name.partition(".")
        graphql_type = schema.type_map.get(type_name)
        if not isinstance(graphql_type, GraphQLObjectType):
            problems.append(f"{where}: {name!r} names no object type of the schema")
            continue
        types.add(type_name)
        if field_name == "*":
            readable |= {(type_name, f) for f in graphql_type.fields}
        elif field_name in graphql_type.fields:
            readable.add((type_name, field_name))
        elif field_name:
            problems.append(f"{where}: {name!r} names no field of {type_name}")
    return readable, types


def _check_types_of_fields(
    readable: Iterable[FieldKey],
    types: set[str],
    open_types: frozenset[str],
    schema: GraphQLSchema,
    where: str,
    problems: list[str],
) -> None:
    """A granted field whose objects the grant may not read would answer nothing but FORBIDDEN:
    the policy must name the type too (or not grant the field)."""
    for type_name, field_name in sorted(readable):
        parent = schema.type_map[type_name]
        assert isinstance(parent, GraphQLObjectType)
        target = get_named_type(parent.fields[field_name].type)
        if isinstance(target, GraphQLInterfaceType | GraphQLUnionType) or not isinstance(
            target, GraphQLObjectType
        ):
            continue
        if target.name not in types and target.name not in open_types:
            problems.append(f"{where}: grants {type_name}.{field_name} but not its type {target.name}")


def _argument_tests(
    table: dict[str, Any], schema: GraphQLSchema, problems: list[str]
) -> dict[str, tuple[FieldKey, ...]]:
    """`[arguments."Query.persons.filter"]`: for each input field of that argument, the fields a
    caller must be able to read to give it. Every input field must be listed (default deny)."""
    tests: dict[str, tuple[FieldKey, ...]] = {}
    for argument_path, fields in table.items():
        where = f"arguments {argument_path!r}"
        type_name, _, rest = argument_path.partition(".")
        field_name, _, argument = rest.partition(".")
        parent = schema.type_map.get(type_name)
        definition = parent.fields.get(field_name) if isinstance(parent, GraphQLObjectType) else None
        argument_type = (
            get_named_type(definition.args[argument].type)
            if definition and argument in definition.args
            else None
        )
        if not isinstance(argument_type, GraphQLInputObjectType) or not isinstance(fields, dict):
            problems.append(f"{where}: names no input-object argument of the schema")
            continue
        for missing in sorted(set(argument_type.fields) - set(fields)):
            problems.append(f"{where}: does not say what {argument_type.name}.{missing} tests")
        for input_field, steps in fields.items():
            if input_field not in argument_type.fields:
                problems.append(f"{where}: {input_field!r} is no field of {argument_type.name}")
                continue
            keys = []
            for step in steps if isinstance(steps, list) else [steps]:
                step_type, _, step_field = str(step).partition(".")
                owner = schema.type_map.get(step_type)
                if not isinstance(owner, GraphQLObjectType) or step_field not in owner.fields:
                    problems.append(f"{where}: {input_field} tests {step!r}, which names no field")
                    continue
                keys.append((step_type, step_field))
            tests[f"{argument_path}.{input_field}"] = tuple(keys)
    return tests


def _mutations(names: list[str], schema: GraphQLSchema, where: str, problems: list[str]) -> set[str]:
    fields = schema.mutation_type.fields if schema.mutation_type else {}
    unknown = [n for n in names if n not in fields]
    problems += [f"{where}: {n!r} names no mutation of the schema" for n in unknown]
    return {n for n in names if n in fields}
