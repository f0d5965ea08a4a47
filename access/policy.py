"""The grants policy: one reviewable TOML file, validated against the schema at start.

Default deny. Only root fields and nullable fields need a grant; a non-null field comes with
its parent (DOMAIN.md: grants are given on fields that can be null)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from graphql import GraphQLNonNull, GraphQLObjectType, GraphQLSchema

from adapters.records import CallerRole

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "policy.toml"
ROLES_WITHOUT_PURPOSE = frozenset({CallerRole.CARDHOLDER, CallerRole.REPORTING})
# Types whose fields come with their parent whatever their nullability: paging structure, the
# caller's own grants, and a person's identity (DOMAIN.md: name and passports come with any
# grant on the person).
UNGUARDED_TYPES = frozenset({"PageInfo", "AccessGrants", "PersonName", "Passport", "UserError"})


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

    readable: frozenset[tuple[str, str]] = frozenset()
    mutations: frozenset[str] = frozenset()

    def names(self) -> list[str]:
        return sorted(f"{type_name}.{field_name}" for type_name, field_name in self.readable)


@dataclass(frozen=True)
class Policy:
    purposes: dict[str, Purpose]
    grants: dict[tuple[CallerRole, str | None], Grant]
    # Fields that need a grant: root fields and nullable fields, as (type, field).
    guarded: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def grant(self, role: CallerRole, purpose: str | None) -> Grant:
        return self.grants.get((role, purpose), Grant())

    def purposes_of(self, role: CallerRole) -> list[str]:
        return sorted(p.name for p in self.purposes.values() if p.role is role)


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
    grants: dict[tuple[CallerRole, str | None], Grant] = {}
    for number, entry in enumerate(document.get("grant", []), start=1):
        where = f"grant #{number}"
        try:
            role = CallerRole(entry.get("role"))
        except ValueError:
            problems.append(f"{where}: unknown role {entry.get('role')!r}")
            continue
        readable = frozenset(
            _expand(entry.get("read", []), sets, schema, f"{where} ({role.value})", problems)
        )
        mutations = frozenset(_mutations(entry.get("mutations", []), schema, where, problems))
        declared = entry.get("purposes", [])
        if role in ROLES_WITHOUT_PURPOSE:
            if declared:
                problems.append(f"{where}: {role.value} declares no purpose")
            grants[(role, None)] = Grant(readable, mutations)
            continue
        if not declared:
            problems.append(f"{where}: {role.value} grants need at least one purpose")
        for name in declared:
            purpose = purposes.get(name)
            if purpose is None or purpose.role is not role:
                problems.append(f"{where}: purpose {name!r} is not one of {role.value}'s purposes")
                continue
            grants[(role, name)] = Grant(readable, mutations)
    if problems:
        raise PolicyError(f"{path} does not fit the schema:\n  " + "\n  ".join(problems))
    return Policy(purposes, grants, guarded)


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


def _guarded_fields(schema: GraphQLSchema) -> frozenset[tuple[str, str]]:
    guarded: set[tuple[str, str]] = set()
    roots = {t.name for t in (schema.query_type, schema.mutation_type, schema.subscription_type) if t}
    for type_name, graphql_type in schema.type_map.items():
        if type_name.startswith("__") or not isinstance(graphql_type, GraphQLObjectType):
            continue
        # A mutation's payload comes with the grant to call the mutation.
        if type_name in UNGUARDED_TYPES or type_name.endswith(("Connection", "Edge", "Payload")):
            continue
        for field_name, definition in graphql_type.fields.items():
            if type_name in roots or not isinstance(definition.type, GraphQLNonNull):
                guarded.add((type_name, field_name))
    return frozenset(guarded)


def _expand(
    names: list[str], sets: dict[str, list[str]], schema: GraphQLSchema, where: str, problems: list[str]
) -> set[tuple[str, str]]:
    readable: set[tuple[str, str]] = set()
    for name in names:
        if name.startswith("@"):
            members = sets.get(name[1:])
            if members is None:
                problems.append(f"{where}: no field set {name!r}")
                continue
            readable |= _expand(members, sets, schema, where, problems)
            continue
        type_name, _, field_name = name.partition(".")
        graphql_type = schema.type_map.get(type_name)
        if not isinstance(graphql_type, GraphQLObjectType):
            problems.append(f"{where}: {name!r} names no object type of the schema")
            continue
        if field_name == "*":
            readable |= {(type_name, f) for f in graphql_type.fields}
        elif field_name in graphql_type.fields:
            readable.add((type_name, field_name))
        else:
            problems.append(f"{where}: {name!r} names no field of {type_name}")
    return readable


def _mutations(names: list[str], schema: GraphQLSchema, where: str, problems: list[str]) -> set[str]:
    fields = schema.mutation_type.fields if schema.mutation_type else {}
    unknown = [n for n in names if n not in fields]
    problems += [f"{where}: {n!r} names no mutation of the schema" for n in unknown]
    return {n for n in names if n in fields}
