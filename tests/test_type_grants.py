"""A type is read only through a grant for it, and an argument needs the grant of what it
tests (issue 8, findings 1, 2, 6 and 10).

The matrices are generated from policy.toml: every role and purpose against every Node type by
`node(id:)`, every filter field of `persons` and every lookup identifier of `person`, and
introspection; each answers exactly as the policy says. The findings of the side-door probe are
reproduced by hand below them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLInputObjectType,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    get_introspection_query,
    get_named_type,
)

from access.policy import Policy, PolicyError, load_policy
from adapters.base import open_engine
from audit.log import AUDIT_RECORD
from domain.records import CallerRole, NotificationKind
from identity.store import HubStore
from notifications.emit import notify
from schema import build_schema
from tests.conftest import Estate, caller_headers, fresh_estate, global_ids, graphql, person_id_of, serve

SCHEMA = build_schema()._schema
POLICY: Policy = load_policy(SCHEMA)
CALLERS = sorted(POLICY.grants, key=lambda rp: (rp[0].value, rp[1] or ""))
CALLER_IDS = [f"{r.value}-{p or 'none'}" for r, p in CALLERS]
NODE_TYPES = ("Person", "WorkPermit", "Employer", "ElectronicCard", "Notification", "BenefitPayment")
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Target:
    """A person every agency knows, with an e-card and a notification, and how to reach each."""

    estate: Estate
    person_id: int
    ids: dict[str, str]  # Node type -> global id of the person's object of that type
    permit_number: str
    credit_code: str
    nationality: str
    ssn: str
    card_number: str
    residence_permit: str | None
    passport: dict[str, str]


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Estate, httpx.AsyncClient]]:
    async with fresh_estate("sqlite", tmp_path_factory.mktemp("type-grants"), persons=80, seed=5) as estate:
        async with serve(estate.settings) as http:
            yield estate, http


EVERYTHING = (
    "{ persons(first: 80) { edges { node { id nationality passports { number nationality current }"
    " workPermit { id number employer { id creditCode } } electronicCard { id status }"
    " socialSecurityNumber socialSecurityCard { number } residencePermit { number }"
    " benefitPayments(first: 1) { edges { node { id } } } } } } }"
)


@pytest.fixture(scope="module")
async def target(world: tuple[Estate, httpx.AsyncClient]) -> Target:
    estate, http = world
    read_all = replace(estate.settings, policy_path=ROOT / "tests" / "policies" / "read_everything.toml")
    async with serve(
        read_all, caller_headers(estate.settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    ) as reader:
        body = await graphql(reader, EVERYTHING)
    assert "errors" not in body, body["errors"]
    node = next(
        e["node"]
        for e in body["data"]["persons"]["edges"]
        if e["node"]["electronicCard"]
        and e["node"]["socialSecurityCard"]
        and e["node"]["workPermit"]
        and e["node"]["benefitPayments"]["edges"]
    )
    person_id = person_id_of(estate.settings, node["id"])
    store = HubStore.open(estate.settings.store_url)
    try:
        notice = await notify(store, person_id, NotificationKind.NEWS, "The side-door probe's notice.")
    finally:
        await store.close()
    assert notice is not None
    passport = next(p for p in node["passports"] if p["current"])
    return Target(
        estate,
        person_id,
        {
            "Person": node["id"],
            "WorkPermit": node["workPermit"]["id"],
            "Employer": node["workPermit"]["employer"]["id"],
            "ElectronicCard": node["electronicCard"]["id"],
            "Notification": global_ids(estate.settings).encode("Notification", notice.key),
            "BenefitPayment": node["benefitPayments"]["edges"][0]["node"]["id"],
        },
        node["workPermit"]["number"],
        node["workPermit"]["employer"]["creditCode"],
        node["nationality"],
        node["socialSecurityNumber"],
        node["socialSecurityCard"]["number"],
        node["residencePermit"]["number"] if node["residencePermit"] else None,
        {"number": passport["number"], "nationality": passport["nationality"]},
    )


def _headers(target: Target, role: CallerRole, purpose: str | None, **extra: str) -> dict[str, str]:
    bound: dict[str, Any] = {}
    if role is CallerRole.CARDHOLDER:
        bound["person_id"] = target.person_id
    if role is CallerRole.EMPLOYER:
        bound["employer"] = target.credit_code
    return {**target.estate.headers(role, purpose, **bound), **extra}


def _non_null_fields(type_name: str) -> str:
    """A selection of every non-null scalar field of the type: what used to come with any parent."""
    graphql_type = SCHEMA.type_map[type_name]
    assert isinstance(graphql_type, GraphQLObjectType)
    return " ".join(
        name
        for name, field in graphql_type.fields.items()
        if isinstance(field.type, GraphQLNonNull)
        and isinstance(get_named_type(field.type), GraphQLLeafType)
        and not isinstance(field.type.of_type, GraphQLList)
    )


def _forbidden_paths(body: dict[str, Any]) -> list[tuple[str | int, ...]]:
    return [tuple(e["path"]) for e in body.get("errors", []) if e["extensions"]["code"] == "FORBIDDEN"]


# ---------------------------------------------------------------- node(id:), every role x every type


@pytest.mark.parametrize("type_name", NODE_TYPES)
@pytest.mark.parametrize(("role", "purpose"), CALLERS, ids=CALLER_IDS)
async def test_node_answers_only_types_the_grant_names(
    world: tuple[Estate, httpx.AsyncClient],
    target: Target,
    role: CallerRole,
    purpose: str | None,
    type_name: str,
) -> None:
    _, http = world
    grant = POLICY.grant(role, purpose)
    query = f"query($id: ID!) {{ node(id: $id) {{ __typename ... on {type_name} {{ {_non_null_fields(type_name)} }} }} }}"
    body = await graphql(http, query, {"id": target.ids[type_name]}, headers=_headers(target, role, purpose))
    granted = ("Query", "node") in grant.readable and POLICY.reaches(grant, type_name)
    # A cardholder's scope is their own records; an employer at the root is only the token's own.
    in_scope = not (role is CallerRole.CARDHOLDER and type_name == "Employer")
    granted = granted and in_scope
    if granted:
        assert "errors" not in body, body["errors"]
        assert body["data"]["node"]["__typename"] == type_name
    else:
        assert body["data"]["node"] is None
        assert _forbidden_paths(body) == [("node",)]


# ---------------------------------------------------------------- filters and lookups


QUERY = SCHEMA.query_type
assert QUERY is not None
FILTER_TYPE = QUERY.fields["persons"].args["filter"].type
LOOKUP_ARGUMENT = QUERY.fields["person"].args["lookup"].type
assert isinstance(LOOKUP_ARGUMENT, GraphQLNonNull)
LOOKUP_TYPE = LOOKUP_ARGUMENT.of_type
assert isinstance(FILTER_TYPE, GraphQLInputObjectType) and isinstance(LOOKUP_TYPE, GraphQLInputObjectType)


def _filter_value(target: Target, name: str) -> str:
    return {
        "nationality": f'"{target.nationality}"',
        "permitStatus": "VALID",
        "category": "A",
        "employerCreditCode": f'"{target.credit_code}"',
        "workDistrict": '"110105"',
        "insured": "true",
    }[name]


def _lookup_value(target: Target, name: str) -> str | None:
    passport = f'{{number: "{target.passport["number"]}", nationality: "{target.passport["nationality"]}"}}'
    return {
        "id": f'"{target.ids["Person"]}"',
        "workPermitNumber": f'"{target.permit_number}"',
        "socialSecurityNumber": f'"{target.ssn}"',
        "cardNumber": f'"{target.card_number}"',
        "passport": passport,
        "residencePermitNumber": f'"{target.residence_permit}"' if target.residence_permit else None,
    }[name]


def _agency_statements(body: dict[str, Any]) -> int:
    sources = body.get("extensions", {}).get("sources", {})
    return sum(s["statements"] for name, s in sources.items() if name not in ("HUB_STORE", "AUDIT"))


async def _baseline(http: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """The statements a request of this caller runs before any field (an employer's scope)."""
    return _agency_statements(await graphql(http, "{ __typename }", headers=headers))


@pytest.mark.parametrize("name", sorted(FILTER_TYPE.fields))
@pytest.mark.parametrize(("role", "purpose"), CALLERS, ids=CALLER_IDS)
async def test_a_filter_needs_the_grant_of_what_it_tests(
    world: tuple[Estate, httpx.AsyncClient], target: Target, role: CallerRole, purpose: str | None, name: str
) -> None:
    _, http = world
    grant = POLICY.grant(role, purpose)
    query = f"{{ persons(filter: {{{name}: {_filter_value(target, name)}}}) {{ totalCount }} }}"
    headers = _headers(target, role, purpose, **{"X-Hub-Trace": "1"})
    body = await graphql(http, query, headers=headers)
    if ("Query", "persons") not in grant.readable:
        assert _forbidden_paths(body) == [("persons",)]
        return
    if f"Query.persons.filter.{name}" in grant.arguments:
        assert "errors" not in body, body["errors"]
        assert isinstance(body["data"]["persons"]["totalCount"], int)
        return
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "FORBIDDEN", "field": f"filter.{name}"}
    assert error["path"] == ["persons"]
    assert _agency_statements(body) == await _baseline(http, headers), "refused before any source is asked"


@pytest.mark.parametrize("name", sorted(LOOKUP_TYPE.fields))
@pytest.mark.parametrize(("role", "purpose"), CALLERS, ids=CALLER_IDS)
async def test_a_lookup_needs_the_grant_of_its_identifier_or_to_be_presentable(
    world: tuple[Estate, httpx.AsyncClient], target: Target, role: CallerRole, purpose: str | None, name: str
) -> None:
    _, http = world
    value = _lookup_value(target, name)
    if value is None:
        pytest.skip("the target person has no residence permit in this estate")
    grant = POLICY.grant(role, purpose)
    query = f"{{ person(lookup: {{{name}: {value}}}) {{ id }} }}"
    headers = _headers(target, role, purpose, **{"X-Hub-Trace": "1"})
    body = await graphql(http, query, headers=headers)
    if ("Query", "person") not in grant.readable:
        assert _forbidden_paths(body) == [("person",)]
    elif f"Query.person.lookup.{name}" in grant.arguments:
        assert "errors" not in body, body["errors"]
        assert body["data"]["person"] == {"id": target.ids["Person"]}
    else:
        assert body["data"]["person"] is None
        (error,) = body["errors"]
        assert error["extensions"] == {"code": "FORBIDDEN", "field": f"lookup.{name}"}
        assert _agency_statements(body) == await _baseline(http, headers)


def test_the_policy_says_what_each_lookup_and_filter_tests() -> None:
    """Every filter and lookup field is declared (default deny); presentable ones are few."""
    declared = {path.rsplit(".", 1)[1] for path in POLICY.tests if path.startswith("Query.persons.filter.")}
    assert declared == set(FILTER_TYPE.fields)
    declared = {path.rsplit(".", 1)[1] for path in POLICY.tests if path.startswith("Query.person.lookup.")}
    assert declared == set(LOOKUP_TYPE.fields)
    exit_entry = POLICY.grant(CallerRole.EXIT_ENTRY, "entry-control")
    assert "Query.person.lookup.workPermitNumber" in exit_entry.arguments  # presentable at the desk
    assert "Query.person.lookup.socialSecurityNumber" not in exit_entry.arguments
    beijing_pass = POLICY.grant(CallerRole.BEIJING_PASS, "benefit-payment")
    assert not {"Query.persons.filter.insured", "Query.persons.filter.permitStatus"} & beijing_pass.arguments


def _write_policy(tmp_path: Path, edit: str, replacement: str) -> Path:
    text = (ROOT / "policy.toml").read_text()
    assert edit in text
    path = tmp_path / "policy.toml"
    path.write_text(text.replace(edit, replacement))
    return path


def test_a_policy_that_grants_a_field_but_not_its_type_does_not_load(tmp_path: Path) -> None:
    path = _write_policy(tmp_path, '"Person.workPermit", "WorkPermit",', '"Person.workPermit",')
    with pytest.raises(PolicyError, match="grants Person.workPermit but not its type WorkPermit"):
        load_policy(SCHEMA, path)


def test_a_policy_that_leaves_a_filter_undeclared_does_not_load(tmp_path: Path) -> None:
    path = _write_policy(
        tmp_path, 'insured = ["Person.insuranceParticipations", "InsuranceParticipation.status"]\n', ""
    )
    with pytest.raises(PolicyError, match="does not say what PersonFilter.insured tests"):
        load_policy(SCHEMA, path)


# ---------------------------------------------------------------- the probe's findings


async def test_beijing_pass_and_the_data_protection_officer_read_no_permit_or_notification_by_node(
    world: tuple[Estate, httpx.AsyncClient], target: Target
) -> None:
    _, http = world
    query = (
        "query($id: ID!) { node(id: $id) { ... on WorkPermit { number status category procedure }"
        " ... on Notification { kind at message } ... on ElectronicCard { signing: status serviceLevel } } }"
    )
    for role, purpose in (
        (CallerRole.BEIJING_PASS, "benefit-payment"),
        (CallerRole.DATA_PROTECTION_OFFICER, "complaint-handling"),
    ):
        for type_name in ("WorkPermit", "Notification", "ElectronicCard"):
            body = await graphql(
                http, query, {"id": target.ids[type_name]}, headers=_headers(target, role, purpose)
            )
            assert body["data"]["node"] is None, (role, type_name)
            assert target.permit_number not in str(body) and "probe" not in str(body)


async def _audit_records(estate: Estate, request_id: str) -> list[Any]:
    engine = open_engine(estate.settings.audit_url)
    try:
        async with engine.connect() as conn:
            statement = AUDIT_RECORD.select().where(AUDIT_RECORD.c.request_id == request_id)
            return list((await conn.execute(statement)).all())
    finally:
        await engine.dispose()


async def _post(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], headers: dict[str, str]
) -> tuple[dict[str, Any], str]:
    response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body, response.headers["x-request-id"]


async def test_a_read_by_node_is_audited_under_the_concrete_type(
    world: tuple[Estate, httpx.AsyncClient], target: Target
) -> None:
    estate, http = world
    headers = _headers(target, CallerRole.CARDHOLDER, None)
    query = "query($id: ID!) { node(id: $id) { ... on Notification { kind message } ... on WorkPermit { number } } }"
    for type_name, fields in (
        ("Notification", ["Notification.kind", "Notification.message"]),
        ("WorkPermit", ["WorkPermit.number"]),
    ):
        body, request_id = await _post(http, query, {"id": target.ids[type_name]}, headers)
        assert "errors" not in body, body["errors"]
        (record,) = await _audit_records(estate, request_id)
        assert record.person_id == target.person_id
        assert sorted(json.loads(record.fields)) == fields


async def test_an_existence_check_is_audited(world: tuple[Estate, httpx.AsyncClient], target: Target) -> None:
    estate, http = world
    headers = _headers(target, CallerRole.EXIT_ENTRY, "entry-control")
    for query, fields in (
        ("query($id: ID!) { person(lookup: {id: $id}) { __typename } }", ["Person"]),
        ("query($id: ID!) { node(id: $id) { __typename } }", ["Person"]),
        ("query($id: ID!) { person(lookup: {id: $id}) { visas { __typename } } }", ["Person.visas"]),
    ):
        body, request_id = await _post(http, query, {"id": target.ids["Person"]}, headers)
        assert "errors" not in body, body["errors"]
        (record,) = await _audit_records(estate, request_id)
        assert record.person_id == target.person_id
        assert json.loads(record.fields) == fields, query


# ---------------------------------------------------------------- introspection


@pytest.mark.parametrize(("role", "purpose"), CALLERS, ids=CALLER_IDS)
async def test_only_those_who_develop_against_the_graph_may_introspect(
    world: tuple[Estate, httpx.AsyncClient], target: Target, role: CallerRole, purpose: str | None
) -> None:
    _, http = world
    allowed = POLICY.grant(role, purpose).introspect
    assert allowed is (role not in (CallerRole.CARDHOLDER, CallerRole.EMPLOYER, CallerRole.REPORTING))
    headers = _headers(target, role, purpose)
    for query in (get_introspection_query(), '{ __type(name: "Person") { name } }'):
        body = await graphql(http, query, headers=headers)
        if allowed:
            assert "errors" not in body, body["errors"]
        else:
            assert body["data"] is None
            assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    typename = await graphql(http, "{ __typename }", headers=headers)
    assert typename["data"] == {"__typename": "Query"}
