"""The hub as a federation v2 subgraph (schema/federation.py): its `_service` SDL composes with
another city graph under @theguild/federation-composition (Hive Gateway's composition), and
`_entities` answers every caller as the root fields it stands for do: the same data, the same
FORBIDDEN fields and out-of-scope refusals, the same audit records."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app import create_app
from domain.records import Agency, CallerRole
from schema import export_sdl
from tests.clock import SAFETY_NET
from tests.conftest import Estate, graphql, person_id_of, read_everything, serve
from tests.databases import execute
from tests.servers import uvicorn_serving
from tests.test_audit import records_of

CLIENTS = Path(__file__).parent / "clients"
ON_SQLITE = pytest.mark.parametrize("estate", ["sqlite"], indirect=True)

# A city's own graph, which knows residents by the hub's Person id and nothing else of them.
CITY_SDL = """
extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
type Person @key(fields: "id", resolvable: false) { id: ID! }
type Query { residentsOfDistrict(district: String!): [Person!]! }
"""

GATEWAY_ID = "6f1c4a8e-2b7d-4c1e-9a3f-5d8e7b6a4c21"  # the gateway's id for one client request
PERSON = "id name { full } nationality socialSecurityNumber workPermit { number } visas { number }"
PERMIT = "number status validTo employer { creditCode }"
EMPLOYER = "creditCode employerName: name"


@dataclass(frozen=True)
class Someone:
    global_id: str
    person_id: int
    permit_number: str
    credit_code: str


@pytest.fixture(scope="module")
async def two(client: httpx.AsyncClient, estate: Estate) -> tuple[Someone, Someone]:
    """Two persons with valid permits at different employers."""
    body = await graphql(
        client,
        "{ persons(first: 100, filter: {permitStatus: VALID}) "
        "{ edges { node { id workPermit { number employer { creditCode } } } } } }",
    )
    found: dict[str, Someone] = {}
    for edge in body["data"]["persons"]["edges"]:
        node = edge["node"]
        code = node["workPermit"]["employer"]["creditCode"]
        found.setdefault(
            code,
            Someone(
                node["id"], person_id_of(estate.settings, node["id"]), node["workPermit"]["number"], code
            ),
        )
    first, second, *_ = found.values()
    return first, second


def _representations(people: tuple[Someone, ...]) -> list[dict[str, str]]:
    return [
        rep
        for someone in people
        for rep in (
            {"__typename": "Person", "id": someone.global_id},
            {"__typename": "WorkPermit", "number": someone.permit_number},
            {"__typename": "Employer", "creditCode": someone.credit_code},
        )
    ]


def _direct_document(people: tuple[Someone, ...]) -> str:
    """The root fields the representations stand for, aliased by their index."""
    fields: list[str] = []
    for index, rep in enumerate(_representations(people)):
        if rep["__typename"] == "Person":
            fields.append(f'e{index}: person(lookup: {{id: "{rep["id"]}"}}) {{ __typename {PERSON} }}')
        elif rep["__typename"] == "WorkPermit":
            fields.append(f'e{index}: workPermit(number: "{rep["number"]}") {{ __typename {PERMIT} }}')
        else:
            fields.append(
                f'e{index}: employer(creditCode: "{rep["creditCode"]}") {{ __typename {EMPLOYER} }}'
            )
    return "{ " + " ".join(fields) + " }"


ENTITIES = (
    "query Entities($representations: [_Any!]!) { _entities(representations: $representations) "
    f"{{ __typename ... on Person {{ {PERSON} }} ... on WorkPermit {{ {PERMIT} }} "
    f"... on Employer {{ {EMPLOYER} }} }} }}"
)


def _errors(body: dict[str, Any], entities: bool) -> list[tuple[int, tuple[Any, ...], str]]:
    """(entity index, path below it, code) of every error, for either document."""
    found = []
    for error in body.get("errors", []):
        path = error["path"]
        index, rest = (path[1], path[2:]) if entities else (int(path[0][1:]), path[1:])
        found.append((index, tuple(rest), error["extensions"]["code"]))
    return sorted(found)


async def _post(http: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    response = await http.post("/graphql", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response


def _callers(first: Someone) -> Iterator[tuple[CallerRole, str | None, dict[str, Any]]]:
    yield CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration", {}
    yield CallerRole.EXIT_ENTRY, "entry-control", {}  # no permits, no employers, no insurance
    yield CallerRole.SOCIAL_INSURANCE_AGENCY, "insurance-enrollment", {}
    yield CallerRole.CARDHOLDER, None, {"person_id": first.person_id}  # the second is not theirs
    yield CallerRole.EMPLOYER, "employment", {"employer": first.credit_code}  # nor their staff
    yield CallerRole.REPORTING, None, {}


@ON_SQLITE
async def test_entities_answer_as_the_root_fields_they_stand_for_and_are_audited_alike(
    policy_client: httpx.AsyncClient, estate: Estate, two: tuple[Someone, Someone]
) -> None:
    representations = _representations(two)
    for role, purpose, bound in _callers(two[0]):
        headers = estate.headers(role, purpose, **bound)
        direct = await _post(policy_client, {"query": _direct_document(two)}, headers)
        entities = await _post(
            policy_client, {"query": ENTITIES, "variables": {"representations": representations}}, headers
        )
        direct_body, entities_body = direct.json(), entities.json()
        expected = [direct_body["data"][f"e{i}"] for i in range(len(representations))]
        assert entities_body["data"]["_entities"] == expected, role
        assert _errors(entities_body, entities=True) == _errors(direct_body, entities=False), role
        # The audit trail records the same reads of the same persons, whichever path asked.
        direct_audit = await records_of(estate.settings.audit_url, direct.headers["x-request-id"])
        entity_audit = await records_of(estate.settings.audit_url, entities.headers["x-request-id"])
        assert [(r["person_id"], r["role"], orjson.loads(r["fields"])) for r in entity_audit] == [
            (r["person_id"], r["role"], orjson.loads(r["fields"])) for r in direct_audit
        ], role
    # The parity above is not vacuous: an employer reads its own staff, and not the other person.
    employer = estate.headers(CallerRole.EMPLOYER, "employment", employer=two[0].credit_code)
    scoped = await _post(
        policy_client, {"query": ENTITIES, "variables": {"representations": representations}}, employer
    )
    found = scoped.json()["data"]["_entities"]
    assert person_id_of(estate.settings, found[0]["id"]) == two[0].person_id
    assert [found[1]["number"], found[2]["creditCode"]] == [two[0].permit_number, two[0].credit_code]
    assert found[3:] == [None, None, None]
    refusals = [e for e in scoped.json()["errors"] if e["path"][1] >= 3]
    assert [e["extensions"]["code"] for e in refusals] == ["FORBIDDEN"] * 3
    assert all("outside the caller's scope" in e["message"] for e in refusals)


@ON_SQLITE
async def test_an_entity_known_by_its_type_alone_is_audited_as_its_object(
    policy_client: httpx.AsyncClient, estate: Estate, two: tuple[Someone, Someone]
) -> None:
    headers = estate.headers(CallerRole.EXIT_ENTRY, "entry-control")
    body = {
        "query": "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
        "variables": {"r": [{"__typename": "Person", "id": two[0].global_id}]},
    }
    response = await _post(policy_client, body, headers)
    assert response.json() == {"data": {"_entities": [{"__typename": "Person"}]}}
    [record] = await records_of(estate.settings.audit_url, response.headers["x-request-id"])
    assert (record["person_id"], orjson.loads(record["fields"])) == (two[0].person_id, ["Person"])


@ON_SQLITE
@pytest.mark.parametrize(
    ("representation", "field"),
    [
        ({"__typename": "Visa", "number": "V1"}, "representations[0].__typename"),
        ({"number": "V1"}, "representations[0].__typename"),
        ({"__typename": "Person"}, "representations[0].id"),
        ({"__typename": "WorkPermit", "number": 7}, "representations[0].number"),
        ("Person", "representations[0]"),
    ],
)
async def test_a_representation_that_names_no_entity_is_a_client_error_naming_its_field(
    policy_client: httpx.AsyncClient, estate: Estate, representation: object, field: str
) -> None:
    headers = estate.headers(CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    body = {"query": ENTITIES, "variables": {"representations": [representation]}}
    answer = (await _post(policy_client, body, headers)).json()
    assert answer["data"] == {"_entities": [None]}
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith(f"{field}:")


@ON_SQLITE
async def test_the_sdl_is_for_the_roles_that_may_introspect(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    query = {"query": "{ _service { sdl } }"}
    developer = await _post(policy_client, query, estate.headers(CallerRole.INTEGRATION_DEVELOPER))
    assert developer.json()["data"]["_service"]["sdl"] + "\n" == export_sdl()
    reporting = (await _post(policy_client, query, estate.headers(CallerRole.REPORTING))).json()
    assert reporting["data"] is None
    assert [e["extensions"]["code"] for e in reporting["errors"]] == ["FORBIDDEN"]


def _composition_unavailable() -> str | None:
    if shutil.which("node") is None:
        return "Node.js is not installed (the composition test needs `node`)"
    if not (CLIENTS / "node_modules" / "@theguild" / "federation-composition").is_dir():
        return "tests/clients has no node_modules: run `npm ci --prefix tests/clients` (.ci/run does)"
    return None


async def _node(script: str, given: object) -> dict[str, Any]:
    """A script of tests/clients run with `given` as JSON on stdin; its one JSON line."""
    process = await asyncio.create_subprocess_exec(
        "node",
        str(CLIENTS / script),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(json.dumps(given).encode()), SAFETY_NET)
    assert process.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


@ON_SQLITE
async def test_the_sdl_composes_with_a_city_graph_and_the_gateways_entity_fetch_is_answered(
    policy_client: httpx.AsyncClient, estate: Estate, two: tuple[Someone, Someone]
) -> None:
    reason = _composition_unavailable()
    if reason is not None:
        pytest.skip(reason)
    gateway = estate.headers(CallerRole.INTEGRATION_DEVELOPER)
    sdl = (await _post(policy_client, {"query": "{ _service { sdl } }"}, gateway)).json()["data"]["_service"][
        "sdl"
    ]
    composed = await _node(
        "compose.mjs",
        [
            {"name": "hub", "url": "http://hub/graphql", "sdl": sdl},
            {"name": "city", "url": "http://city/graphql", "sdl": CITY_SDL},
        ],
    )
    assert composed["errors"] == []
    supergraph = composed["supergraphSdl"]
    person = next(line for line in supergraph.splitlines() if line.startswith("type Person "))
    assert '@join__type(graph: HUB, key: "id")' in person
    assert '@join__type(graph: CITY, key: "id", resolvable: false)' in person
    for entity, key in (("WorkPermit", "number"), ("Employer", "creditCode")):
        assert f'type {entity} implements Node @join__type(graph: HUB, key: "{key}")' in supergraph
    assert "residentsOfDistrict(district: String!): [Person!]!" in composed["publicSdl"]
    # What the gateway sends the hub for `residentsOfDistrict { name { full } }`: the city's
    # Person references, fetched from the hub under the desk's own token and purpose.
    desk = estate.headers(CallerRole.EXIT_ENTRY, "entry-control")
    fetch = {
        "query": "query($representations: [_Any!]!) { _entities(representations: $representations) "
        "{ ... on Person { __typename id name { full } } } }",
        "variables": {"representations": [{"__typename": "Person", "id": s.global_id} for s in two]},
    }
    answer = (await _post(policy_client, fetch, desk)).json()
    assert "errors" not in answer, answer["errors"]
    assert [p["id"] for p in answer["data"]["_entities"]] == [s.global_id for s in two]
    assert all(p["name"]["full"] for p in answer["data"]["_entities"])


@ON_SQLITE
async def test_a_query_through_a_federation_gateway_reads_the_hubs_entities_as_the_caller(
    policy_client: httpx.AsyncClient, estate: Estate, two: tuple[Someone, Someone]
) -> None:
    """The city's `residentsOfDistrict` gives Person ids; the gateway (tests/clients/gateway.mjs:
    composition, then Hive Gateway's planner and executor) fetches their names from the hub's
    `_entities` over HTTP with the desk's headers and its own request id."""
    reason = _composition_unavailable()
    if reason is not None:
        pytest.skip(reason)
    desk = estate.headers(CallerRole.EXIT_ENTRY, "entry-control")
    query = (
        '{ residentsOfDistrict(district: "Chaoyang") { id name { full } nationality socialSecurityNumber } }'
    )
    direct = {
        someone.global_id: (
            await _post(
                policy_client,
                {
                    "query": f'{{ person(lookup: {{id: "{someone.global_id}"}}) {{ name {{ full }} nationality }} }}'
                },
                desk,
            )
        ).json()["data"]["person"]
        for someone in two
    }
    sdl = (
        await _post(
            policy_client, {"query": "{ _service { sdl } }"}, estate.headers(CallerRole.INTEGRATION_DEVELOPER)
        )
    ).json()
    async with uvicorn_serving(create_app(estate.settings)) as address:
        result = await _node(
            "gateway.mjs",
            {
                "hubUrl": f"http://{address}/graphql",
                "sdl": sdl["data"]["_service"]["sdl"],
                "headers": {**desk, "X-Request-Id": GATEWAY_ID},
                "residents": [someone.global_id for someone in two],
                "query": query,
            },
        )
    assert "compositionErrors" not in result, result
    residents = result["data"]["residentsOfDistrict"]
    assert [r["id"] for r in residents] == [someone.global_id for someone in two]
    for resident in residents:
        expected = direct[resident["id"]]
        assert (resident["name"], resident["nationality"]) == (expected["name"], expected["nationality"])
        assert resident["socialSecurityNumber"] is None  # not granted to the desk, through the gateway too
    assert {e["extensions"]["code"] for e in result["errors"]} == {"FORBIDDEN"}
    assert all(e["path"][-1] == "socialSecurityNumber" for e in result["errors"])
    # The hub kept the gateway's request id: its audit records the two persons under it.
    records = await records_of(estate.settings.audit_url, GATEWAY_ID)
    assert sorted(r["person_id"] for r in records) == sorted(someone.person_id for someone in two)
    assert all(r["role"] == "EXIT_ENTRY" and r["purpose"] == "entry-control" for r in records)


@ON_SQLITE
async def test_an_entity_fetch_costs_as_many_entities_as_it_names(
    estate: Estate, two: tuple[Someone, Someone]
) -> None:
    """A gateway's fetch of many entities is counted per entity, as a page per item."""
    document = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { id nationality } } }"
    representations = [{"__typename": "Person", "id": s.global_id} for s in two] * 5  # 10 entities
    expected = 1 + 10 * 2  # _entities, then id and nationality per entity
    settings, headers = read_everything(estate.settings)
    for max_cost, refused in ((expected, False), (expected - 1, True)):
        limited = replace(settings, limits=replace(settings.limits, max_cost=max_cost))
        async with serve(limited, headers) as http:
            body = (
                await _post(http, {"query": document, "variables": {"r": representations}}, headers)
            ).json()
        if refused:
            assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COSTLY"]
        else:
            assert "errors" not in body and len(body["data"]["_entities"]) == 10


@ON_SQLITE
async def test_a_value_failing_its_check_character_is_reported_at_its_entity(
    policy_client: httpx.AsyncClient, estate: Estate, two: tuple[Someone, Someone]
) -> None:
    """The employer's credit code broken in the work-permit system: the entity still answers,
    with SOURCE_DATA_INVALID at its own item, as `employer(creditCode:)` has it at its field."""
    code = two[1].credit_code
    broken = code[:17] + ("0" if code[17] != "0" else "1")
    headers = estate.headers(CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    representations = [
        {"__typename": "Employer", "creditCode": two[0].credit_code},
        {"__typename": "Employer", "creditCode": broken},
    ]
    url = estate.settings.source_urls[Agency.WORK_PERMIT_SYSTEM]
    await execute(url, f'UPDATE "WP_XKZ" SET "TYSHXYDM" = \'{broken}\' WHERE "TYSHXYDM" = \'{code}\'')
    try:
        direct = (
            await _post(
                policy_client, {"query": f'{{ employer(creditCode: "{broken}") {{ creditCode }} }}'}, headers
            )
        ).json()
        fetched = (
            await _post(
                policy_client, {"query": ENTITIES, "variables": {"representations": representations}}, headers
            )
        ).json()
    finally:
        await execute(url, f'UPDATE "WP_XKZ" SET "TYSHXYDM" = \'{code}\' WHERE "TYSHXYDM" = \'{broken}\'')
    assert direct["data"]["employer"]["creditCode"] == broken
    assert [(e["path"], e["extensions"]["code"]) for e in direct["errors"]] == [
        (["employer"], "SOURCE_DATA_INVALID")
    ]
    assert fetched["data"]["_entities"][1]["creditCode"] == broken
    assert [(e["path"], e["extensions"]["code"]) for e in fetched["errors"]] == [
        (["_entities", 1], "SOURCE_DATA_INVALID")
    ]
