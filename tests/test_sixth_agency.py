"""The proof that an agency is a plug-in: the tax bureau (tests/sixth_agency/) joins the hub by
its spec, its part of the graph and a grant, and appears in the estate, in linking, in the
graph, in `/readyz` and in the trace; the hub of the notice's five is unchanged."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from access.policy import PolicyError, load_policy
from adapters import Sources
from adapters.registry import DEFAULT_AGENCIES
from domain.records import CallerRole
from estate import generate_estate
from identity.linking import LinkReport, link_estate
from identity.store import HubStore
from schema import build_schema, export_sdl
from schema.agencies import DEFAULT_PARTS
from settings import Settings
from tests.conftest import AS_OF, UNHURRIED_BUDGET, caller_headers, graphql, serve
from tests.sixth_agency import adapter
from tests.sixth_agency.schema import TAX_PART

SIX_AGENCIES = (*DEFAULT_AGENCIES, adapter.SPEC)
SIX_PARTS = (*DEFAULT_PARTS, TAX_PART)
PERSONS = 120
SEED = 11
ROOT = Path(__file__).parent.parent
GRANT = Path(__file__).parent / "sixth_agency" / "policy.toml"


@dataclass
class TaxedHub:
    settings: Settings
    report: LinkReport
    http: httpx.AsyncClient
    headers: dict[str, str]


def six_agency_settings(data_dir: Path) -> Settings:
    """A hub of six agencies on SQLite files, under the policy file with the tax grant added."""
    policy = data_dir / "policy.toml"
    policy.write_text((ROOT / "policy.toml").read_text() + "\n" + GRANT.read_text())
    settings = Settings.for_directory(data_dir, fixed_today=AS_OF, agencies=SIX_AGENCIES)
    budgets = dict.fromkeys(settings.source_budgets, UNHURRIED_BUDGET)
    return replace(settings, policy_path=policy, source_budgets=budgets)


async def seed(settings: Settings) -> LinkReport:
    sources = Sources.open(settings.source_urls, agencies=settings.agencies)
    store = HubStore.open(settings.store_url)
    try:
        engines = {s.agency: s.engine for s in sources.all()}
        await generate_estate(engines, PERSONS, SEED, AS_OF, agencies=settings.agencies)
        await store.create_tables()
        return await link_estate(sources, store)
    finally:
        await sources.close()
        await store.close()


@pytest.fixture(scope="module")
async def taxed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TaxedHub]:
    settings = six_agency_settings(tmp_path_factory.mktemp("six-agencies"))
    report = await seed(settings)
    caller = caller_headers(settings, CallerRole.WORK_PERMIT_AUTHORITY, "tax-assessment")
    headers = {**caller, "X-Hub-Trace": "1"}
    async with serve(settings, parts=SIX_PARTS) as http:
        yield TaxedHub(settings, report, http, headers)


def returns_in_database(settings: Settings) -> dict[str, list[tuple[int, int, str]]]:
    """Per taxpayer, (year, income in yuan, status), as the tax bureau's own file holds them."""
    import sqlite3

    path = settings.data_dir / adapter.SPEC.file_name
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            'SELECT "NSRSBH", "SSND", "SRE", "ZT" FROM "SW_SBJL" ORDER BY "SSND" DESC, "SBID"'
        )
        found: dict[str, list[tuple[int, int, str]]] = {}
        for number, year, income, code in rows:
            found.setdefault(number, []).append((year, income // 100, adapter.STATUS_CODES[code].value))
    return found


QUERY = """
query Taxed($first: Int!, $after: String) {
  persons(first: $first, after: $after) {
    edges { node { id identityLinks { agency recordKey confidence } taxReturns { year taxableIncome status } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def every_person(hub: TaxedHub) -> list[dict[str, Any]]:
    persons: list[dict[str, Any]] = []
    after = None
    while True:
        body = await graphql(hub.http, QUERY, {"first": 50, "after": after}, hub.headers)
        assert "errors" not in body, body["errors"]
        page = body["data"]["persons"]
        persons += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return persons
        after = page["pageInfo"]["endCursor"]


async def test_the_estate_gets_the_tax_bureau_and_the_five_agencies_rows_stay_the_same(
    taxed: TaxedHub, tmp_path: Path
) -> None:
    five = Settings.for_directory(tmp_path, fixed_today=AS_OF)
    sources = Sources.open(five.source_urls)
    try:
        await generate_estate({s.agency: s.engine for s in sources.all()}, PERSONS, SEED, AS_OF)
    finally:
        await sources.close()
    for spec in DEFAULT_AGENCIES:
        ours = hashlib.sha256((taxed.settings.data_dir / spec.file_name).read_bytes()).hexdigest()
        theirs = hashlib.sha256((tmp_path / spec.file_name).read_bytes()).hexdigest()
        assert ours == theirs, spec.id
    taxpayers = len(returns_in_database(taxed.settings))
    assert PERSONS // 3 < taxpayers < PERSONS


async def test_linking_weighs_the_tax_bureaus_evidence(taxed: TaxedHub) -> None:
    persons = await every_person(taxed)
    taxpayers = set(returns_in_database(taxed.settings))
    linked = {
        link["recordKey"]: person["id"]
        for person in persons
        for link in person["identityLinks"]
        if link["agency"] == adapter.TAX_BUREAU and link["confidence"] == "CONFIRMED"
    }
    assert set(linked) == taxpayers  # every taxpayer found its person by passport and birth date
    assert len(set(linked.values())) == len(linked)  # one taxpayer per person
    assert taxed.report.unmappable == []


async def test_a_persons_tax_returns_are_the_bureaus_rows(taxed: TaxedHub) -> None:
    in_database = returns_in_database(taxed.settings)
    persons = await every_person(taxed)
    with_returns = 0
    for person in persons:
        numbers = [
            link["recordKey"] for link in person["identityLinks"] if link["agency"] == adapter.TAX_BUREAU
        ]
        expected = [row for number in numbers for row in in_database[number]]
        answered = [(r["year"], r["taxableIncome"], r["status"]) for r in person["taxReturns"]]
        assert answered == expected, person["id"]
        with_returns += bool(answered)
    assert with_returns == len(in_database)


async def test_readyz_and_the_trace_name_the_tax_bureau(taxed: TaxedHub) -> None:
    ready = (await taxed.http.get("/readyz")).json()
    assert set(ready["sources"]) == {spec.id for spec in SIX_AGENCIES}
    assert ready["sources"][adapter.TAX_BUREAU]["status"] == "up"
    body = await graphql(
        taxed.http, "{ persons(first: 5) { edges { node { taxReturns { year } } } } }", None, taxed.headers
    )
    assert "errors" not in body
    assert body["extensions"]["sources"][adapter.TAX_BUREAU]["statements"] == 1  # one batch for the page


async def test_the_grant_decides_who_reads_tax_returns(taxed: TaxedHub) -> None:
    headers = caller_headers(taxed.settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    body = await graphql(
        taxed.http, "{ persons(first: 1) { edges { node { taxReturns { year } } } } }", None, headers
    )
    assert body["data"]["persons"]["edges"][0]["node"]["taxReturns"] is None
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}


def test_the_hub_of_five_is_unchanged_and_refuses_the_tax_grant(tmp_path: Path) -> None:
    assert export_sdl() == (ROOT / "schema.graphql").read_text()
    six = build_schema(parts=SIX_PARTS).as_str()
    assert "taxReturns" in six and "TAX_BUREAU" in six
    assert "taxReturns" not in export_sdl()
    combined = tmp_path / "policy.toml"
    combined.write_text((ROOT / "policy.toml").read_text() + "\n" + GRANT.read_text())
    tomllib.loads(combined.read_text())  # the grant is plain TOML added to the file
    with pytest.raises(PolicyError, match="taxReturns"):
        load_policy(build_schema()._schema, combined)


async def test_the_bureaus_records_are_read_through_its_own_source(taxed: TaxedHub) -> None:
    sources = Sources.open(taxed.settings.source_urls, agencies=taxed.settings.agencies)
    try:
        source = sources[adapter.TAX_BUREAU]
        assert isinstance(source, adapter.TaxBureau)
        async with source.connect() as conn:
            numbers = [r[0] for r in (await conn.execute(select(adapter.SW_NSR.c.NSRSBH).limit(3))).all()]
        found = await source.returns_by_person([(n,) for n in numbers])
        assert [len(r) for r in found] == [len(returns_in_database(taxed.settings)[n]) for n in numbers]
    finally:
        await sources.close()
