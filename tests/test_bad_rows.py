"""Legacy rows the adapters cannot map: the field is null with an error naming the agency and
the record, the rest of the answer stands; a value failing its check character is returned
with the error; linking reports an unreadable record with its key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from adapters import Sources
from domain.records import Agency
from identity.linking import link_estate
from identity.store import HubStore
from settings import Settings
from tests.conftest import BACKENDS, fresh_estate, global_ids, graphql, read_everything, serve

QUERY = """query($l: PersonLookup!) { person(lookup: $l) {
  name { full }
  workPermit { number employer { creditCode } }
  workPermits { number }
  socialSecurityCard { number }
  residencePermit { number }
  visas { number }
  benefitPayments(first: 50) { edges { node { benefitCode status } } }
} }"""


async def execute(url: str, sql: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql))
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
async def damaged(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Settings]:
    """A fresh small estate whose rows the tests may break."""
    data_dir = tmp_path_factory.mktemp(f"damaged-{request.param}")
    async with fresh_estate(request.param, data_dir, persons=80, seed=3) as seeded:
        yield seeded.settings


@pytest.fixture(scope="module")
async def damaged_client(damaged: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(*read_everything(damaged)) as http:
        yield http


async def _full_person(damaged: Settings) -> tuple[str, dict[str, str]]:
    """A person all five agencies know, with the keys of their records."""
    store = HubStore.open(damaged.store_url)
    try:
        async with store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT person_id, agency, record_type, record_key FROM identity_link "
                        "WHERE confidence = 'CONFIRMED' ORDER BY person_id"
                    )
                )
            ).all()
    finally:
        await store.close()
    by_person: dict[int, dict[str, str]] = {}
    for person_id, _agency, record_type, key in rows:
        by_person.setdefault(person_id, {})[record_type] = key
    wanted = {"WP_SQR", "AC01", "SBK_KXX", "CRJ_RY", "BJT_FF"}
    for person_id, keys in by_person.items():
        if wanted <= set(keys):
            return global_ids(damaged).encode("Person", person_id), keys
    raise AssertionError("the estate should hold a person known to all five agencies")


def _errors_by_path(body: dict[str, Any]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    found: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for error in body.get("errors", []):
        found.setdefault(tuple(error["path"]), []).append(error)
    return found


async def test_unmappable_rows_null_their_field_and_name_the_record(
    damaged: Settings, damaged_client: httpx.AsyncClient
) -> None:
    person_id, keys = await _full_person(damaged)
    wp = damaged.source_urls[Agency.WORK_PERMIT_SYSTEM]
    periods = await execute(
        wp, f'SELECT "XKID" FROM "WP_XKZ" WHERE "SQRID" = {keys["WP_SQR"]} ORDER BY "XKID"'
    )
    before = await graphql(damaged_client, QUERY, {"l": {"id": person_id}})
    assert "errors" not in before
    current = before["data"]["person"]["workPermit"]["number"]
    # An impossible date on every period, broken JSON on the cards, impossible visa dates, an unknown payment status.
    await execute(wp, f'UPDATE "WP_XKZ" SET "YXQZ" = \'20261340\' WHERE "SQRID" = {keys["WP_SQR"]}')
    cards = damaged.source_urls[Agency.CARD_SERVICE]
    holder = f'(SELECT "SHBZHM" FROM "SBK_KXX" WHERE "KH" = \'{keys["SBK_KXX"]}\')'
    card_keys = {r.KH for r in await execute(cards, f'SELECT "KH" FROM "SBK_KXX" WHERE "SHBZHM" = {holder}')}
    await execute(cards, f'UPDATE "SBK_KXX" SET "GZXKXX" = \'{{broken\' WHERE "SHBZHM" = {holder}')
    await execute(
        damaged.source_urls[Agency.EXIT_ENTRY],
        f'UPDATE "CRJ_QZ" SET "QFRQ" = \'2025/02/30\' WHERE "RYBH" = \'{keys["CRJ_RY"]}\'',
    )
    await execute(
        damaged.source_urls[Agency.BEIJING_PASS],
        f'UPDATE "BJT_FF" SET "ZT" = \'X\' WHERE "KH" = \'{keys["BJT_FF"]}\'',
    )
    try:
        body = await graphql(damaged_client, QUERY, {"l": {"id": person_id}})
    finally:
        await execute(wp, f'UPDATE "WP_XKZ" SET "YXQZ" = \'20270101\' WHERE "SQRID" = {keys["WP_SQR"]}')
    person = body["data"]["person"]
    errors = _errors_by_path(body)
    # The current permit: null, with the agency and the period's key.
    assert person["workPermit"] is None
    (error,) = errors[("person", "workPermit")]
    assert error["extensions"]["code"] == "SOURCE_DATA_INVALID"
    assert error["extensions"]["agency"] == "WORK_PERMIT_SYSTEM"
    assert error["extensions"]["recordKey"] in {str(p.XKID) for p in periods}
    assert error["extensions"]["field"] == "YXQZ"
    # The list keeps what it can read and names each period it cannot.
    assert person["workPermits"] == []
    assert {e["extensions"]["recordKey"] for e in errors[("person", "workPermits")]} == {
        str(p.XKID) for p in periods
    }
    assert person["socialSecurityCard"] is None
    (card_error,) = errors[("person", "socialSecurityCard")]
    assert card_error["extensions"]["recordKey"] in card_keys
    assert card_error["extensions"] | {"recordKey": None} == {
        "code": "SOURCE_DATA_INVALID",
        "agency": "CARD_SERVICE",
        "recordKey": None,
        "field": "GZXKXX",
    }
    assert {e["extensions"]["agency"] for e in errors[("person", "visas")]} == {"EXIT_ENTRY"}
    assert {e["extensions"]["field"] for e in errors[("person", "benefitPayments")]} == {"ZT"}
    assert person["benefitPayments"]["edges"] == []
    # Everything else still answers.
    assert person["name"]["full"] == before["data"]["person"]["name"]["full"]
    assert person["residencePermit"] == before["data"]["person"]["residencePermit"]
    assert current


async def test_a_value_failing_its_check_character_is_returned_with_the_error(
    damaged: Settings, damaged_client: httpx.AsyncClient
) -> None:
    person_id, keys = await _full_person(damaged)
    wp = damaged.source_urls[Agency.WORK_PERMIT_SYSTEM]
    before = await graphql(damaged_client, QUERY, {"l": {"id": person_id}})
    code = before["data"]["person"]["workPermit"]["employer"]["creditCode"]
    broken = code[:17] + ("0" if code[17] != "0" else "1")
    await execute(wp, f'UPDATE "WP_XKZ" SET "TYSHXYDM" = \'{broken}\' WHERE "TYSHXYDM" = \'{code}\'')
    try:
        body = await graphql(damaged_client, QUERY, {"l": {"id": person_id}})
    finally:
        await execute(wp, f'UPDATE "WP_XKZ" SET "TYSHXYDM" = \'{code}\' WHERE "TYSHXYDM" = \'{broken}\'')
    assert body["data"]["person"]["workPermit"]["employer"]["creditCode"] == broken
    errors = _errors_by_path(body)
    assert [e["extensions"]["field"] for e in errors[("person", "workPermit", "employer")]] == ["TYSHXYDM"]


async def test_linking_reports_an_unreadable_record_with_its_key(damaged: Settings) -> None:
    wp = damaged.source_urls[Agency.WORK_PERMIT_SYSTEM]
    await execute(wp, 'UPDATE "WP_SQR" SET "CSRQ" = \'19xx0101\' WHERE "SQRID" = 5')
    sources = Sources.open(damaged.source_urls)
    store = HubStore.open(damaged.store_url)
    try:
        report = await link_estate(sources, store)
    finally:
        await execute(wp, 'UPDATE "WP_SQR" SET "CSRQ" = \'19800101\' WHERE "SQRID" = 5')
        await sources.close()
        await store.close()
    assert [(bad.problem.agency, bad.problem.record_key, bad.problem.field) for bad in report.unmappable] == [
        (Agency.WORK_PERMIT_SYSTEM, "5", "CSRQ")
    ]
