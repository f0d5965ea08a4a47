"""Limits against abusive queries: depth, aliases, tokens, document size, cost (a paged field's
selection counts as many times as its page size) and per-client rate limits. Each is tried
just under and just over a small limit, also with the excess hidden in fragments; every
example document passes under the default limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
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

from adapters.records import CallerRole
from schema import build_schema
from schema.limits import document_cost
from settings import Limits, Settings
from tests.conftest import Estate, caller_headers, graphql, read_everything, serve
from tests.examples import EXAMPLES, run_example

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = build_schema()._schema
# Limits small enough to trip, and loose enough that nothing else trips first.
LOOSE = Limits(max_depth=50, max_aliases=100, max_tokens=10_000, max_cost=100_000, rate_limit="10000/minute")


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
    assert document_cost(SCHEMA, parse(document).definitions, None, {}) == expected
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
    assert document_cost(SCHEMA, parse(document).definitions, None, {}) > 100
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
    limits = replace(LOOSE, rate_limit="3/minute")
    busy = caller_headers(estate.settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    quiet = caller_headers(estate.settings, CallerRole.REPORTING)
    document = {"query": "{ accessGrants { role } }"}
    async with serve(replace(settings, limits=limits)) as http:
        for _ in range(3):
            assert (await http.post("/graphql", json=document, headers=busy)).status_code == 200
        refused = await http.post("/graphql", json=document, headers=busy)
        assert refused.status_code == 429
        assert _retry_after(refused) <= 60
        message = _refused_with(refused.json(), "RATE_LIMITED")
        assert "retry in" in message
        again = await http.post("/graphql", json=document, headers=busy)
        assert again.status_code == 429 and _retry_after(again) <= 60
        # The limit is per client: another token's subject still gets through.
        other = await http.post("/graphql", json=document, headers=quiet)
        assert other.status_code == 200, other.text


async def test_the_rate_is_per_subject_not_per_token(estate: Estate) -> None:
    settings, _ = read_everything(estate.settings)
    document = {"query": "{ accessGrants { role } }"}
    async with serve(replace(settings, limits=replace(LOOSE, rate_limit="2/minute"))) as http:
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
        "HUB_RATE_LIMIT": "10/second",
    }
    assert Settings.from_environment(env).limits == Limits(
        max_document_bytes=1000,
        max_depth=4,
        max_aliases=5,
        max_tokens=600,
        max_cost=700,
        rate_limit="10/second",
    )
    assert Settings.from_environment({"HUB_DATA_DIR": "var"}).limits == Limits()


def test_the_defaults_are_the_documented_ones() -> None:
    defaults = Limits()
    assert (
        defaults.max_document_bytes,
        defaults.max_depth,
        defaults.max_aliases,
        defaults.max_tokens,
        defaults.max_cost,
        defaults.rate_limit,
    ) == (65536, 15, 30, 5000, 30000, "1200/minute")
    readme = (ROOT / "README.md").read_text()
    assert "65536, 15, 30, 5000, 30000" in readme and "`1200/minute`" in readme
    assert {f.name for f in fields(Limits)} == {
        "max_document_bytes",
        "max_depth",
        "max_aliases",
        "max_tokens",
        "max_cost",
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
    assert document_cost(SCHEMA, definitions, None, {}) * 10 <= defaults.max_cost
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
    limit_codes = {"QUERY_TOO_DEEP", "TOO_MANY_ALIASES", "TOO_MANY_TOKENS", "QUERY_TOO_COSTLY"}
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
