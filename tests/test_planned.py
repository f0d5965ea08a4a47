"""The planned path (schema/planned.py) answers exactly as graphql-core's field-by-field chain.

Two apps serve the same estate, one with the planned path, one without (`Settings.planned`),
each with an audit trail of its own. Every request goes to both, in lockstep, as the same
caller; their HTTP statuses, bodies (data, errors with their codes and paths, extensions) and
the audit records each request wrote must be equal. The documents:

- every query of every example under docs/examples, as the caller its first line names;
- every query the test suite sent through `serve` before this test (it runs last), with the
  headers it was sent with where it was sent to this estate, else as a caller reading every
  field (its ids then name nothing here: the error paths are compared);
- generated queries over the person graph: random selections of fields at random depths,
  aliases, named and inline fragments, variables, `@include`/`@skip`, `__typename`, under every
  role and purpose of policy.toml (a cardholder bound to a person, an employer to its code).
  2,000 on SQLite, with a seed fixed by default and new each run in CI (HUB_FUZZ_PROFILE=ci);
  fewer on PostgreSQL, where the plan is the same and only the reads differ.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLUnionType,
    OperationDefinitionNode,
    OperationType,
    parse,
    validate,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from access.policy import load_policy
from audit.log import AUDIT_RECORD
from domain.records import CallerRole
from schema import build_schema
from schema.planned import fields_answered
from settings import Settings, sqlite_url
from tests.conftest import (
    SENT_DOCUMENTS,
    Estate,
    SentDocument,
    caller_headers,
    person_id_of,
    read_everything,
    serve,
)
from tests.examples import EXAMPLES, OPERATION, VARIABLE, caller_of

pytestmark = pytest.mark.replays_suite

SCHEMA = build_schema()._schema
CI = os.environ.get("HUB_FUZZ_PROFILE") == "ci"
GENERATED = {"sqlite": 2000, "postgresql": 300}
# Values that depend on when a request ran, not on how it was executed, masked in both answers
# before comparing: AccessEvent.at (the audit record's own time), and a signed code's times
# and signature (a QR code signed now): its other claims are compared.
WHEN = frozenset({"at"})
SIGNED = re.compile(r"^eyJ[\w-]*\.(eyJ[\w-]*)\.[\w-]+$")
SIGNED_WHEN = ("iat", "exp", "nbf")
# What an audit record says about a look, without when it was made or under which request id.
AUDITED = ("client", "role", "purpose", "case_reference", "person_id", "fields", "restricted_until")


@dataclass
class Twins:
    """The same estate served twice: `planned` with the planned path, `chain` without."""

    planned: httpx.AsyncClient
    chain: httpx.AsyncClient
    audit_urls: tuple[str, str]
    requests: int = 0
    differences: list[str] = field(default_factory=list)
    request_ids: list[tuple[str, str, str]] = field(default_factory=list)

    async def compare(
        self, label: str, body: dict[str, Any], headers: dict[str, str], content: bytes | None = None
    ) -> None:
        """One request to both apps: `body` as JSON, or `content` as sent once (the body read)."""
        answers = []
        for client in (self.planned, self.chain):
            if content is None:
                response = await client.post("/graphql", json=body, headers=headers)
            else:
                sent = {**headers, "content-type": "application/json"}
                response = await client.post("/graphql", content=content, headers=sent)
            answers.append(response)
        planned, chain = answers
        self.requests += 1
        if (planned.status_code, masked(planned)) != (chain.status_code, masked(chain)):
            where = first_difference(masked(planned), masked(chain))
            self.differences.append(
                f"{label}: HTTP {planned.status_code} / {chain.status_code}, first at {where}\n"
                f"  planned: {planned.text[:1500]}\n  chain:   {chain.text[:1500]}\n"
                f"  document: {body.get('query', '')[:1500]}\n  variables: {body.get('variables')}"
            )
        planned_id, chain_id = planned.headers.get("x-request-id"), chain.headers.get("x-request-id")
        if planned_id and chain_id:
            self.request_ids.append((label, planned_id, chain_id))


def first_difference(planned: Any, chain: Any, path: str = "") -> str:
    """Where two answers first differ, as a path, with both values there."""
    if isinstance(planned, dict) and isinstance(chain, dict) and planned.keys() == chain.keys():
        for key in planned:
            if planned[key] != chain[key]:
                return first_difference(planned[key], chain[key], f"{path}.{key}")
    if isinstance(planned, list) and isinstance(chain, list) and len(planned) == len(chain):
        for index, (one, other) in enumerate(zip(planned, chain, strict=True)):
            if one != other:
                return first_difference(one, other, f"{path}[{index}]")
    return f"{path or '.'}: {str(planned)[:300]} / {str(chain)[:300]}"


def masked(response: httpx.Response) -> Any:
    try:
        return _mask(response.json())
    except ValueError:
        return response.text


def _mask(value: Any) -> Any:
    signed = SIGNED.match(value) if isinstance(value, str) else None
    if signed is not None:
        payload = signed.group(1)
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return {"signed": {k: v for k, v in claims.items() if k not in SIGNED_WHEN}}
    if isinstance(value, dict):
        return {k: "<when>" if k in WHEN else _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


@asynccontextmanager
async def twins(estate: Estate, tmp_path: Path) -> AsyncIterator[Twins]:
    """Both apps over the estate under its real policy, each with its own audit trail, the
    rate limit lifted (a limit reached half-way would answer the two differently)."""

    def settings_of(name: str) -> Settings:
        return replace(
            estate.settings,
            planned=name == "planned",
            audit_url=sqlite_url(tmp_path / f"audit-{name}.sqlite"),
            audit_witness=str(tmp_path / f"witness-{name}.jsonl"),
            limits=replace(estate.settings.limits, rate_limit="1000000/minute"),
        )

    planned, chain = settings_of("planned"), settings_of("chain")
    async with serve(planned, record=False) as planned_client, serve(chain, record=False) as chain_client:
        yield Twins(planned_client, chain_client, (planned.audit_url, chain.audit_url))


async def audit_records(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(AUDIT_RECORD).order_by(AUDIT_RECORD.c.seq))).all()
    finally:
        await engine.dispose()
    by_request: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        mapping = row._mapping
        by_request.setdefault(mapping["request_id"], []).append(tuple(mapping[c] for c in AUDITED))
    return by_request


async def audit_differences(pair: Twins) -> list[str]:
    planned, chain = [await audit_records(url) for url in pair.audit_urls]
    return [
        f"{label}: audit records differ\n  planned: {planned.get(a)}\n  chain:   {chain.get(b)}"
        for label, a, b in pair.request_ids
        if planned.get(a, []) != chain.get(b, [])
    ]


def is_query(document: str, operation_name: str | None = None) -> bool:
    """Whether the document runs a query (mutations would change what the second app reads);
    a document that does not parse is compared too (both must refuse it alike)."""
    try:
        definitions = parse(document).definitions
    except Exception:
        return True
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
    return bool(chosen) and all(o.operation is OperationType.QUERY for o in chosen[:1])


def replayable(sent: list[SentDocument]) -> list[SentDocument]:
    """The suite's queries, each distinct document once (as it was first sent): the property
    tests send thousands of variants of a few shapes, and a shape's plan is the same."""
    seen: set[tuple[str, Any]] = set()
    kept = []
    for document in sent:
        key = (document.body["query"], document.body.get("operationName"))
        if key not in seen and is_query(*key):
            seen.add(key)
            kept.append(document)
    return kept


# ---------------------------------------------------------------- callers and their persons


@dataclass(frozen=True)
class Caller:
    label: str
    headers: dict[str, str]


async def callers(estate: Estate, client: httpx.AsyncClient) -> tuple[list[Caller], list[str]]:
    """A caller for each role and purpose of policy.toml, and a few persons' global ids."""
    listing = await client.post(
        "/graphql",
        json={
            "query": "{ persons(first: 40) { edges { node { id workPermit { employer { creditCode } } } } } }"
        },
    )
    nodes = [e["node"] for e in listing.json()["data"]["persons"]["edges"]]
    persons = [n["id"] for n in nodes]
    employer = next(
        n["workPermit"]["employer"]["creditCode"] for n in nodes if (n["workPermit"] or {}).get("employer")
    )
    policy = load_policy(SCHEMA, estate.settings.policy_path)
    found: list[Caller] = []
    for role, purpose in sorted(policy.grants, key=str):
        bound: dict[str, Any] = {}
        if role is CallerRole.CARDHOLDER:
            bound["person_id"] = person_id_of(estate.settings, persons[0])
        if role is CallerRole.EMPLOYER:
            bound["employer"] = employer
        headers = caller_headers(estate.settings, role, purpose, **bound)
        found.append(Caller(f"{role.value}/{purpose}", headers))
    return found, persons


# ---------------------------------------------------------------- generated queries

# Fields whose value is when something happened in the run, not in the estate.
UNSTABLE = {("AccessEvent", "at")}


@dataclass
class Generated:
    random: random.Random
    variables: dict[str, Any] = field(default_factory=dict)
    declarations: list[str] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)

    def flag(self) -> str:
        name = f"flag{len(self.variables)}"
        self.variables[name] = self.random.random() < 0.5
        self.declarations.append(f"${name}: Boolean!")
        return name

    def directive(self) -> str:
        roll = self.random.random()
        if roll < 0.08:
            return f" @include(if: ${self.flag()})"
        if roll < 0.16:
            return f" @skip(if: ${self.flag()})"
        return ""

    def selection(self, parent: GraphQLObjectType, depth: int) -> str:
        """A selection set on `parent`: some of its fields, each maybe aliased, under a
        directive, in a named or inline fragment; objects to `depth` levels."""
        names = [n for n in parent.fields if (parent.name, n) not in UNSTABLE]
        chosen = self.random.sample(names, k=self.random.randint(1, min(len(names), 6)))
        parts = [self.field(parent, name, depth, index) for index, name in enumerate(chosen)]
        if self.random.random() < 0.1:
            parts.append("__typename")
        roll = self.random.random()
        if roll < 0.12 and len(parts) > 1:
            fragment = f"F{len(self.fragments)}"
            cut = self.random.randint(1, len(parts) - 1)
            self.fragments.append(f"fragment {fragment} on {parent.name} {{ {' '.join(parts[cut:])} }}")
            parts = [*parts[:cut], f"...{fragment}{self.directive()}"]
        elif roll < 0.22 and len(parts) > 1:
            cut = self.random.randint(1, len(parts) - 1)
            parts = [*parts[:cut], f"... on {parent.name}{self.directive()} {{ {' '.join(parts[cut:])} }}"]
        return "{ " + " ".join(parts) + " }"

    def field(self, parent: GraphQLObjectType, name: str, depth: int, index: int) -> str:
        definition = parent.fields[name]
        alias = f"a{index}_{name}: " if self.random.random() < 0.2 else ""
        arguments = ""
        if "first" in definition.args and self.random.random() < 0.7:
            arguments = f"(first: {self.random.randint(1, 3)})"
        text = f"{alias}{name}{arguments}{self.directive()}"
        named = _named(definition.type)
        if isinstance(named, GraphQLScalarType | GraphQLEnumType):
            return text
        if isinstance(named, GraphQLObjectType):
            if depth <= 0:
                leaves = [
                    n
                    for n, f in named.fields.items()
                    if isinstance(_named(f.type), GraphQLScalarType | GraphQLEnumType)
                ]
                return f"{text} {{ {self.random.choice(leaves) if leaves else '__typename'} }}"
            return f"{text} {self.selection(named, depth - 1)}"
        if isinstance(named, GraphQLInterfaceType | GraphQLUnionType):  # Node: a few of its kinds
            kinds = SCHEMA.get_possible_types(named)
            spreads = " ".join(
                f"... on {k.name} {self.selection(k, 0)}"
                for k in self.random.sample(kinds, k=min(2, len(kinds)))
            )
            return f"{text} {{ __typename {spreads} }}"
        return text

    def document(self, persons: list[str]) -> tuple[str, dict[str, Any]]:
        person = SCHEMA.get_type("Person")
        assert isinstance(person, GraphQLObjectType)
        depth = self.random.randint(0, 3)
        roll = self.random.random()
        if roll < 0.45:
            self.variables["lookup"] = {"id": self.random.choice(persons)}
            self.declarations.append("$lookup: PersonLookup!")
            root = f"person(lookup: $lookup){self.directive()} {self.selection(person, depth)}"
        elif roll < 0.65:
            root = f"persons(first: {self.random.randint(1, 4)}) {{ edges {{ node {self.selection(person, depth)} }} }}"
        elif roll < 0.85:
            self.variables["id"] = self.random.choice(persons)
            self.declarations.append("$id: ID!")
            root = f"node(id: $id) {{ id ... on Person {self.selection(person, depth)} }}"
        else:
            root = f"me {self.selection(person, depth)}"
        declared = f"({', '.join(self.declarations)})" if self.declarations else ""
        return " ".join([f"query Generated{declared} {{ {root} }}", *self.fragments]), self.variables


def _named(output: GraphQLOutputType) -> Any:
    while isinstance(output, GraphQLNonNull | GraphQLList):
        output = output.of_type
    return output


def generated_queries(count: int, seed: int, persons: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """`count` valid documents (graphql-core's validation), reproducible from the seed."""
    rng = random.Random(seed)
    made = 0
    while made < count:
        document, variables = Generated(rng).document(persons)
        if not validate(SCHEMA, parse(document)):
            made += 1
            yield document, variables


# ---------------------------------------------------------------- the test


async def test_the_planned_path_answers_and_audits_as_the_chain(
    estate: Estate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No expiry check at the twins' start: its notifications, landing between the two
    # requests of a pair, would answer them differently.
    monkeypatch.setenv("HUB_NOTIFY_INTERVAL", "0")
    seed = random.SystemRandom().randrange(2**32) if CI else 20261202
    settings, everything = read_everything(estate.settings)
    async with serve(settings, everything, record=False) as reader:
        roles, persons = await callers(estate, reader)
        known = await reader.post(
            "/graphql",
            json={
                "query": "{ persons(first: 1) { edges { node { workPermit { number } socialSecurityCard { number } } } } }"
            },
        )
    node = known.json()["data"]["persons"]["edges"][0]["node"]
    example_variables = {
        "lookup": {"id": persons[0]},
        "card": (node["socialSecurityCard"] or {}).get("number"),
    }
    replayed = [
        sent for sent in SENT_DOCUMENTS if is_query(sent.body["query"], sent.body.get("operationName"))
    ]
    plan_before = fields_answered["plan"]
    async with twins(estate, tmp_path) as pair:
        for name, document in EXAMPLES.items():
            role, purpose = caller_of(document)
            person_id = person_id_of(estate.settings, persons[0]) if role is CallerRole.CARDHOLDER else None
            headers = caller_headers(estate.settings, role, purpose, person_id=person_id)
            for kind, operation, declared in OPERATION.findall(document):
                if kind != "query":
                    continue
                variables = {
                    v: example_variables[v] for v in VARIABLE.findall(declared) if v in example_variables
                }
                body = {"query": document, "operationName": operation, "variables": variables}
                await pair.compare(f"docs/examples/{name}.graphql {operation}", body, headers)
        for index, sent in enumerate(replayed):
            headers = sent.headers if sent.data_dir == estate.settings.data_dir else everything
            await pair.compare(f"suite document {index}", sent.body, headers, sent.content)
        for index, (document, variables) in enumerate(
            generated_queries(GENERATED[estate.backend], seed, persons)
        ):
            caller = roles[index % len(roles)]
            await pair.compare(
                f"generated {index} as {caller.label}",
                {"query": document, "variables": variables},
                caller.headers,
            )
        differences = pair.differences + await audit_differences(pair)
    summary = (
        f"{pair.requests} requests ({len(replayed)} from the suite, {GENERATED[estate.backend]} generated,"
        f" seed {seed}), {fields_answered['plan'] - plan_before} fields answered by the plan"
    )
    assert not differences, f"{summary}: {len(differences)} differences, the first:\n" + "\n".join(
        differences[:3]
    )
    assert fields_answered["plan"] > plan_before, f"{summary}: the planned app answered no field by its plan"
    assert len(pair.request_ids) == pair.requests
