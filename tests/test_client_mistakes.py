"""Client mistakes are answered as client mistakes (issue 8, finding 7): bodies that are not
UTF-8, JSON nested a thousand deep, lone surrogates and other malformed requests get 400 with a
code and a message naming the rule, never a 500 or a masked internal error."""

from __future__ import annotations

import httpx
import pytest

from domain.records import CallerRole
from tests.conftest import Estate

LOOKUP = "query($l: PersonLookup!) { person(lookup: $l) { id } }"


def _nested(depth: int) -> bytes:
    return (
        b'{"query": "'
        + LOOKUP.encode()
        + b'", "variables": {"l": {"cardNumber": '
        + b"[" * depth
        + b'"x"'
        + b"]" * depth
        + b"}}}"
    )


MALFORMED = {
    "not UTF-8": b'{"query": "{ __typename }", "variables": {"l": "\xff\xfe"}}',
    "a lone surrogate": b'{"query": "'
    + LOOKUP.encode()
    + b'", "variables": {"l": {"cardNumber": "\\ud800"}}}',
    "nested 1000 deep": _nested(1000),
    "nested 40 deep": _nested(40),
    "not JSON": b"{query: __typename}",
    "truncated": b'{"query": "{ __typename }"',
    # JSON, but not a request: a GraphQL request over HTTP is a JSON object.
    "a number": b"0",
    "a string": b'"{ __typename }"',
    "null": b"null",
    "true": b"true",
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
async def test_a_malformed_body_is_400_naming_the_rule(
    policy_client: httpx.AsyncClient, estate: Estate, kind: str
) -> None:
    headers = {**estate.headers(CallerRole.EXIT_ENTRY, "entry-control"), "content-type": "application/json"}
    response = await policy_client.post("/graphql", content=MALFORMED[kind], headers=headers)
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "JSON" in error["message"]


async def test_json_nested_within_the_limit_is_served(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    headers = {**estate.headers(CallerRole.EXIT_ENTRY, "entry-control"), "content-type": "application/json"}
    response = await policy_client.post("/graphql", content=_nested(3), headers=headers)
    assert response.status_code == 200
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"  # a list where a String belongs


@pytest.mark.parametrize(
    "body",
    [
        {"query": LOOKUP, "variables": {"l": {"cardNumber": "H\u000012345678"}}},
        {"query": '{ person(lookup: {cardNumber: "H\\u000012345678"}) { id } }'},
    ],
    ids=["in variables", "in a literal"],
)
async def test_text_with_a_nul_is_refused_on_every_database(
    policy_client: httpx.AsyncClient, estate: Estate, body: dict[str, object]
) -> None:
    """PostgreSQL stores no NUL in text: the hub refuses it as the client's mistake everywhere."""
    headers = estate.headers(CallerRole.EXIT_ENTRY, "entry-control")
    response = await policy_client.post("/graphql", json=body, headers=headers)
    assert response.status_code in (200, 400)
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] in ("BAD_REQUEST", "BAD_USER_INPUT")
    assert "NUL" in error["message"]
