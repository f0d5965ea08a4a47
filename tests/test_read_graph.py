"""The read graph end to end: through HTTP, on a seeded estate, checked against the legacy
databases read directly."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from tests.conftest import AS_OF, Estate, graphql
from tests.legacy import insured_applicants, legacy_view

PERSON_IDS = "query($first: Int, $after: String, $filter: PersonFilter) { persons(first: $first, after: $after, filter: $filter) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id nationality workPermit { number status category employer { creditCode } workDistrict } } } } }"


async def all_persons(
    client: httpx.AsyncClient, filter_: dict[str, Any] | None = None, first: int = 37
) -> tuple[list[dict[str, Any]], int]:
    nodes: list[dict[str, Any]] = []
    after = None
    totals = set()
    while True:
        body = await graphql(client, PERSON_IDS, {"first": first, "after": after, "filter": filter_})
        assert "errors" not in body, body["errors"]
        page = body["data"]["persons"]
        totals.add(page["totalCount"])
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(totals) == 1
    return nodes, totals.pop()


async def test_paging_through_persons_yields_everyone_exactly_once(
    client: httpx.AsyncClient, estate: Estate
) -> None:
    nodes, total = await all_persons(client)
    ids = [n["id"] for n in nodes]
    assert len(ids) == len(set(ids)) == total == estate.report.persons


async def test_paging_refuses_a_page_over_100_and_a_foreign_cursor(client: httpx.AsyncClient) -> None:
    body = await graphql(client, "{ persons(first: 101) { totalCount } }")
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}
    body = await graphql(client, '{ persons(after: "bm90LWEtY3Vyc29y") { totalCount } }')
    assert body["errors"][0]["extensions"]["field"] == "after"
    default = await graphql(client, "{ persons { edges { cursor } } }")
    assert len(default["data"]["persons"]["edges"]) == 20


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({"permitStatus": "VALID"}, lambda c, a: c is not None and c.status == "VALID"),
        ({"permitStatus": "EXPIRED"}, lambda c, a: c is not None and c.status == "EXPIRED"),
        ({"permitStatus": "UNDER_REVIEW"}, lambda c, a: c is not None and c.status == "UNDER_REVIEW"),
        ({"category": "A"}, lambda c, a: c is not None and c.category == "A"),
        ({"nationality": "DEU"}, lambda c, a: a.GJ == "DEU"),
        ({"workDistrict": "110105"}, lambda c, a: c is not None and c.district == "110105"),
        (
            {"permitStatus": "VALID", "category": "B", "nationality": "USA"},
            lambda c, a: c is not None and c.status == "VALID" and c.category == "B" and a.GJ == "USA",
        ),
    ],
)
async def test_each_filter_matches_the_legacy_rows(
    client: httpx.AsyncClient, estate: Estate, filter_: dict[str, Any], expected: Any
) -> None:
    view = await legacy_view(estate.settings, AS_OF)
    wanted = sum(1 for a in view["applicants"] if expected(view["current"].get(a.SQRID), a))
    assert wanted > 0, "the estate should contain persons of this kind"
    nodes, total = await all_persons(client, filter_)
    assert total == len(nodes) == wanted


async def test_insured_and_employer_filters_match_the_legacy_rows(
    client: httpx.AsyncClient, estate: Estate
) -> None:
    insured = await insured_applicants(estate.settings)
    _, total_insured = await all_persons(client, {"insured": True})
    _, total_uninsured = await all_persons(client, {"insured": False})
    assert total_insured == len(insured)
    assert total_insured + total_uninsured == estate.report.persons
    view = await legacy_view(estate.settings, AS_OF)
    employer = Counter(c.employer for c in view["current"].values()).most_common(1)[0]
    nodes, total = await all_persons(client, {"employerCreditCode": employer[0]})
    assert total == employer[1]
    assert {n["workPermit"]["employer"]["creditCode"] for n in nodes} == {employer[0]}


def _shown(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], int]:
    """Shown counts by key; rounding withholds none."""
    assert all(r["suppressed"] is False for r in rows)
    return {tuple(k["value"] for k in r["keys"]): r["count"] for r in rows}


def _rounded_from(shown: dict[tuple[str, ...], int], expected: Counter[tuple[str, ...]]) -> None:
    """Every shown count is the legacy count rounded to a multiple of 5 (down or up), and only
    cells of fewer than 5 persons round to 0 and go unlisted."""
    assert set(shown) <= set(expected)
    for key, count in shown.items():
        assert count % 5 == 0 and 0 < count and abs(count - expected[key]) < 5, (key, count, expected[key])
    assert all(n < 5 for key, n in expected.items() if key not in shown)


async def test_statistics_round_counts_made_on_the_legacy_databases(
    client: httpx.AsyncClient, estate: Estate
) -> None:
    view = await legacy_view(estate.settings, AS_OF)
    nationality = {a.SQRID: a.GJ for a in view["applicants"]}
    expected: Counter[tuple[str, ...]] = Counter(
        (nationality[s], c.status) for s, c in view["current"].items()
    )
    body = await graphql(
        client,
        "{ workforceStatistics(groupBy: [NATIONALITY, PERMIT_STATUS]) { keys { dimension value } count suppressed } }",
    )
    shown = _shown(body["data"]["workforceStatistics"])
    _rounded_from(shown, expected)
    assert any(n >= 5 for n in shown.values()), "a seeded estate has counts large enough to show"
    insured = await insured_applicants(estate.settings)
    expected_insured: Counter[tuple[str, ...]] = Counter(
        (c.category, "true" if s in insured else "false")
        for s, c in view["current"].items()
        if c.status == "VALID"
    )
    body = await graphql(
        client,
        "{ workforceStatistics(groupBy: [TALENT_CATEGORY, INSURED], filter: {permitStatus: VALID}) { keys { value } count suppressed } }",
    )
    _rounded_from(_shown(body["data"]["workforceStatistics"]), expected_insured)
    total = await graphql(client, "{ workforceStatistics(groupBy: []) { keys { value } count suppressed } }")
    _rounded_from(_shown(total["data"]["workforceStatistics"]), Counter({(): estate.report.persons}))


EVERYTHING = """
  id name { full } passports { number } identityLinks { agency recordKey confidence }
  workPermit { number status employer { name } history { kind } holder { id } }
  workPermits { number } socialSecurityNumber
  socialSecurityCard { number status } electronicCard { id status serviceLevel }
  insuranceParticipations { type status employer { creditCode } }
  visas { number } entries(first: 3) { edges { node { enteredOn } } }
  residencePermit { number } residencePermits { number }
  benefitPayments(first: 3) { edges { node { amount status } } }
"""


async def test_statements_per_source_do_not_grow_with_the_page(client: httpx.AsyncClient) -> None:
    # Start both pages at a person whom all five agencies know, so N = 1 touches every source too.
    listing = await graphql(
        client, "{ persons(first: 100) { edges { cursor node { identityLinks { agency } } } } }"
    )
    edges = listing["data"]["persons"]["edges"]
    full = next(
        i for i, e in enumerate(edges) if len({ln["agency"] for ln in e["node"]["identityLinks"]}) == 5
    )
    after = edges[full - 1]["cursor"] if full else None
    query = (
        "query($n: Int, $after: String) { persons(first: $n, after: $after) { edges { node {"
        + EVERYTHING
        + "} } } }"
    )
    traced = {}
    for n in (1, 100):
        body = await graphql(client, query, {"n": n, "after": after}, headers={"X-Hub-Trace": "1"})
        assert "errors" not in body, body.get("errors")
        assert len(body["data"]["persons"]["edges"]) == n
        traced[n] = {name: s["statements"] for name, s in body["extensions"]["sources"].items()}
    assert traced[1] == traced[100]
    assert set(traced[100]) >= {
        "WORK_PERMIT_SYSTEM",
        "SOCIAL_INSURANCE",
        "CARD_SERVICE",
        "EXIT_ENTRY",
        "BEIJING_PASS",
    }


async def test_no_trace_without_the_header(client: httpx.AsyncClient) -> None:
    body = await graphql(client, "{ persons(first: 1) { totalCount } }")
    assert "sources" not in (body.get("extensions") or {})


async def test_expiring_permits_are_current_valid_ones_in_the_window(
    client: httpx.AsyncClient, estate: Estate
) -> None:
    view = await legacy_view(estate.settings, AS_OF)
    until = AS_OF.replace(day=15, month=9)  # 92 days after 2026-06-15
    window = (until - AS_OF).days
    expected = sorted(
        (c.valid_to, c.number)
        for c in view["current"].values()
        if c.status == "VALID" and AS_OF.strftime("%Y%m%d") <= c.valid_to <= until.strftime("%Y%m%d")
    )
    assert expected
    got: list[tuple[str, str]] = []
    after = None
    while True:
        body = await graphql(
            client,
            "query($d: Int!, $after: String) { expiringWorkPermits(withinDays: $d, first: 7, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { number validTo status } } } }",
            {"d": window, "after": after},
        )
        page = body["data"]["expiringWorkPermits"]
        assert page["totalCount"] == len(expected)
        got += [(e["node"]["validTo"].replace("-", ""), e["node"]["number"]) for e in page["edges"]]
        assert {e["node"]["status"] for e in page["edges"]} <= {"VALID"}
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert got == expected
    for days in (0, 366):
        bad = await graphql(
            client, "query($d: Int!) { expiringWorkPermits(withinDays: $d) { totalCount } }", {"d": days}
        )
        assert bad["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "withinDays"}


async def test_every_node_type_round_trips_through_node(client: httpx.AsyncClient) -> None:
    body = await graphql(
        client,
        "{ persons(first: 100, filter: {permitStatus: VALID, insured: true}) { edges { node { id workPermit { id employer { id } } electronicCard { id } } } } }",
    )
    edges = body["data"]["persons"]["edges"]
    person = next(e["node"] for e in edges if e["node"]["electronicCard"])
    for global_id, typename in [
        (person["id"], "Person"),
        (person["workPermit"]["id"], "WorkPermit"),
        (person["workPermit"]["employer"]["id"], "Employer"),
        (person["electronicCard"]["id"], "ElectronicCard"),
    ]:
        found = await graphql(
            client, "query($id: ID!) { node(id: $id) { __typename id } }", {"id": global_id}
        )
        assert found["data"]["node"] == {"__typename": typename, "id": global_id}
    bad = await graphql(client, '{ node(id: "not-an-id") { id } }')
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_person_is_found_by_every_identifier(client: httpx.AsyncClient) -> None:
    body = await graphql(
        client,
        "{ persons(first: 100, filter: {permitStatus: VALID, insured: true}) { edges { node { id nationality passports { number nationality } workPermit { number } socialSecurityNumber socialSecurityCard { number } residencePermit { number } } } } }",
    )
    person = next(
        e["node"]
        for e in body["data"]["persons"]["edges"]
        if e["node"]["socialSecurityCard"] and e["node"]["residencePermit"]
    )
    lookups = [
        {"id": person["id"]},
        {"workPermitNumber": person["workPermit"]["number"]},
        {"socialSecurityNumber": person["socialSecurityNumber"]},
        {"cardNumber": person["socialSecurityCard"]["number"]},
        {"passport": person["passports"][0]},
        {"residencePermitNumber": person["residencePermit"]["number"]},
    ]
    for lookup in lookups:
        found = await graphql(client, "query($l: PersonLookup!) { person(lookup: $l) { id } }", {"l": lookup})
        assert found["data"]["person"] == {"id": person["id"]}, lookup
    two = await graphql(
        client,
        "query($l: PersonLookup!) { person(lookup: $l) { id } }",
        {"l": {"id": person["id"], "cardNumber": "X"}},
    )
    assert two["data"] is None and two["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    nobody = await graphql(client, '{ person(lookup: {workPermitNumber: "000000000000000000"}) { id } }')
    assert nobody == {"data": {"person": None}}


async def test_employer_lists_its_permits_with_a_total(client: httpx.AsyncClient, estate: Estate) -> None:
    view = await legacy_view(estate.settings, AS_OF)
    code, periods = Counter(r.TYSHXYDM.strip() for r in view["permits"]).most_common(1)[0]
    seen: list[str] = []
    after = None
    while True:
        body = await graphql(
            client,
            "query($c: String!, $after: String) { employer(creditCode: $c) { creditCode name workPermits(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { id employer { creditCode } } } } } }",
            {"c": code, "after": after},
        )
        permits = body["data"]["employer"]["workPermits"]
        assert permits["totalCount"] == periods
        seen += [e["node"]["id"] for e in permits["edges"]]
        if not permits["pageInfo"]["hasNextPage"]:
            break
        after = permits["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == periods
    missing = await graphql(client, '{ employer(creditCode: "91110000600037341L") { name } }')
    assert missing == {"data": {"employer": None}}


async def test_verifying_a_permit_by_number_and_by_electronic_card(client: httpx.AsyncClient) -> None:
    body = await graphql(
        client,
        "{ persons(first: 100, filter: {permitStatus: VALID}) { edges { node { name { full } workPermit { number validTo employer { name } } electronicCard { id status workPermitNumber } } } } }",
    )
    person = next(
        e["node"]
        for e in body["data"]["persons"]["edges"]
        if e["node"]["electronicCard"] and e["node"]["electronicCard"]["status"] == "SIGNED"
    )
    query = "query($i: PermitVerificationInput!) { verifyWorkPermit(input: $i) { valid failure permitNumber holderName employerName validTo channel } }"
    by_number = await graphql(client, query, {"i": {"workPermitNumber": person["workPermit"]["number"]}})
    assert by_number["data"]["verifyWorkPermit"] == {
        "valid": True,
        "failure": None,
        "permitNumber": person["workPermit"]["number"],
        "holderName": person["name"]["full"],
        "employerName": person["workPermit"]["employer"]["name"],
        "validTo": person["workPermit"]["validTo"],
        "channel": "SYSTEM",
    }
    by_card = await graphql(client, query, {"i": {"electronicCardId": person["electronicCard"]["id"]}})
    assert by_card["data"]["verifyWorkPermit"]["valid"] is True
    assert by_card["data"]["verifyWorkPermit"]["channel"] == "ELECTRONIC_CARD"
    unknown = await graphql(client, query, {"i": {"workPermitNumber": "110105202400000000"}})
    assert unknown["data"]["verifyWorkPermit"]["failure"] == "NOT_FOUND"
    expired = await graphql(
        client,
        "{ persons(first: 5, filter: {permitStatus: EXPIRED}) { edges { node { workPermit { number } } } } }",
    )
    number = expired["data"]["persons"]["edges"][0]["node"]["workPermit"]["number"]
    outcome = await graphql(client, query, {"i": {"workPermitNumber": number}})
    assert outcome["data"]["verifyWorkPermit"]["failure"] == "EXPIRED"
    assert outcome["data"]["verifyWorkPermit"]["valid"] is False
