"""Who may see what, under the real policy.toml.

The matrix is generated from the policy file: for every role and purpose, one query of every
contract Query field selecting everything below it; the fields the grant names answer, every
other guarded field is null with FORBIDDEN at its path. A hand-written list of must-deny
cases from DOMAIN.md's tables catches a wrong policy too."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from graphql import (
    build_schema as parse_sdl,
)

from access.disclosure import BASE
from access.policy import Grant, Policy, PolicyError, load_policy
from app import create_app
from domain.records import CallerRole
from schema import build_schema
from tests.conftest import AS_OF, Estate, global_ids, graphql, person_id_of
from tests.legacy import statistics_dimensions

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT.parent / "shared" / "contract" / "schema-contract.graphql"
SCHEMA: GraphQLSchema = build_schema()._schema


def _query_type() -> GraphQLObjectType:
    query = SCHEMA.query_type
    assert query is not None
    return query


QUERY = _query_type()
POLICY: Policy = load_policy(SCHEMA)
MAX_DEPTH = 4


def _contract_query_fields() -> list[str]:
    if CONTRACT.exists():
        contract = parse_sdl(CONTRACT.read_text())
        return sorted(contract.query_type.fields) if contract.query_type else []
    return sorted(f for f in QUERY.fields if f != "accessGrants")


CALLERS = sorted(
    {(role, purpose) for role, purpose in POLICY.grants}, key=lambda rp: (rp[0].value, rp[1] or "")
)


@dataclass
class Target:
    """A person every agency knows, and the identifiers to reach them by."""

    person_id: int
    global_id: str
    permit_number: str
    credit_code: str


@pytest.fixture(scope="module")
async def target(client: httpx.AsyncClient, estate: Estate) -> Target:
    body = await graphql(
        client,
        "{ persons(first: 100, filter: {permitStatus: VALID}) { edges { node { id identityLinks { agency } workPermit { number employer { creditCode } } } } } }",
    )
    node = next(
        e["node"]
        for e in body["data"]["persons"]["edges"]
        if len({ln["agency"] for ln in e["node"]["identityLinks"]}) == 5
    )
    person_id = person_id_of(estate.settings, node["id"])
    return Target(
        person_id, node["id"], node["workPermit"]["number"], node["workPermit"]["employer"]["creditCode"]
    )


def _arguments(field: str, target: Target, grant: Grant) -> str:
    """Arguments that reach the target person, of those the grant may give (filters and lookups
    it may not give are the argument matrix's: tests/test_type_grants.py)."""
    by_permit = "Query.person.lookup.workPermitNumber" in grant.arguments
    by_employer = "Query.persons.filter.employerCreditCode" in grant.arguments
    return {
        "node": f'(id: "{target.global_id}")',
        "person": f'(lookup: {{workPermitNumber: "{target.permit_number}"}})'
        if by_permit
        else f'(lookup: {{id: "{target.global_id}"}})',
        "persons": f'(first: 2, filter: {{employerCreditCode: "{target.credit_code}"}})'
        if by_employer
        else "(first: 2)",
        "workPermit": f'(number: "{target.permit_number}")',
        "employer": f'(creditCode: "{target.credit_code}")',
        "verifyWorkPermit": f'(input: {{workPermitNumber: "{target.permit_number}"}})',
        "workforceStatistics": "(groupBy: [NATIONALITY])",
        "expiringWorkPermits": "(withinDays: 365, first: 2)",
    }.get(field, "")


def _selection(
    type_: Any, path: tuple[str, ...], registry: dict[tuple[str, ...], tuple[str, str]], depth: int
) -> str:
    named = get_named_type(type_)
    if isinstance(named, GraphQLInterfaceType):
        return "{ ... on Person " + _selection(SCHEMA.type_map["Person"], path, registry, depth) + " }"
    if not isinstance(named, GraphQLObjectType):
        return ""
    parts = []
    for name, definition in named.fields.items():
        child = get_named_type(definition.type)
        is_object = isinstance(child, GraphQLObjectType | GraphQLInterfaceType)
        if is_object and depth >= MAX_DEPTH:
            continue
        if name in ("holder", "subject") or (
            named.name == "Employer" and name == "workPermits" and depth > 1
        ):
            continue  # back-references: reached again from their own roots
        inner = _selection(definition.type, (*path, name), registry, depth + 1) if is_object else ""
        if is_object and not inner:
            continue
        registry[(*path, name)] = (named.name, name)
        arguments = "(first: 2)" if "first" in definition.args else ""
        parts.append(f"{name}{arguments} {inner}".strip())
    return "{ " + " ".join(parts) + " }" if parts else ""


def _root_query(
    field: str, target: Target, grant: Grant
) -> tuple[str, dict[tuple[str, ...], tuple[str, str]]]:
    registry: dict[tuple[str, ...], tuple[str, str]] = {(field,): ("Query", field)}
    definition = QUERY.fields[field]
    inner = _selection(definition.type, (field,), registry, 1)
    return "{ " + f"{field}{_arguments(field, target, grant)} {inner}" + " }", registry


def _values_at(data: Any, path: tuple[str, ...]) -> Iterator[Any]:
    """Every value at a field path, stepping through lists."""
    if not path:
        yield data
        return
    if isinstance(data, list):
        for item in data:
            yield from _values_at(item, path)
    elif isinstance(data, dict) and path[0] in data:
        yield from _values_at(data[path[0]], path[1:])


def _headers(estate: Estate, role: CallerRole, purpose: str | None, target: Target) -> dict[str, str]:
    bound: dict[str, Any] = {}
    if role is CallerRole.CARDHOLDER:
        bound["person_id"] = target.person_id
    if role is CallerRole.EMPLOYER:
        bound["employer"] = target.credit_code
    return estate.headers(role, purpose, **bound)


@pytest.mark.parametrize("field", _contract_query_fields())
@pytest.mark.parametrize(("role", "purpose"), CALLERS, ids=[f"{r.value}-{p or 'none'}" for r, p in CALLERS])
async def test_matrix_every_field_answers_exactly_as_granted(
    policy_client: httpx.AsyncClient,
    estate: Estate,
    target: Target,
    role: CallerRole,
    purpose: str | None,
    field: str,
) -> None:
    grant = POLICY.grant(role, purpose)
    query, registry = _root_query(field, target, grant)
    body = await graphql(policy_client, query, headers=_headers(estate, role, purpose, target))
    errors = body.get("errors", [])
    assert all(e.get("extensions", {}).get("code") in {"FORBIDDEN", "NOT_AVAILABLE"} for e in errors), errors
    forbidden = {
        tuple(p for p in e["path"] if isinstance(p, str))
        for e in errors
        if e["extensions"]["code"] == "FORBIDDEN"
    }
    expected: set[tuple[str, ...]] = set()
    data = body.get("data") or {}
    for path, key in registry.items():
        if key not in POLICY.guarded or key in grant.readable:
            continue
        parent = path[:-1]
        if not parent or any(isinstance(v, dict) for v in _values_at(data, parent)):
            expected.add(path)
    assert forbidden == expected
    # Every granted field that was reached answered without a FORBIDDEN error.
    granted_reached = {
        p for p, k in registry.items() if k in grant.readable and any(True for _ in _values_at(data, p))
    }
    assert not (granted_reached & forbidden)
    if (("Query", field)) in grant.readable and not isinstance(QUERY.fields[field].type, GraphQLList):
        assert data.get(field) is not None or field in ("me",), f"{role.value} should reach {field}"


# DOMAIN.md's tables, by hand: each line must be FORBIDDEN for that caller.
MUST_DENY = [
    # A lookup or filter tests a fact: it needs the grant to read that fact.
    (
        CallerRole.BEIJING_PASS,
        "benefit-payment",
        "{ person(lookup: {workPermitNumber: $number}) { id } }",
        ("person",),
    ),
    (
        CallerRole.EXIT_ENTRY,
        "entry-control",
        '{ person(lookup: {socialSecurityNumber: "FRA110101900101019"}) { id } }',
        ("person",),
    ),
    (
        CallerRole.DATA_PROTECTION_OFFICER,
        "complaint-handling",
        "{ person(lookup: {workPermitNumber: $number}) { id } }",
        ("person",),
    ),
    (
        CallerRole.BEIJING_PASS,
        "benefit-payment",
        "{ persons(filter: {insured: true}) { totalCount } }",
        ("persons",),
    ),
    (
        CallerRole.VISA_AUTHORITY,
        "visa-application",
        "{ persons(filter: {permitStatus: VALID}) { totalCount } }",
        ("persons",),
    ),
    (
        CallerRole.DATA_PROTECTION_OFFICER,
        "complaint-handling",
        "{ persons(filter: {category: A}) { totalCount } }",
        ("persons",),
    ),
    (
        CallerRole.EXIT_ENTRY,
        "entry-control",
        '{ persons(filter: {employerCreditCode: "91110000600037341L"}) { totalCount } }',
        ("persons",),
    ),
    (
        CallerRole.BEIJING_PASS,
        "benefit-payment",
        "{ person(lookup: {id: $id}) { workPermit { number } } }",
        ("person", "workPermit"),
    ),
    (
        CallerRole.BEIJING_PASS,
        "benefit-payment",
        "{ person(lookup: {id: $id}) { socialSecurityCard { workPermitNumber } } }",
        ("person", "socialSecurityCard", "workPermitNumber"),
    ),
    (
        CallerRole.BEIJING_PASS,
        "benefit-payment",
        "{ workPermit(number: $number) { number } }",
        ("workPermit",),
    ),
    (
        CallerRole.VISA_AUTHORITY,
        "visa-application",
        "{ person(lookup: {id: $id}) { insuranceParticipations { type } } }",
        ("person", "insuranceParticipations"),
    ),
    (
        CallerRole.VISA_AUTHORITY,
        "visa-application",
        "{ person(lookup: {id: $id}) { entries { edges { cursor } } } }",
        ("person", "entries"),
    ),
    (
        CallerRole.EXIT_ENTRY,
        "entry-control",
        "{ person(lookup: {workPermitNumber: $number}) { benefitPayments { edges { cursor } } } }",
        ("person", "benefitPayments"),
    ),
    (
        CallerRole.EXIT_ENTRY,
        "entry-control",
        "{ person(lookup: {workPermitNumber: $number}) { socialSecurityNumber } }",
        ("person", "socialSecurityNumber"),
    ),
    (
        CallerRole.SOCIAL_INSURANCE_AGENCY,
        "insurance-enrollment",
        "{ person(lookup: {workPermitNumber: $number}) { visas { number } } }",
        ("person", "visas"),
    ),
    (
        CallerRole.SOCIAL_INSURANCE_AGENCY,
        "insurance-enrollment",
        "{ workPermit(number: $number) { number } }",
        ("workPermit",),
    ),
    (
        CallerRole.CARD_SERVICE,
        "card-administration",
        "{ person(lookup: {workPermitNumber: $number}) { workPermit { validTo } } }",
        ("person", "workPermit", "validTo"),
    ),
    (
        CallerRole.CARD_SERVICE,
        "card-administration",
        "{ person(lookup: {workPermitNumber: $number}) { residencePermit { number } } }",
        ("person", "residencePermit"),
    ),
    (
        CallerRole.WORK_PERMIT_AUTHORITY,
        "permit-administration",
        "{ person(lookup: {workPermitNumber: $number}) { visas { number } } }",
        ("person", "visas"),
    ),
    (
        CallerRole.WORK_PERMIT_AUTHORITY,
        "permit-administration",
        "{ person(lookup: {workPermitNumber: $number}) { socialSecurityCard { validTo } } }",
        ("person", "socialSecurityCard", "validTo"),
    ),
    (
        CallerRole.DATA_PROTECTION_OFFICER,
        "complaint-handling",
        "{ person(lookup: {id: $id}) { workPermit { number } } }",
        ("person", "workPermit"),
    ),
    (
        CallerRole.DATA_PROTECTION_OFFICER,
        "complaint-handling",
        "{ workforceStatistics(groupBy: []) { count } }",
        ("workforceStatistics",),
    ),
    (CallerRole.REPORTING, None, "{ persons { totalCount } }", ("persons",)),
    (CallerRole.REPORTING, None, "{ person(lookup: {workPermitNumber: $number}) { id } }", ("person",)),
    (
        CallerRole.REPORTING,
        None,
        "{ expiringWorkPermits(withinDays: 30) { totalCount } }",
        ("expiringWorkPermits",),
    ),
    (CallerRole.CARDHOLDER, None, "{ persons { totalCount } }", ("persons",)),
    (CallerRole.CARDHOLDER, None, "{ person(lookup: {workPermitNumber: $number}) { id } }", ("person",)),
    (
        CallerRole.CARDHOLDER,
        None,
        "{ me { workPermit { employer { workPermits { totalCount } } } } }",
        ("me", "workPermit", "employer", "workPermits"),
    ),
    (
        CallerRole.EMPLOYER,
        "employment",
        "{ person(lookup: {workPermitNumber: $number}) { visas { number } } }",
        ("person", "visas"),
    ),
    (
        CallerRole.EMPLOYER,
        "employment",
        "{ workforceStatistics(groupBy: []) { count } }",
        ("workforceStatistics",),
    ),
]


@pytest.mark.parametrize(("role", "purpose", "query", "path"), MUST_DENY)
async def test_must_deny(
    policy_client: httpx.AsyncClient,
    estate: Estate,
    target: Target,
    role: CallerRole,
    purpose: str | None,
    query: str,
    path: tuple[str, ...],
) -> None:
    declared = [f"${n}: {t}" for n, t in (("number", "String!"), ("id", "ID!")) if f"${n}" in query]
    document = f"query({', '.join(declared)}) " + query if declared else query
    variables = {"number": target.permit_number, "id": target.global_id}
    variables = {name: value for name, value in variables.items() if f"${name}" in query}
    body = await graphql(policy_client, document, variables, headers=_headers(estate, role, purpose, target))
    forbidden = [e for e in body.get("errors", []) if e["extensions"]["code"] == "FORBIDDEN"]
    assert [tuple(p for p in e["path"] if isinstance(p, str)) for e in forbidden] == [path]


async def test_errors_come_in_the_documents_order_whatever_settles_first(
    policy_client: httpx.AsyncClient, estate: Estate, target: Target
) -> None:
    # The holder's denied fields are reached only after loaders answer, the access log's at
    # once: graphql-core would list the later field's error first.
    document = """query($number: String!) { workPermit(number: $number) {
        holder { electronicCard { status } socialSecurityNumber }
        number
        holder { notifications(first: 1) { edges { cursor } } }
    } person(lookup: {workPermitNumber: $number}) { accessLog(first: 1) { edges { cursor } } } }"""
    headers = _headers(estate, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration", target)
    body = await graphql(policy_client, document, {"number": target.permit_number}, headers=headers)
    located = [(e["locations"][0]["line"], e["locations"][0]["column"]) for e in body["errors"]]
    assert [e["path"][-1] for e in body["errors"]] == [
        "electronicCard",
        "socialSecurityNumber",
        "notifications",
        "accessLog",
    ]
    assert located == sorted(located)


async def test_a_caller_can_ask_what_it_may_read(policy_client: httpx.AsyncClient, estate: Estate) -> None:
    body = await graphql(
        policy_client,
        "{ accessGrants { role purpose readable mutations } }",
        headers=estate.headers(CallerRole.BEIJING_PASS, "benefit-payment"),
    )
    grants = body["data"]["accessGrants"]
    assert grants["role"] == "BEIJING_PASS" and grants["purpose"] == "benefit-payment"
    assert "Person.benefitPayments" in grants["readable"]
    assert "SocialSecurityCard.workPermitNumber" not in grants["readable"]
    assert grants["readable"] == POLICY.grant(CallerRole.BEIJING_PASS, "benefit-payment").names()


# ---------------------------------------------------------------- scope


async def _other_person(client: httpx.AsyncClient, target: Target) -> dict[str, Any]:
    body = await graphql(
        client,
        "{ persons(first: 50, filter: {permitStatus: VALID}) { edges { node { id workPermit { id number employer { creditCode } } electronicCard { id } } } } }",
    )
    return next(
        e["node"]
        for e in body["data"]["persons"]["edges"]
        if e["node"]["id"] != target.global_id
        and e["node"]["electronicCard"]
        and e["node"]["workPermit"]["employer"]["creditCode"] != target.credit_code
    )


async def test_a_cardholder_reaches_no_one_else_by_any_path(
    client: httpx.AsyncClient, policy_client: httpx.AsyncClient, estate: Estate, target: Target
) -> None:
    other = await _other_person(client, target)
    headers = _headers(estate, CallerRole.CARDHOLDER, None, target)
    me = await graphql(policy_client, "{ me { id } }", headers=headers)
    assert me["data"]["me"]["id"] == target.global_id
    for global_id in (other["id"], other["workPermit"]["id"], other["electronicCard"]["id"]):
        body = await graphql(
            policy_client, "query($id: ID!) { node(id: $id) { id } }", {"id": global_id}, headers=headers
        )
        assert body["data"]["node"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    employer = await graphql(
        policy_client,
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": global_ids(estate.settings).encode("Employer", target.credit_code)},
        headers=headers,
    )
    assert employer["data"]["node"] is None
    for query in (
        f'{{ workPermit(number: "{other["workPermit"]["number"]}") {{ number }} }}',
        f'{{ verifyWorkPermit(input: {{workPermitNumber: "{other["workPermit"]["number"]}"}}) {{ holderName }} }}',
        "{ persons { edges { node { id } } } }",
        "{ expiringWorkPermits(withinDays: 365) { edges { node { number } } } }",
        "{ me { workPermit { employer { workPermits { edges { node { holder { id } } } } } } } }",
    ):
        body = await graphql(policy_client, query, headers=headers)
        assert other["id"] not in str(body.get("data")) and other["workPermit"]["number"] not in str(
            body.get("data")
        )
        assert any(e["extensions"]["code"] == "FORBIDDEN" for e in body["errors"])


async def test_an_employer_reaches_only_its_staff(
    client: httpx.AsyncClient, policy_client: httpx.AsyncClient, estate: Estate, target: Target
) -> None:
    headers = _headers(estate, CallerRole.EMPLOYER, "employment", target)
    staff = await graphql(
        policy_client,
        "{ persons(first: 100) { totalCount edges { node { workPermit { employer { creditCode } } insuranceParticipations { employer { creditCode } } } } } }",
        headers=headers,
    )
    edges = staff["data"]["persons"]["edges"]
    assert edges and staff["data"]["persons"]["totalCount"] == len(edges)
    for edge in edges:
        node = edge["node"]
        codes = {node["workPermit"]["employer"]["creditCode"]} | {
            p["employer"]["creditCode"] for p in node["insuranceParticipations"] or [] if p["employer"]
        }
        assert target.credit_code in codes
    other = await _other_person(client, target)
    outside = await graphql(
        policy_client,
        "query($n: String!) { workPermit(number: $n) { number } person(lookup: {workPermitNumber: $n}) { id } }",
        {"n": other["workPermit"]["number"]},
        headers=headers,
    )
    assert outside["data"] == {"workPermit": None, "person": None}
    assert {e["extensions"]["code"] for e in outside["errors"]} == {"FORBIDDEN"}
    expiring = await graphql(
        policy_client,
        "{ expiringWorkPermits(withinDays: 365, first: 100) { edges { node { employer { creditCode } } } } }",
        headers=headers,
    )
    assert {
        e["node"]["employer"]["creditCode"] for e in expiring["data"]["expiringWorkPermits"]["edges"]
    } <= {target.credit_code}


# ---------------------------------------------------------------- reporting


DIMENSIONS = ["NATIONALITY", "TALENT_CATEGORY", "PERMIT_STATUS", "WORK_DISTRICT", "EMPLOYER", "INSURED"]
STATISTICS = "query($g: [StatisticsDimension!]!, $f: PersonFilter) { workforceStatistics(groupBy: $g, filter: $f) { keys { dimension value } count suppressed } }"


async def _statistics(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    group_by: list[str],
    filter_: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    body = await graphql(client, STATISTICS, {"g": group_by, "f": filter_}, headers=headers)
    assert "errors" not in body, body["errors"]
    rows: list[dict[str, Any]] = body["data"]["workforceStatistics"]
    return rows


def _shown(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], int]:
    assert all(r["suppressed"] is False for r in rows)
    return {tuple(k["value"] for k in r["keys"]): r["count"] for r in rows}


async def test_reporting_counts_are_multiples_of_five_within_four_of_the_legacy_counts(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    headers = estate.headers(CallerRole.REPORTING)
    persons = await statistics_dimensions(estate.settings, AS_OF)
    for size in (0, 1, 2):
        for grouping in itertools.combinations(DIMENSIONS, size):
            truth = Counter(tuple(p[d] for d in grouping) for p in persons)
            shown = _shown(await _statistics(policy_client, headers, list(grouping)))
            for cell, count in shown.items():
                assert count > 0 and count % BASE == 0, (grouping, cell, count)
                assert abs(count - truth[cell]) < BASE, (grouping, cell, count, truth[cell])
            # Only a cell of 1 to 4 persons may round to 0, and then it is not listed.
            assert all(n < BASE for cell, n in truth.items() if cell not in shown), grouping


async def test_a_filter_or_another_order_shows_a_cell_as_the_grouped_table_does(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    headers = estate.headers(CallerRole.REPORTING)
    by_both = _shown(await _statistics(policy_client, headers, ["NATIONALITY", "TALENT_CATEGORY"]))
    reordered = _shown(await _statistics(policy_client, headers, ["TALENT_CATEGORY", "NATIONALITY"]))
    assert reordered == {(category, nationality): n for (nationality, category), n in by_both.items()}
    for nationality in sorted({nationality for nationality, _ in by_both})[:8]:
        sliced = _shown(
            await _statistics(policy_client, headers, ["TALENT_CATEGORY"], {"nationality": nationality})
        )
        assert sliced == {(c,): n for (shown_in, c), n in by_both.items() if shown_in == nationality}


# ---------------------------------------------------------------- the policy file itself


def test_a_grant_naming_a_missing_field_stops_the_start(tmp_path: Path, estate: Estate) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        (ROOT / "policy.toml").read_text()
        + '\n[[grant]]\nrole = "VISA_AUTHORITY"\npurposes = ["visa-application"]\n'
        + 'read = ["Person.favouriteColour", "Pet.*", "@no-such-set"]\n'
    )
    with pytest.raises(PolicyError) as refused:
        create_app(replace(estate.settings, policy_path=policy))
    message = str(refused.value)
    assert "'Person.favouriteColour' names no field of Person" in message
    assert "'Pet.*' names no object type" in message
    assert "no field set '@no-such-set'" in message


def test_every_role_of_domain_has_a_grant_and_its_purposes() -> None:
    assert {role for role, _ in POLICY.grants} == set(CallerRole)
    assert POLICY.purposes_of(CallerRole.EXIT_ENTRY) == [
        "entry-control",
        "investigation",
        "residence-application",
    ]
    assert [p.name for p in POLICY.purposes.values() if p.investigation] == ["investigation"]
