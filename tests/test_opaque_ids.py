"""Global ids and cursors are opaque and authenticated: they reveal nothing of the record or
position they stand for, and the hub accepts back only what it issued (issue 8, finding 6)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import httpx

from domain.records import CallerRole
from opaque.ids import GlobalIds
from opaque.sealing import Sealer
from tests.conftest import Estate, global_ids, graphql, person_id_of, read_everything, serve

PAGE = "query($after: String) { persons(first: 3, after: $after) { pageInfo { endCursor } edges { cursor node { id workPermit { id number validTo } } } } }"
EXPIRING = "query($after: String) { expiringWorkPermits(withinDays: 365, first: 2, after: $after) { pageInfo { endCursor } edges { node { number validTo } } } }"
NODE = "query($id: ID!) { node(id: $id) { id } }"


def _decoded(text: str) -> bytes:
    """What a client gets by base64-decoding an opaque value (as the old ids allowed)."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return b""


def _old_style(type_name: str, key: object) -> str:
    """An id in the format the hub used to issue: base64 of `Type:key`, made by anyone."""
    return base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode().rstrip("=")


def _tampered(text: str) -> str:
    middle = len(text) // 2
    return text[:middle] + ("A" if text[middle] != "A" else "B") + text[middle + 1 :]


async def _page(client: httpx.AsyncClient) -> dict[str, Any]:
    body = await graphql(client, PAGE)
    assert "errors" not in body, body["errors"]
    page: dict[str, Any] = body["data"]["persons"]
    return page


async def test_ids_and_cursors_reveal_no_key_or_position(client: httpx.AsyncClient, estate: Estate) -> None:
    page = await _page(client)
    edges = page["edges"]
    assert isinstance(edges, list) and edges
    for edge in edges:
        node = edge["node"]
        person_id = person_id_of(estate.settings, node["id"])
        for text in (node["id"], edge["cursor"]):
            decoded = _decoded(text)
            assert b"Person" not in decoded and b"persons" not in decoded
            if person_id >= 100:  # a shorter number could sit in random bytes by chance
                assert str(person_id).encode() not in decoded
        if node["workPermit"]:
            assert b"WorkPermit" not in _decoded(node["workPermit"]["id"])
    expiring = await graphql(client, EXPIRING)
    assert "errors" not in expiring, expiring["errors"]
    cursor = expiring["data"]["expiringWorkPermits"]["pageInfo"]["endCursor"]
    last = expiring["data"]["expiringWorkPermits"]["edges"][-1]["node"]
    decoded = _decoded(cursor)
    assert last["number"].encode() not in decoded
    assert (
        last["validTo"].encode() not in decoded and last["validTo"].replace("-", "").encode() not in decoded
    )


async def test_ids_and_cursors_work_and_stay_stable_across_restarts(
    client: httpx.AsyncClient, estate: Estate
) -> None:
    first = await _page(client)
    nxt = await graphql(client, PAGE, {"after": first["pageInfo"]["endCursor"]})
    assert "errors" not in nxt, nxt["errors"]
    first_ids = [e["node"]["id"] for e in first["edges"]]
    next_ids = [e["node"]["id"] for e in nxt["data"]["persons"]["edges"]]
    assert not set(first_ids) & set(next_ids)
    assert [person_id_of(estate.settings, i) for i in first_ids + next_ids] == sorted(
        person_id_of(estate.settings, i) for i in first_ids + next_ids
    )
    for global_id in first_ids:
        body = await graphql(client, NODE, {"id": global_id})
        assert body["data"]["node"] == {"id": global_id}
    # Another server on the same data directory issues the very same ids.
    async with serve(*read_everything(estate.settings)) as again:
        assert [e["node"]["id"] for e in (await _page(again))["edges"]] == first_ids


async def test_an_id_or_cursor_the_hub_did_not_issue_is_refused_by_name(
    client: httpx.AsyncClient, estate: Estate
) -> None:
    page = await _page(client)
    edge = page["edges"][0]
    person_id = person_id_of(estate.settings, edge["node"]["id"])
    for forged in (
        _old_style("Person", person_id),
        _old_style("Person", 2**70),  # an integer no database column holds
        _old_style("WorkPermit", "1 OR 1=1"),
        _tampered(edge["node"]["id"]),
        edge["cursor"],  # a cursor is no id
        "",
        "x" * 5000,
    ):
        body = await graphql(client, NODE, {"id": forged})
        assert body["data"]["node"] is None
        (error,) = body["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}, forged
    for forged_cursor in (
        _old_style("persons", person_id),
        base64.urlsafe_b64encode(json.dumps(["persons", 2**70]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps(["persons", "x"]).encode()).decode(),
        _tampered(edge["cursor"]),
        edge["node"]["id"],  # an id is no cursor
    ):
        body = await graphql(client, PAGE, {"after": forged_cursor})
        (error,) = body["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}, forged_cursor
    # A cursor of one connection is not accepted by another.
    body = await graphql(client, EXPIRING, {"after": edge["cursor"]})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_another_hubs_ids_are_not_accepted(policy_client: httpx.AsyncClient, estate: Estate) -> None:
    foreign = GlobalIds(Sealer(b"\x01" * 64))
    ours = global_ids(estate.settings)
    assert foreign.encode("Person", 1) != ours.encode("Person", 1)
    headers = estate.headers(CallerRole.EXIT_ENTRY, "entry-control")
    body = await graphql(policy_client, NODE, {"id": foreign.encode("Person", 1)}, headers=headers)
    assert body["data"]["node"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
