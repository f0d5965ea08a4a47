"""Limits against abusive queries: depth, aliases, tokens, document size, cost (counted on the
expanded document: pages, unpaged lists, statistics cells), the expanded size and nesting,
the fields resolved while running, and per-client rate limits. Each is tried just under and
just over a small limit, also with the excess hidden in fragments; documents made to blow up
(fragment bombs, long chains and cycles of fragments, many aliases of large statistics) are
refused with their code after counted, linear work; every example document passes under the
default limits."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import strawberry.schema.schema
from graphql import (
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    Source,
    get_introspection_query,
    parse,
)
from graphql.language import Lexer, TokenKind
from strawberry.extensions.max_aliases import count_fields_with_alias
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

import schema.limits
from domain.limits import Limits
from domain.records import CallerRole
from schema import build_schema
from schema.cost import WORST_SIZES, document_cost
from schema.expansion import measure, walk
from settings import Settings
from tests.clock import SAFETY_NET
from tests.conftest import (
    AS_OF,
    PERSONS,
    UNHURRIED_ENV,
    Estate,
    caller_headers,
    graphql,
    read_everything,
    seed_estate,
    serve,
)
from tests.examples import EXAMPLES, run_example

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
SCHEMA = build_schema()._schema
# Limits small enough to trip, and loose enough that nothing else trips first.
LOOSE = Limits(
    max_depth=50,
    max_aliases=100,
    max_tokens=10_000,
    max_cost=100_000,
    max_nodes=50_000,
    max_nesting=100,
    max_resolved_fields=1_000_000,
    rate_limit="10000/minute",
)


@asynccontextmanager
async def limited(estate: Estate, **limits: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The hub with these limits (the others loose), and a caller that may read every field."""
    settings, headers = read_everything(estate.settings)
    async with serve(replace(settings, limits=replace(LOOSE, **limits)), headers) as http:
        yield http


async def _post(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    return await graphql(client, query, variables)


def _refused_with(body: dict[str, Any], code: str) -> str:
    """The one error's message, after checking it is a refusal with this code and nothing ran."""
    assert body.get("data") is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body
    message: str = body["errors"][0]["message"]
    return message


def _answered(body: dict[str, Any]) -> None:
    assert "errors" not in body, body["errors"]
    assert body["data"]


def _cost(document: str, variables: dict[str, Any] | None = None, persons: int = PERSONS) -> int:
    return document_cost(SCHEMA, walk(parse(document)), None, variables or {}, persons)


# Depth


DEPTH_3 = "{ persons { edges { node { id } } } }"
DEPTH_4 = "{ persons { edges { node { name { full } } } } }"


async def test_depth_at_the_limit_passes_and_beyond_is_refused(estate: Estate) -> None:
    async with limited(estate, max_depth=3) as http:
        _answered(await _post(http, DEPTH_3))
        message = _refused_with(await _post(http, DEPTH_4), "QUERY_TOO_DEEP")
        assert "depth of 3" in message


@pytest.mark.parametrize(
    "document",
    [
        "query { persons { ...Conn } } fragment Conn on PersonConnection { edges { node { name { full } } } }",
        "query { persons { ...Conn } } fragment Conn on PersonConnection { edges { ...Edge } } "
        "fragment Edge on PersonEdge { node { ...Who } } fragment Who on Person { name { full } }",
        "query { persons { edges { node { ... on Person { name { ... on PersonName { full } } } } } } }",
        "query Deep { ...Root } fragment Root on Query { persons { edges { node { name { full } } } } }",
    ],
    ids=["fragment", "nested-fragments", "inline-fragments", "root-fragment"],
)
async def test_depth_hidden_in_fragments_is_refused(estate: Estate, document: str) -> None:
    async with limited(estate, max_depth=3) as http:
        _refused_with(await _post(http, document), "QUERY_TOO_DEEP")


# Aliases


async def test_aliases_at_the_limit_pass_and_beyond_are_refused(estate: Estate) -> None:
    async with limited(estate, max_aliases=2) as http:
        _answered(await _post(http, "{ a: persons { totalCount } b: persons { totalCount } }"))
        message = _refused_with(
            await _post(
                http, "{ a: persons { totalCount } b: persons { totalCount } c: persons { totalCount } }"
            ),
            "TOO_MANY_ALIASES",
        )
        assert "3 aliases" in message and "2" in message


@pytest.mark.parametrize(
    "document",
    [
        "query { persons { ...Counts } } fragment Counts on PersonConnection { a: totalCount b: totalCount c: totalCount }",
        # Two aliases in a fragment spread twice are four.
        "query { persons { ...Two } persons { ...Two } } fragment Two on PersonConnection { a: totalCount b: totalCount }",
        "query { persons { ...Outer } } fragment Outer on PersonConnection { x: totalCount ...Inner } "
        "fragment Inner on PersonConnection { y: totalCount z: totalCount }",
        "query { persons { edges { node { ... on Person { a: id b: id c: id } } } } }",
    ],
    ids=["fragment", "fragment-spread-twice", "nested-fragments", "inline-fragment"],
)
async def test_aliases_hidden_in_fragments_are_refused(estate: Estate, document: str) -> None:
    async with limited(estate, max_aliases=2) as http:
        _refused_with(await _post(http, document), "TOO_MANY_ALIASES")


# Tokens


def _token_count(document: str) -> int:
    lexer = Lexer(Source(document))
    count = 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


async def test_tokens_at_the_limit_pass_and_beyond_are_refused(estate: Estate) -> None:
    document = "{ persons(first: 2) { totalCount } }"
    tokens = _token_count(document)
    assert tokens == 11
    parse(document, max_tokens=tokens)  # graphql-core counts them so too
    with pytest.raises(GraphQLError, match="more than 10 tokens"):
        parse(document, max_tokens=tokens - 1)
    async with limited(estate, max_tokens=tokens) as http:
        _answered(await _post(http, document))
    async with limited(estate, max_tokens=tokens - 1) as http:
        message = _refused_with(await _post(http, document), "TOO_MANY_TOKENS")
        assert str(tokens - 1) in message


async def test_tokens_in_fragments_count(estate: Estate) -> None:
    document = (
        "query { persons { ...A } } fragment A on PersonConnection { totalCount ...B } "
        "fragment B on PersonConnection { pageInfo { hasNextPage endCursor } }"
    )
    async with limited(estate, max_tokens=_token_count(document) - 1) as http:
        _refused_with(await _post(http, document), "TOO_MANY_TOKENS")


# Cost


async def test_cost_counts_a_paged_field_by_its_page_size(estate: Estate) -> None:
    # persons (1) + 2 x totalCount (1) = 3
    async with limited(estate, max_cost=3) as http:
        _answered(await _post(http, "{ persons(first: 2) { totalCount } }"))
        message = _refused_with(await _post(http, "{ persons(first: 3) { totalCount } }"), "QUERY_TOO_COSTLY")
        assert "cost 4" in message and "limit of 3" in message


async def test_cost_counts_the_default_page_when_first_is_not_given(estate: Estate) -> None:
    # persons (1) + 20 x totalCount (1) = 21
    document = "{ persons { totalCount } }"
    async with limited(estate, max_cost=21) as http:
        _answered(await _post(http, document))
    async with limited(estate, max_cost=20) as http:
        _refused_with(await _post(http, document), "QUERY_TOO_COSTLY")


async def test_cost_multiplies_nested_pages(estate: Estate) -> None:
    # persons(first: 2): 1 + 2 x (edges: 1 + (node: 1 + (entries(first: 10): 1 + 10 x (edges: 1 + (node: 1 + port: 1)))))
    document = "{ persons(first: 2) { edges { node { entries(first: 10) { edges { node { port } } } } } } }"
    expected = 1 + 2 * (1 + (1 + (1 + 10 * (1 + (1 + 1)))))
    assert _cost(document) == expected
    async with limited(estate, max_cost=expected) as http:
        _answered(await _post(http, document))
    async with limited(estate, max_cost=expected - 1) as http:
        _refused_with(await _post(http, document), "QUERY_TOO_COSTLY")


@pytest.mark.parametrize(
    "document",
    [
        "query { persons(first: 1) { edges { node { ...Entries } } } } "
        "fragment Entries on Person { entries(first: 100) { edges { node { port } } } }",
        "query { ...Everyone } fragment Everyone on Query { persons(first: 100) { totalCount } }",
        "query { persons(first: 1) { ...Conn } } fragment Conn on PersonConnection { edges { node { ...P } } } "
        "fragment P on Person { benefitPayments(first: 100) { edges { node { amount } } } }",
        "query { persons(first: 1) { edges { node { ... on Person { accessLog(first: 100) { edges { node { at } } } } } } } }",
    ],
    ids=["fragment", "root-fragment", "nested-fragments", "inline-fragment"],
)
async def test_a_big_page_hidden_in_fragments_is_refused(estate: Estate, document: str) -> None:
    assert _cost(document) > 100
    async with limited(estate, max_cost=100) as http:
        _refused_with(await _post(http, document), "QUERY_TOO_COSTLY")


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        ("query($n: Int) { persons(first: $n) { totalCount } }", {"n": 3}),
        ("query($n: Int = 3) { persons(first: $n) { totalCount } }", {}),
        ("query($n: Int) { persons(first: $n) { totalCount } }", {"n": 3.0}),
        (
            "query($n: Int) { persons(first: 1) { ...F } } "
            "fragment F on PersonConnection { edges { node { entries(first: $n) { edges { node { port } } } } } }",
            {"n": 3},
        ),
    ],
    ids=["variable", "variable-default", "variable-as-float", "variable-in-fragment"],
)
async def test_a_big_page_given_by_a_variable_is_refused(
    estate: Estate, document: str, variables: dict[str, Any]
) -> None:
    async with limited(estate, max_cost=3) as http:
        _refused_with(await _post(http, document, variables), "QUERY_TOO_COSTLY")


async def test_a_small_page_given_by_a_variable_passes(estate: Estate) -> None:
    async with limited(estate, max_cost=3) as http:
        _answered(await _post(http, "query($n: Int) { persons(first: $n) { totalCount } }", {"n": 2}))
        _answered(await _post(http, "query($n: Int = 2) { persons(first: $n) { totalCount } }"))


async def test_cost_is_that_of_the_operation_asked_for(estate: Estate) -> None:
    document = (
        "query Cheap { persons(first: 1) { totalCount } } query Costly { persons(first: 50) { totalCount } }"
    )
    async with limited(estate, max_cost=10) as http:
        cheap = await http.post("/graphql", json={"query": document, "operationName": "Cheap"})
        _answered(cheap.json())
        costly = await http.post("/graphql", json={"query": document, "operationName": "Costly"})
        _refused_with(costly.json(), "QUERY_TOO_COSTLY")


def _statements(body: dict[str, Any]) -> int:
    sources: dict[str, dict[str, int]] = body["extensions"]["sources"]
    return sum(source["statements"] for source in sources.values())


async def test_a_refused_query_reads_nothing(estate: Estate) -> None:
    trace = {"X-Hub-Trace": "1"}
    async with limited(estate, max_cost=3) as http:
        costly = await http.post(
            "/graphql", json={"query": "{ persons(first: 4) { totalCount } }"}, headers=trace
        )
        cheap = await http.post("/graphql", json={"query": "{ accessGrants { role } }"}, headers=trace)
        read = await http.post(
            "/graphql", json={"query": "{ persons(first: 2) { totalCount } }"}, headers=trace
        )
    _refused_with(costly.json(), "QUERY_TOO_COSTLY")
    # No more statements than a query that reads no database at all.
    refused, baseline, reading = (_statements(r.json()) for r in (costly, cheap, read))
    assert refused <= baseline < reading, (costly.json(), cheap.json(), read.json())


# Work bounded before it starts: the expanded document, measured in linear work


def _bomb(levels: int) -> str:
    """Fragments that each spread the next twice: 2**levels copies of `id` once expanded."""
    fragments = " ".join(f"fragment F{i} on Person {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    return (
        "query { persons(first: 1) { edges { node { ...F0 } } } } "
        f"{fragments} fragment F{levels} on Person {{ id }}"
    )


def _chain(length: int) -> str:
    """Fragments each spreading the next once, `length` deep."""
    fragments = " ".join(f"fragment F{i} on Person {{ id ...F{i + 1} }}" for i in range(length))
    return (
        "query { persons(first: 1) { edges { node { ...F0 } } } } "
        f"{fragments} fragment F{length} on Person {{ id }}"
    )


def _cycle(length: int) -> str:
    """Fragments spreading each other in a ring of `length` (1: a fragment spreading itself)."""
    fragments = " ".join(f"fragment F{i} on Person {{ id ...F{(i + 1) % length} }}" for i in range(length))
    return f"query {{ persons(first: 1) {{ edges {{ node {{ ...F0 }} }} }} }} {fragments}"


SIX = "[NATIONALITY, TALENT_CATEGORY, PERMIT_STATUS, WORK_DISTRICT, EMPLOYER, INSURED]"
SIX_WAYS = " ".join(
    f"t{n}: workforceStatistics(groupBy: {SIX}) {{ keys {{ dimension value }} count suppressed }}"
    for n in range(30)
)


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times graphql-core's validation ran (the real one, counted on its way in)."""
    calls: list[int] = []
    real = strawberry.schema.schema.validate_document  # what schema.limits imports

    def counted(*args: Any) -> list[GraphQLError]:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(schema.limits, "validate_document", counted)
    return calls


def test_a_fragment_is_measured_once_however_often_it_is_spread() -> None:
    # 2**200 copies of `id` once expanded; the walk looks at each selection as written, once.
    levels = 200
    walked = walk(parse(_bomb(levels)))
    assert walked.visited == 3 + 1 + 2 * levels + 1  # persons, edges, node; ...F0; two spreads each; id
    expanded = 1  # F200: id
    for _ in range(levels):
        expanded = 2 * (1 + expanded)  # two spreads, each standing for the next fragment
    found = measure(walked, cap=10**100)
    assert found.nodes == 3 + 1 + expanded
    assert found.nesting == 3 + 1 + levels + 1
    assert measure(walked, cap=5000).nodes == 5000  # stops counting at the cap
    # The cost is exact: persons + edges + node + 2**200 times id.
    assert _cost(_bomb(levels)) == 3 + 2**levels


def test_each_alias_is_a_field_of_its_own() -> None:
    assert _cost("{ a: persons(first: 10) { totalCount } b: persons(first: 10) { totalCount } }") == 2 * 11


@pytest.mark.parametrize(
    ("selection", "per_person"),
    [
        ("visas { number type }", 1 + WORST_SIZES[("Person", "visas")] * 2),
        ("passports { number }", 1 + WORST_SIZES[("Person", "passports")]),
        ("identityLinks { agency }", 1 + WORST_SIZES[("Person", "identityLinks")]),
        ("residencePermits { number }", 1 + WORST_SIZES[("Person", "residencePermits")]),
        ("insuranceParticipations { type }", 1 + WORST_SIZES[("Person", "insuranceParticipations")]),
        (
            "workPermits { history { kind } }",
            1 + WORST_SIZES[("Person", "workPermits")] * (1 + WORST_SIZES[("WorkPermit", "history")]),
        ),
    ],
)
def test_an_unpaged_list_counts_by_its_worst_size(selection: str, per_person: int) -> None:
    # persons + 2 x (edges + node + the list)
    assert _cost(f"{{ persons(first: 2) {{ edges {{ node {{ {selection} }} }} }} }}") == 1 + 2 * (
        2 + per_person
    )


@pytest.mark.parametrize(
    ("arguments", "variables", "persons", "rows", "dimensions"),
    [
        ("groupBy: []", {}, PERSONS, 1, 0),
        ("groupBy: [TALENT_CATEGORY, INSURED]", {}, PERSONS, 4 * 2, 2),
        ("groupBy: [NATIONALITY, PERMIT_STATUS]", {}, PERSONS, PERSONS, 2),
        ("groupBy: [NATIONALITY, PERMIT_STATUS]", {}, 10_000, 250 * 7, 2),
        (f"groupBy: {SIX}", {}, 2000, 2000, 6),
        ("groupBy: [EMPLOYER]", {}, 2000, 2000, 1),
        # A dimension the filter fixes has one value in the rows.
        ('groupBy: [NATIONALITY, PERMIT_STATUS], filter: { nationality: "DEU" }', {}, 10_000, 7, 2),
        ("groupBy: $by", {"by": ["TALENT_CATEGORY", "INSURED"]}, PERSONS, 4 * 2, 2),
        ("groupBy: [INSURED], filter: $f", {"f": {"insured": True}}, PERSONS, 1, 1),
    ],
)
def test_statistics_count_their_cells(
    arguments: str, variables: dict[str, Any], persons: int, rows: int, dimensions: int
) -> None:
    declared = "($by: [StatisticsDimension!]!, $f: PersonFilter)" if variables else ""
    document = f"query{declared} {{ workforceStatistics({arguments}) {{ keys {{ dimension value }} count suppressed }} }}"
    # the field + each row's keys (1 + two per dimension), count and suppressed
    assert _cost(document, variables, persons) == 1 + rows * (1 + 2 * dimensions + 2)


async def test_many_aliases_of_large_statistics_are_refused_before_any_is_computed(estate: Estate) -> None:
    settings, headers = read_everything(estate.settings)
    trace = {**headers, "X-Hub-Trace": "1"}
    expected = 30 * (1 + PERSONS * (1 + 2 * 6 + 2))
    async with serve(replace(settings, limits=replace(Limits(), rate_limit="10000/minute"))) as http:
        baseline = await http.post("/graphql", json={"query": "{ accessGrants { role } }"}, headers=trace)
        first = await http.post("/graphql", json={"query": "{ " + SIX_WAYS + " }"}, headers=trace)
        again = await http.post("/graphql", json={"query": "{ " + SIX_WAYS + " }"}, headers=trace)
    for refused in (first, again):
        assert refused.status_code == 200
        body = refused.json()
        _refused_with(body, "QUERY_TOO_COSTLY")
        assert body["errors"][0]["extensions"] == {
            "code": "QUERY_TOO_COSTLY",
            "cost": expected,
            "limit": 30_000,
        }
    # The number of persons is read once (then kept); no statistics are computed.
    assert _statements(first.json()) <= _statements(baseline.json()) + 1
    assert _statements(again.json()) <= _statements(baseline.json())


@asynccontextmanager
async def defaults(estate: Estate, **limits: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The hub with the default limits (but for these), and a caller that may read every field."""
    settings, headers = read_everything(estate.settings)
    chosen = replace(Limits(), rate_limit="10000/minute", **limits)
    async with serve(replace(settings, limits=chosen), headers) as http:
        yield http


async def test_a_fragment_bomb_is_refused_before_validation(estate: Estate, validations: list[int]) -> None:
    bomb = _bomb(20)
    assert len(orjson.dumps({"query": bomb})) < 1000  # as small as the one that stalled the hub
    async with defaults(estate) as http:
        body = await _post(http, bomb)
        assert validations == []
        message = _refused_with(body, "QUERY_TOO_COMPLEX")
        assert "5000" in message
        assert body["errors"][0]["extensions"] == {"code": "QUERY_TOO_COMPLEX", "limit": 5000}
        _answered(await _post(http, "{ persons(first: 1) { totalCount } }"))
        assert validations == [1]  # the counter does see validation


async def test_the_expanded_size_at_the_budget_passes_and_beyond_is_refused(estate: Estate) -> None:
    # persons, edges, node, and twice (the spread, id, nationality): 9
    document = (
        "{ persons(first: 1) { edges { node { ...F ...F } } } } fragment F on Person { id nationality }"
    )
    async with limited(estate, max_nodes=9) as http:
        _answered(await _post(http, document))
    async with limited(estate, max_nodes=8) as http:
        message = _refused_with(await _post(http, document), "QUERY_TOO_COMPLEX")
        assert "more than 8" in message


@pytest.mark.parametrize("length", [100, 500])
async def test_a_long_chain_of_fragments_is_refused_with_its_code(
    estate: Estate, validations: list[int], length: int
) -> None:
    async with defaults(estate) as http:
        body = await _post(http, _chain(length))
    _refused_with(body, "QUERY_TOO_COMPLEX")
    assert body["errors"][0]["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "nesting": length + 5,
        "limit": 40,
    }
    assert validations == []


async def test_nesting_at_the_limit_passes_and_beyond_is_refused(estate: Estate) -> None:
    # persons > edges > node > (inline fragment) > id: 5 levels
    document = "{ persons(first: 1) { edges { node { ... on Person { id } } } } }"
    async with limited(estate, max_nesting=5) as http:
        _answered(await _post(http, document))
    async with limited(estate, max_nesting=4) as http:
        message = _refused_with(await _post(http, document), "QUERY_TOO_COMPLEX")
        assert "5 levels" in message and "limit of 4" in message


@pytest.mark.parametrize("length", [1, 3, 500])
async def test_a_fragment_cycle_is_refused_without_recursing(
    estate: Estate, validations: list[int], length: int
) -> None:
    async with defaults(estate) as http:
        body = await _post(http, _cycle(length))
    message = _refused_with(body, "GRAPHQL_VALIDATION_FAILED")
    assert message.startswith("Cannot spread fragment 'F0' within itself")
    assert validations == []


async def test_the_same_field_asked_for_over_and_over_is_refused_within_the_budget(estate: Estate) -> None:
    # graphql-core compares every pair of same-named fields: 500 of them are 125,000 pairs.
    document = "{ persons(first: 1) { edges { node { " + "name { full } " * 500 + "} } } }"
    async with defaults(estate) as http:
        body = await _post(http, document)
    _refused_with(body, "QUERY_TOO_COMPLEX")
    assert body["errors"][0]["extensions"] == {"code": "QUERY_TOO_COMPLEX", "limit": 5000}


# While it runs: the fields resolved


async def test_resolved_fields_at_the_budget_pass_and_beyond_stop_the_request(estate: Estate) -> None:
    # persons, edges, and five times node, id and nationality: 17
    document = "{ persons(first: 5) { edges { node { id nationality } } } }"
    async with limited(estate, max_resolved_fields=17) as http:
        _answered(await _post(http, document))
    async with limited(estate, max_resolved_fields=16) as http:
        body = await _post(http, document)
    message = _refused_with(body, "RESULT_TOO_LARGE")
    assert "16 fields" in message
    assert body["errors"][0]["extensions"] == {"code": "RESULT_TOO_LARGE", "limit": 16}


EVERYTHING = """
query Everything {
  persons(first: 100) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id sex birthDate nationality socialSecurityNumber
      name { surname givenNames full }
      passports { number nationality validFrom validTo current }
      identityLinks { agency recordKey confidence }
      workPermit { ...Period }
      workPermits { ...Period }
      socialSecurityCard { number status issuedOn validTo carriesWorkPermit workPermitNumber }
      electronicCard { id status serviceLevel signedAt verificationMethod cardNumber workPermitNumber }
      insuranceParticipations { type status startedOn endedOn employer { id creditCode name } }
      visas { number type issuedOn validTo notificationLetterNumber }
      entries { edges { cursor node { enteredOn port visaNumber } } pageInfo { hasNextPage endCursor } }
      residencePermit { number purpose issuedOn validTo issuingOffice status verifiedBy }
      residencePermits { number purpose issuedOn validTo issuingOffice status verifiedBy }
      benefitPayments { edges { cursor node { benefitCode benefitName amount paidOn status } } }
      notifications { edges { cursor node { id at message kind } } }
      accessLog { edges { cursor node { at role purpose fields } } }
    } }
  }
}
fragment Period on WorkPermit {
  id number status category validFrom validTo position workDistrict procedure
  notificationLetterNumber qrCode employer { id creditCode name }
  history { kind appliedOn decidedOn outcome remark }
}
"""


def _fields(value: Any) -> int:
    """The fields an answer holds (each one resolved once)."""
    if isinstance(value, dict):
        return sum(1 + _fields(item) for item in value.values())
    if isinstance(value, list):
        return sum(_fields(item) for item in value)
    return 0


async def test_a_page_of_100_persons_with_everything_passes_the_default_budget(estate: Estate) -> None:
    # Its worst case is far over the cost limit (every list at its worst size); what it really
    # resolves is what the field budget is for.
    assert _cost(EVERYTHING) > Limits().max_cost
    async with defaults(estate, max_cost=10**9) as http:
        body = await _post(http, EVERYTHING)
    _answered(body)
    assert 10_000 < _fields(body["data"]) < Limits().max_resolved_fields


# Document size


def _sized(size: int) -> bytes:
    """A JSON request of exactly `size` bytes (padding the document with spaces)."""
    body = orjson.dumps({"query": "{ persons(first: 1) { totalCount } }"})
    padding = size - len(body)
    assert padding >= 0
    return orjson.dumps({"query": "{ persons(first: 1) { totalCount } }" + " " * padding})


async def test_a_document_at_the_size_limit_passes_and_beyond_is_413(estate: Estate) -> None:
    async with limited(estate, max_document_bytes=300) as http:
        at_limit = await http.post(
            "/graphql", content=_sized(300), headers={"Content-Type": "application/json"}
        )
        assert at_limit.status_code == 200, at_limit.text
        _answered(at_limit.json())
        over = await http.post("/graphql", content=_sized(301), headers={"Content-Type": "application/json"})
    assert over.status_code == 413
    message = _refused_with(over.json(), "QUERY_TOO_LARGE")
    assert "300 bytes" in message


async def test_a_streamed_document_is_cut_off_at_the_limit(estate: Estate) -> None:
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ persons { totalCount } }'
        for _ in range(1000):
            sent.append(1)
            yield b" " * 1024
        yield b'"}'

    async with limited(estate, max_document_bytes=4096) as http:
        over = await http.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
    assert over.status_code == 413
    _refused_with(over.json(), "QUERY_TOO_LARGE")


async def test_a_large_document_by_get_is_413(estate: Estate) -> None:
    async with limited(estate, max_document_bytes=300) as http:
        small = await http.get("/graphql", params={"query": "{ persons(first: 1) { totalCount } }"})
        assert small.status_code == 200, small.text
        large = await http.get(
            "/graphql", params={"query": "{ persons(first: 1) { totalCount } }" + " " * 400}
        )
    assert large.status_code == 413
    _refused_with(large.json(), "QUERY_TOO_LARGE")


async def test_a_large_document_is_refused_before_the_token_is_looked_at(estate: Estate) -> None:
    async with limited(estate, max_document_bytes=300) as http:
        over = await http.post(
            "/graphql",
            content=_sized(301),
            headers={"Content-Type": "application/json", "Authorization": "Bearer nonsense"},
        )
    assert over.status_code == 413


# Rate limits


def _retry_after(response: httpx.Response) -> int:
    value = response.headers["retry-after"]
    assert value.isdigit(), value
    seconds = int(value)
    assert seconds > 0
    return seconds


async def test_a_client_over_its_rate_is_429_with_retry_after(estate: Estate) -> None:
    settings, _ = read_everything(estate.settings)
    limits = replace(LOOSE, rate_limit="3/hour")  # a window no slow machine outlasts
    busy = caller_headers(estate.settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    quiet = caller_headers(estate.settings, CallerRole.REPORTING)
    document = {"query": "{ accessGrants { role } }"}
    async with serve(replace(settings, limits=limits)) as http:
        for _ in range(3):
            assert (await http.post("/graphql", json=document, headers=busy)).status_code == 200
        refused = await http.post("/graphql", json=document, headers=busy)
        assert refused.status_code == 429
        assert _retry_after(refused) <= 3600
        message = _refused_with(refused.json(), "RATE_LIMITED")
        assert "retry in" in message
        again = await http.post("/graphql", json=document, headers=busy)
        assert again.status_code == 429 and _retry_after(again) <= 3600
        # The limit is per client: another token's subject still gets through.
        other = await http.post("/graphql", json=document, headers=quiet)
        assert other.status_code == 200, other.text


async def test_the_rate_is_per_subject_not_per_token(estate: Estate) -> None:
    settings, _ = read_everything(estate.settings)
    document = {"query": "{ accessGrants { role } }"}
    async with serve(replace(settings, limits=replace(LOOSE, rate_limit="2/hour"))) as http:
        for _ in range(2):
            fresh = caller_headers(estate.settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
            assert (await http.post("/graphql", json=document, headers=fresh)).status_code == 200
        # A new token for the same subject does not start a new allowance.
        fresh = caller_headers(estate.settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
        refused = await http.post("/graphql", json=document, headers=fresh)
        assert refused.status_code == 429
        _retry_after(refused)


# Configuration and defaults


def test_limits_are_read_from_the_environment() -> None:
    env = {
        "HUB_DATA_DIR": "var",
        "HUB_MAX_DOCUMENT_BYTES": "1000",
        "HUB_MAX_DEPTH": "4",
        "HUB_MAX_ALIASES": "5",
        "HUB_MAX_TOKENS": "600",
        "HUB_MAX_COST": "700",
        "HUB_MAX_NODES": "800",
        "HUB_MAX_NESTING": "9",
        "HUB_MAX_RESOLVED_FIELDS": "900",
        "HUB_RATE_LIMIT": "10/second",
    }
    assert Settings.from_environment(env).limits == Limits(
        max_document_bytes=1000,
        max_depth=4,
        max_aliases=5,
        max_tokens=600,
        max_cost=700,
        max_nodes=800,
        max_nesting=9,
        max_resolved_fields=900,
        rate_limit="10/second",
    )
    assert Settings.from_environment({"HUB_DATA_DIR": "var"}).limits == Limits()


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5", " "])
def test_an_unreadable_limit_stops_the_start(value: str) -> None:
    if not value.strip():
        assert Settings.from_environment({"HUB_MAX_NODES": value}).limits.max_nodes == Limits().max_nodes
        return
    with pytest.raises(ValueError, match="HUB_MAX_NODES"):
        Settings.from_environment({"HUB_MAX_NODES": value})


def test_the_defaults_are_the_documented_ones() -> None:
    defaults = Limits()
    assert (
        defaults.max_document_bytes,
        defaults.max_depth,
        defaults.max_aliases,
        defaults.max_tokens,
        defaults.max_cost,
        defaults.max_nodes,
        defaults.max_nesting,
        defaults.max_resolved_fields,
        defaults.rate_limit,
    ) == (65536, 15, 30, 5000, 30000, 5000, 40, 50000, "1200/minute")
    readme = (ROOT / "README.md").read_text()
    assert "65536, 15, 30, 5000, 30000" in readme and "`1200/minute`" in readme
    assert "| `HUB_MAX_NODES`, `HUB_MAX_NESTING` | 5000, 40 |" in readme
    assert "| `HUB_MAX_RESOLVED_FIELDS` | 50000 |" in readme
    assert {f.name for f in fields(Limits)} == {
        "max_document_bytes",
        "max_depth",
        "max_aliases",
        "max_tokens",
        "max_cost",
        "max_nodes",
        "max_nesting",
        "max_resolved_fields",
        "rate_limit",
    }


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_each_example_is_well_within_the_default_limits(example: str) -> None:
    """Not just under them: each example would pass with a tenth of the default cost, aliases,
    tokens and size."""
    document = EXAMPLES[example]
    defaults = Limits()
    definitions = parse(document).definitions
    assert len(orjson.dumps({"query": document})) * 10 < defaults.max_document_bytes
    assert _token_count(document) * 10 < defaults.max_tokens
    variables = {"lookup": {"id": "x"}} if "$lookup" in document else {}
    assert _cost(document, variables) * 10 <= defaults.max_cost
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    aliases = sum(
        count_fields_with_alias(d, fragments) for d in definitions if isinstance(d, OperationDefinitionNode)
    )
    assert aliases * 10 <= defaults.max_aliases


@pytest.mark.parametrize("example", sorted(EXAMPLES))
async def test_each_example_passes_the_default_limits(
    policy_client: httpx.AsyncClient, client: httpx.AsyncClient, estate: Estate, example: str
) -> None:
    assert estate.settings.limits == Limits(), "policy_client serves the default limits"
    limit_codes = {
        "QUERY_TOO_DEEP",
        "TOO_MANY_ALIASES",
        "TOO_MANY_TOKENS",
        "QUERY_TOO_COSTLY",
        "QUERY_TOO_COMPLEX",
        "RESULT_TOO_LARGE",
    }
    for answer in await run_example(policy_client, client, estate, EXAMPLES[example]):
        codes = {e.get("extensions", {}).get("code") for e in answer.body.get("errors", [])}
        assert not codes & limit_codes, answer.body["errors"]
        assert "errors" not in answer.body, answer.body["errors"]


async def test_graphiqls_introspection_passes_the_default_limits(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    body = await graphql(
        policy_client,
        get_introspection_query(descriptions=True),
        headers=estate.headers(CallerRole.INTEGRATION_DEVELOPER),
    )
    assert "errors" not in body, body["errors"]
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


# A real server: the event loop stays free while a bomb is refused; frames are bounded


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    base: str
    settings: Settings


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """`hub run` in its own process (a stalled event loop there cannot stall the test), on a
    small SQLite estate, with the default limits."""
    data_dir = tmp_path_factory.mktemp("limits-server")
    settings = Settings.for_directory(data_dir, fixed_today=AS_OF)
    await seed_estate(settings, persons=20, seed=3)
    caller_headers(settings, CallerRole.REPORTING)  # the token key exists before the server starts
    port = _free_port()
    env = {
        **os.environ,
        "HUB_DATA_DIR": str(data_dir),
        "HUB_TODAY": AS_OF.isoformat(),
        "HUB_NOTIFY_INTERVAL": "0",
        **UNHURRIED_ENV,
    }
    for name in ("HUB_CRASH_DRILL", "HUB_FAULTS", "HUB_FAULTS_FILE", "OTEL_TRACES_EXPORTER"):
        env.pop(name, None)
    env = {k: v for k, v in env.items() if not k.startswith(("HUB_MAX_", "OTEL_EXPORTER"))}
    log_path = data_dir / "server.log"
    with log_path.open("w") as log:
        process = await asyncio.create_subprocess_exec(
            *HUB, "run", "--port", str(port), cwd=ROOT, env=env, stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                try:
                    if (await http.get(f"{base}/healthz", timeout=1)).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the server did not start: " + log_path.read_text()[-2000:])
        yield Server(base, settings)
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:  # a loop held by a document does not see SIGTERM
            process.kill()
            await process.wait()
    assert "Traceback" not in log_path.read_text()


async def test_healthz_answers_while_a_fragment_bomb_is_refused(server: Server) -> None:
    # 2**30 copies once expanded: counted in full, it would hold the event loop for hours.
    headers = caller_headers(server.settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    safety = SAFETY_NET  # a net only, nothing here waits for time to pass
    async with httpx.AsyncClient(base_url=server.base, timeout=safety) as http:
        bomb = asyncio.create_task(http.post("/graphql", json={"query": _bomb(30)}, headers=headers))
        health = asyncio.create_task(http.get("/healthz"))
        refused, healthy = await asyncio.wait_for(asyncio.gather(bomb, health), safety)
    assert healthy.status_code == 200 and healthy.json() == {"status": "ok"}
    assert refused.status_code == 200
    _refused_with(refused.json(), "QUERY_TOO_COMPLEX")


async def test_a_websocket_frame_larger_than_a_document_is_closed_unread(server: Server) -> None:
    url = server.base.replace("http", "ws", 1) + "/graphql"
    token = caller_headers(server.settings, CallerRole.CARDHOLDER, person_id=1)
    async with connect(
        url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=SAFETY_NET
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": token}))
        assert json.loads(await asyncio.wait_for(ws.recv(), SAFETY_NET)) == {"type": "connection_ack"}
        variables = {"after": "x" * (Limits().max_document_bytes + 8192)}
        query = "subscription($after: String) { notifications(after: $after) { id } }"
        message = {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}
        await ws.send(json.dumps(message))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), SAFETY_NET)
    assert ws.close_code == 1009  # message too big
