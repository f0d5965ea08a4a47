"""Documents sent by their SHA-256 (edge/documents.py): automatic persisted queries, as Apollo
Client's persisted-queries link speaks them, and trusted documents (HUB_TRUSTED_DOCUMENTS)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from graphql import parse, print_ast

from app import create_app
from domain.records import CallerRole, NotificationKind
from identity.store import HubStore
from notifications import notify
from notifications.broker import broker
from tests.clock import SAFETY_NET, until
from tests.conftest import Estate, serve
from tests.servers import uvicorn_serving

DESK = "query Desk($lookup: PersonLookup!) { person(lookup: $lookup) { id nationality visas { number } } }"
OTHER = "query Other($lookup: PersonLookup!) { person(lookup: $lookup) { id sex } }"
CLIENTS = Path(__file__).parent / "clients"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def desk(estate: Estate) -> dict[str, str]:
    return estate.headers(CallerRole.EXIT_ENTRY, "entry-control")


async def a_person(http: httpx.AsyncClient, estate: Estate) -> dict[str, Any]:
    listing = await http.post(
        "/graphql", json={"query": "{ persons(first: 1) { edges { node { id } } } }"}, headers=desk(estate)
    )
    return {"lookup": {"id": listing.json()["data"]["persons"]["edges"][0]["node"]["id"]}}


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


async def test_a_document_is_sent_by_its_hash_once_the_hub_keeps_it(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    http, headers = policy_client, desk(estate)
    variables = await a_person(http, estate)
    document = DESK + " "  # a text of this test's own: no other test registered it
    digest = sha256(document)
    unknown = await http.post(
        "/graphql", json={"variables": variables, "extensions": persisted(digest)}, headers=headers
    )
    assert unknown.status_code == 200
    assert unknown.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert codes(unknown) == ["PERSISTED_QUERY_NOT_FOUND"]
    full = await http.post(
        "/graphql",
        json={"query": document, "variables": variables, "extensions": persisted(digest)},
        headers=headers,
    )
    assert full.status_code == 200, full.text
    assert "errors" not in full.json()
    by_hash = await http.post(
        "/graphql", json={"variables": variables, "extensions": persisted(digest.upper())}, headers=headers
    )
    assert by_hash.json() == full.json()
    # GET carries the extensions as a parameter, as the APQ protocol's GET requests do.
    got = await http.get(
        "/graphql",
        params={"variables": json.dumps(variables), "extensions": json.dumps(persisted(digest))},
        headers=headers,
    )
    assert got.status_code == 200, got.text
    assert got.json() == full.json()


async def test_a_hash_that_is_not_the_querys_or_not_a_hash_is_a_bad_request(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    variables = await a_person(policy_client, estate)
    for extensions, rule in [
        (persisted(sha256(OTHER)), "is not the SHA-256 of the query sent"),
        (persisted("abc"), "64 hex digits"),
        ({"persistedQuery": {"version": 2, "sha256Hash": sha256(DESK)}}, "version 1"),
        ({"persistedQuery": "yes"}, "version 1"),
    ]:
        response = await policy_client.post(
            "/graphql",
            json={"query": DESK, "variables": variables, "extensions": extensions},
            headers=desk(estate),
        )
        assert response.status_code == 400, response.text
        assert codes(response) == ["BAD_REQUEST"]
        assert "extensions.persistedQuery" in response.json()["errors"][0]["message"]
        assert rule in response.json()["errors"][0]["message"]


async def test_a_hash_without_a_token_is_unauthenticated_and_not_kept(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    document = DESK + "  "
    refused = await policy_client.post(
        "/graphql", json={"query": document, "extensions": persisted(sha256(document))}
    )
    assert refused.status_code == 401
    later = await policy_client.post(
        "/graphql", json={"variables": {}, "extensions": persisted(sha256(document))}, headers=desk(estate)
    )
    assert codes(later) == ["PERSISTED_QUERY_NOT_FOUND"]


def trusted_file(tmp_path: Path, clients: dict[str, list[str]], documents: list[str]) -> Path:
    path = tmp_path / "trusted-documents.json"
    path.write_text(json.dumps({"documents": {sha256(d): d for d in documents}, "clients": clients}))
    return path


async def test_trusted_documents_run_only_for_the_clients_they_list(estate: Estate, tmp_path: Path) -> None:
    exit_entry = estate.headers(CallerRole.EXIT_ENTRY, "entry-control")
    visa = estate.headers(CallerRole.VISA_AUTHORITY, "visa-application")
    listing = "{ persons(first: 1) { edges { node { id } } } }"
    path = trusted_file(
        tmp_path,
        {"EXIT_ENTRY": [sha256(DESK), sha256(listing)], "test-visa_authority": [sha256(OTHER)]},
        [DESK, OTHER, listing],
    )
    async with serve(replace(estate.settings, trusted_documents=path)) as http:
        found = await http.post("/graphql", json={"query": listing}, headers=exit_entry)
        assert found.status_code == 200, found.text
        variables = {"lookup": {"id": found.json()["data"]["persons"]["edges"][0]["node"]["id"]}}
        by_hash = await http.post(
            "/graphql",
            json={"variables": variables, "extensions": persisted(sha256(DESK))},
            headers=exit_entry,
        )
        assert by_hash.status_code == 200, by_hash.text
        assert by_hash.json()["data"]["person"]["id"] == variables["lookup"]["id"]
        by_text = await http.post(
            "/graphql", json={"query": DESK, "variables": variables}, headers=exit_entry
        )
        assert by_text.json() == by_hash.json()
        # Listed for another client: refused, by text and by hash alike, and nothing is learned.
        for body in (
            {"query": OTHER, "variables": variables},
            {"variables": variables, "extensions": persisted(sha256(OTHER))},
            {"query": "{ __typename }", "extensions": persisted(sha256("{ __typename }"))},
        ):
            refused = await http.post("/graphql", json=body, headers=exit_entry)
            assert refused.status_code == 403, refused.text
            assert codes(refused) == ["PERSISTED_QUERY_NOT_IN_LIST"]
            assert "EXIT_ENTRY" in refused.json()["errors"][0]["message"]
        # A token's subject is a client key too: the visa desk's own document runs, the desk's not.
        own = await http.post("/graphql", json={"query": OTHER, "variables": variables}, headers=visa)
        assert own.status_code == 200, own.text
        assert codes(
            await http.post("/graphql", json={"query": DESK, "variables": variables}, headers=visa)
        ) == ["PERSISTED_QUERY_NOT_IN_LIST"]


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("not json", "cannot be read as JSON"),
        ('{"documents": {"00": "{ __typename }"}}', "documents.00 is not the SHA-256"),
        (json.dumps({"documents": {}, "clients": {"EXIT_ENTRY": [sha256(DESK)]}}), "clients.EXIT_ENTRY"),
    ],
)
def test_a_trusted_documents_file_that_cannot_be_used_stops_the_start(
    estate: Estate, tmp_path: Path, content: str, named: str
) -> None:
    path = tmp_path / "trusted.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="HUB_TRUSTED_DOCUMENTS") as raised:
        create_app(replace(estate.settings, trusted_documents=path))
    assert named in str(raised.value)


def _apollo_unavailable() -> str | None:
    if shutil.which("node") is None:
        return "Node.js is not installed (the Apollo Client test needs `node`)"
    if not (CLIENTS / "node_modules" / "@apollo" / "client").is_dir():
        return "tests/clients has no node_modules: run `npm ci --prefix tests/clients` (.ci/run does)"
    return None


async def test_apollo_clients_persisted_queries_link_sends_hashes_to_a_real_server(estate: Estate) -> None:
    """Apollo Client 4 with its PersistedQueryLink, run by Node against uvicorn: the first run
    of a document is a miss answered by the text; every later run is its hash alone."""
    reason = _apollo_unavailable()
    if reason is not None:
        pytest.skip(reason)
    headers = desk(estate)
    async with uvicorn_serving(create_app(estate.settings)) as address:
        url = f"http://{address}/graphql"
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            variables = await a_person(http, estate)
            document = DESK.replace("Desk", "ApolloDesk")
            plain = await http.post(
                "/graphql", json={"query": document, "variables": variables}, headers=headers
            )
        process = await asyncio.create_subprocess_exec(
            "node",
            str(CLIENTS / "persisted.mjs"),
            url,
            headers["Authorization"],
            headers["X-Purpose"],
            document,
            json.dumps(variables),
            "3",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), SAFETY_NET)
    assert process.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    requests = [line for line in lines if line.get("request")]
    results = [line for line in lines if not line.get("request")]
    assert [(r["query"], r["status"]) for r in requests] == [
        (False, 200),
        (True, 200),
        (False, 200),
        (False, 200),
    ]
    assert len({r["hash"] for r in requests}) == 1
    expected = plain.json()["data"]["person"]
    assert len(results) == 3
    for result in results:
        assert result["error"] is None
        person = result["data"]["person"]
        assert person["id"] == expected["id"]
        assert person["nationality"] == expected["nationality"]
        assert [v["number"] for v in person["visas"]] == [v["number"] for v in expected["visas"]]


# As gql sends it (it prints the document it parsed): a trusted document is the client's text.
SUBSCRIBE = print_ast(parse("subscription Mine { notifications { id message } }"))


async def test_a_subscription_over_websocket_runs_only_a_trusted_document(
    estate: Estate, tmp_path: Path
) -> None:
    """The `gql` client's websockets transport, as a cardholder's app: an unlisted document is
    refused with its code, the listed one (sent by text) is served."""
    person = 11
    unlisted = "subscription Other { notifications { id kind } }"
    path = trusted_file(tmp_path, {"CARDHOLDER": [sha256(SUBSCRIBE)]}, [SUBSCRIBE, unlisted])
    settings = replace(estate.settings, trusted_documents=path)
    store = HubStore.open(settings.store_url)

    def transport(address: str) -> WebsocketsTransport:
        return WebsocketsTransport(
            url=f"ws://{address}/graphql",
            init_payload={
                "Authorization": estate.headers(CallerRole.CARDHOLDER, person_id=person)["Authorization"]
            },
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            connect_timeout=SAFETY_NET,
            ack_timeout=SAFETY_NET,
        )

    try:
        async with uvicorn_serving(create_app(settings)) as address:
            async with Client(transport=transport(address)) as session:
                with pytest.raises(TransportQueryError) as refused:
                    await anext(session.subscribe(GraphQLRequest(unlisted)))
                assert refused.value.errors is not None
                assert refused.value.errors[0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
                before = broker.listeners(store, person)
                stream = session.subscribe(GraphQLRequest(SUBSCRIBE))
                first = asyncio.ensure_future(anext(stream))
                await until(lambda: broker.listeners(store, person) == before + 1, "the subscription listens")
                await notify(store, person, NotificationKind.NEWS, "Seen through a trusted document.")
                received = (await asyncio.wait_for(first, SAFETY_NET))["notifications"]
                assert received["message"] == "Seen through a trusted document."
                await stream.aclose()
    finally:
        await store.close()
