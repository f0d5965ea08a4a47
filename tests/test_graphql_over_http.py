"""GraphQL over HTTP (edge/media.py): the spec's audit (graphql-http's auditServer, run by Node
against uvicorn) passes every check, and the two media types answer as the spec says:
`application/graphql-response+json` with 4xx for request errors and no `data`, `application/json`
exactly as before."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import httpx
import pytest

from app import create_app
from domain.records import CallerRole
from edge.media import prefers_graphql_response
from tests.clock import SAFETY_NET
from tests.conftest import Estate
from tests.servers import uvicorn_serving

CLIENTS = Path(__file__).parent / "clients"
ON_SQLITE = pytest.mark.parametrize("estate", ["sqlite"], indirect=True)
GRAPHQL_RESPONSE = "application/graphql-response+json"


def _audit_unavailable() -> str | None:
    if shutil.which("node") is None:
        return "Node.js is not installed (the GraphQL over HTTP audit needs `node`)"
    if not (CLIENTS / "node_modules" / "graphql-http").is_dir():
        return "tests/clients has no node_modules: run `npm ci --prefix tests/clients` (.ci/run does)"
    return None


@ON_SQLITE
async def test_the_graphql_over_http_audit_passes_every_check(estate: Estate) -> None:
    reason = _audit_unavailable()
    if reason is not None:
        pytest.skip(reason)
    headers = estate.headers(CallerRole.INTEGRATION_DEVELOPER)
    async with uvicorn_serving(create_app(estate.settings)) as address:
        process = await asyncio.create_subprocess_exec(
            "node",
            str(CLIENTS / "audit.mjs"),
            f"http://{address}/graphql",
            headers["Authorization"],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), SAFETY_NET)
    assert process.returncode == 0, err.decode()
    results = [json.loads(line) for line in out.decode().splitlines()]
    not_ok = [f"{r['status']} {r['id']} {r['name']}: {r['reason']}" for r in results if r["status"] != "ok"]
    assert len(results) == 61, out.decode()
    assert not_ok == [], "\n".join(not_ok)


async def _post(
    client: httpx.AsyncClient, accept: str | None, body: object, headers: dict[str, str]
) -> httpx.Response:
    sent = {**headers, **({"Accept": accept} if accept is not None else {})}
    return await client.post("/graphql", headers=sent, content=json.dumps(body))


@ON_SQLITE
@pytest.mark.parametrize(
    ("document", "variables"),
    [
        ("{ __typename", None),  # a parse failure
        ("{ noSuchField }", None),  # a validation failure
        ("query Q($id: ID!) { node(id: $id) { id } }", {"id": None}),  # variables that do not coerce
    ],
)
async def test_a_request_error_is_400_without_data_as_graphql_response_json_and_200_as_json(
    policy_client: httpx.AsyncClient, estate: Estate, document: str, variables: object
) -> None:
    headers = {**estate.headers(CallerRole.INTEGRATION_DEVELOPER), "Content-Type": "application/json"}
    body = {"query": document, "variables": variables}
    modern = await _post(policy_client, GRAPHQL_RESPONSE, body, headers)
    assert modern.status_code == 400
    assert modern.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in modern.json()
    assert modern.json()["errors"][0]["extensions"]["code"]
    legacy = await _post(policy_client, "application/json", body, headers)
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == "application/json"
    assert legacy.json()["data"] is None
    assert legacy.json()["errors"][0]["message"] == modern.json()["errors"][0]["message"]


@ON_SQLITE
async def test_a_result_is_200_in_the_media_type_asked_for(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    headers = {**estate.headers(CallerRole.INTEGRATION_DEVELOPER), "Content-Type": "application/json"}
    body = {"query": "{ __typename }"}
    for accept, media in [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        (None, "application/json"),
    ]:
        answer = await _post(policy_client, accept, body, headers)
        assert answer.status_code == 200, accept
        assert answer.headers["content-type"].startswith(media), accept
        assert answer.json() == {"data": {"__typename": "Query"}}


@ON_SQLITE
async def test_the_gates_refusals_keep_their_status_in_either_media_type(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    body = {"query": "{ __typename }"}
    for accept in (GRAPHQL_RESPONSE, "application/json"):
        unauthenticated = await _post(policy_client, accept, body, {"Content-Type": "application/json"})
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["content-type"].startswith(accept)
        assert unauthenticated.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert ("data" in unauthenticated.json()) is (accept == "application/json")
    # A role that may not introspect is refused the schema: 403 when the client can tell.
    cardholder = {**estate.headers(CallerRole.CARDHOLDER, person_id=1), "Content-Type": "application/json"}
    introspection = {"query": "{ __schema { queryType { name } } }"}
    refused = await _post(policy_client, GRAPHQL_RESPONSE, introspection, cardholder)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await _post(policy_client, "application/json", introspection, cardholder)).status_code == 200


@ON_SQLITE
async def test_a_mutation_by_get_and_a_batch_are_refused_with_the_rule(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    headers = estate.headers(CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    by_get = await policy_client.get(
        "/graphql",
        params={"query": 'mutation { publishNews(input: {message: "x"}) { userErrors { code } } }'},
        headers={**headers, "Accept": GRAPHQL_RESPONSE},
    )
    assert by_get.status_code == 405
    assert by_get.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    batch = await policy_client.post(
        "/graphql",
        json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}],
        headers={**headers, "Accept": GRAPHQL_RESPONSE},
    )
    assert batch.status_code == 400
    assert "batch" in batch.json()["errors"][0]["message"].lower()


@pytest.mark.parametrize(
    ("accept", "prefers"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        (GRAPHQL_RESPONSE, True),
        (f"application/json, {GRAPHQL_RESPONSE}", True),
        (f"{GRAPHQL_RESPONSE};q=0.5, application/json", False),
        (f"{GRAPHQL_RESPONSE};q=0", False),
        (f"{GRAPHQL_RESPONSE};q=oops", False),
        (f"{GRAPHQL_RESPONSE.upper()}; charset=utf-8", True),
    ],
)
def test_the_accept_header_chooses_the_media_type(accept: str | None, prefers: bool) -> None:
    assert prefers_graphql_response(accept) is prefers
