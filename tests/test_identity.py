"""Identity linking: the awkward cases of a real estate, and stable person ids."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
from sqlalchemy import text

from adapters import Sources
from adapters.countries import ALPHA3_BY_CHINESE
from domain.records import Agency
from identity.linking import link_estate
from identity.names import name_words
from identity.store import HubStore
from tests.conftest import Estate, global_ids, graphql
from tests.legacy import rows

LINKS = "query($l: PersonLookup!) { person(lookup: $l) { id name { surname givenNames full } identityLinks { agency recordKey confidence } visas { number } passports { number current } } }"


async def _person(client: httpx.AsyncClient, lookup: dict[str, Any]) -> dict[str, Any]:
    body = await graphql(client, LINKS, {"l": lookup})
    assert "errors" not in body, body["errors"]
    person: dict[str, Any] = body["data"]["person"]
    return person


def _links(person: dict[str, Any], agency: str, confidence: str = "CONFIRMED") -> set[str]:
    return {
        ln["recordKey"]
        for ln in person["identityLinks"]
        if ln["agency"] == agency and ln["confidence"] == confidence
    }


async def test_exit_entry_knows_a_renewed_passport_by_its_old_number(
    client: httpx.AsyncClient, estate: Estate
) -> None:
    wp = estate.settings.source_urls[Agency.WORK_PERMIT_SYSTEM]
    renewed = await rows(
        wp,
        'SELECT h."SQRID", h."HZHM" AS old, s."HZHM" AS new, s."GJ" FROM "WP_HZLS" h JOIN "WP_SQR" s '
        'ON s."SQRID" = h."SQRID" WHERE h."HZHM" <> s."HZHM"',
    )
    travellers = {
        r.ZJHM.strip(): r.RYBH
        for r in await rows(
            estate.settings.source_urls[Agency.EXIT_ENTRY], 'SELECT "RYBH", "ZJHM" FROM "CRJ_RY"'
        )
    }
    known_by_old = [r for r in renewed if r.old.strip() in travellers]
    assert known_by_old, "the estate should hold a traveller known by an old passport"
    case = known_by_old[0]
    by_old = await _person(client, {"passport": {"number": case.old.strip(), "nationality": case.GJ}})
    by_new = await _person(client, {"passport": {"number": case.new.strip(), "nationality": case.GJ}})
    assert by_old["id"] == by_new["id"]
    assert _links(by_new, "EXIT_ENTRY") == {travellers[case.old.strip()]}
    assert [p["current"] for p in by_new["passports"]].count(True) == 1
    assert {p["number"] for p in by_new["passports"]} >= {case.old.strip(), case.new.strip()}


async def test_folded_diacritics_and_another_name_order_still_link(
    client: httpx.AsyncClient, estate: Estate
) -> None:
    applicants = await rows(
        estate.settings.source_urls[Agency.WORK_PERMIT_SYSTEM],
        'SELECT "SQRID", "XM", "HZHM", "GJ" FROM "WP_SQR"',
    )
    insured = await rows(
        estate.settings.source_urls[Agency.SOCIAL_INSURANCE],
        'SELECT "AAC001", "AAC003", "AAE135" FROM "AC01"',
    )
    by_passport = {r.AAE135.strip(): r for r in insured}
    folded = [
        (a, by_passport[a.HZHM.strip()])
        for a in applicants
        if a.HZHM.strip() in by_passport and a.XM.strip() != a.XM.strip().encode("ascii", "ignore").decode()
    ]
    assert folded, "the estate should hold an insured person with diacritics in the name"
    applicant, insured_row = folded[0]
    assert insured_row.AAC003.isascii() and insured_row.AAC003 != applicant.XM.strip()
    assert name_words(insured_row.AAC003) == name_words(applicant.XM)
    person = await _person(
        client, {"passport": {"number": applicant.HZHM.strip(), "nationality": applicant.GJ}}
    )
    assert _links(person, "SOCIAL_INSURANCE") == {str(insured_row.AAC001)}


async def test_look_alikes_are_flagged_weak_and_never_merged(
    client: httpx.AsyncClient, estate: Estate
) -> None:
    assert estate.report.flagged > 0
    store = HubStore.open(estate.settings.store_url)
    try:
        async with store.engine.connect() as conn:
            weak = (
                await conn.execute(
                    text(
                        "SELECT person_id, record_key FROM identity_link WHERE confidence = 'WEAK' AND agency = 'EXIT_ENTRY'"
                    )
                )
            ).all()
    finally:
        await store.close()
    assert weak, "the estate should hold an exit-entry look-alike"
    person_id, traveller_key = weak[0]
    person = await _person(client, {"id": global_ids(estate.settings).encode("Person", person_id)})
    assert traveller_key in _links(person, "EXIT_ENTRY", "WEAK")
    assert traveller_key not in _links(person, "EXIT_ENTRY")
    look_alike_visas = {
        r.QZH
        for r in await rows(
            estate.settings.source_urls[Agency.EXIT_ENTRY],
            f'SELECT "QZH" FROM "CRJ_QZ" WHERE "RYBH" = \'{traveller_key}\'',
        )
    }
    assert not look_alike_visas & {v["number"] for v in person["visas"]}


async def test_records_of_non_workers_are_left_alone(estate: Estate) -> None:
    assert estate.report.left_alone > 0
    travellers = await rows(
        estate.settings.source_urls[Agency.EXIT_ENTRY], 'SELECT "RYBH", "GJ" FROM "CRJ_RY"'
    )
    assert all(r.GJ in ALPHA3_BY_CHINESE for r in travellers)
    store = HubStore.open(estate.settings.store_url)
    try:
        async with store.engine.connect() as conn:
            linked = {
                r[0]
                for r in (
                    await conn.execute(
                        text("SELECT record_key FROM identity_link WHERE agency = 'EXIT_ENTRY'")
                    )
                ).all()
            }
    finally:
        await store.close()
    assert len({r.RYBH for r in travellers} - linked) > 0


async def test_applicants_not_yet_entered_are_known_to_the_permit_system_only(
    client: httpx.AsyncClient,
) -> None:
    body = await graphql(
        client,
        "{ persons(first: 5, filter: {permitStatus: UNDER_REVIEW}) { edges { node { identityLinks { agency } visas { number } socialSecurityCard { number } workPermit { status validFrom } } } } }",
    )
    for edge in body["data"]["persons"]["edges"]:
        node = edge["node"]
        assert {ln["agency"] for ln in node["identityLinks"]} == {"WORK_PERMIT_SYSTEM"}
        assert node["visas"] == [] and node["socialSecurityCard"] is None
        assert node["workPermit"] == {"status": "UNDER_REVIEW", "validFrom": None}


async def test_names_come_from_exit_entry_trimmed_and_single_names_have_no_given_names(
    client: httpx.AsyncClient, estate: Estate
) -> None:
    travellers = await rows(
        estate.settings.source_urls[Agency.EXIT_ENTRY], 'SELECT "YWXM", "ZJHM", "GJ" FROM "CRJ_RY"'
    )
    checked: Counter[str] = Counter()
    for traveller in travellers:
        person = await _person(
            client,
            {"passport": {"number": traveller.ZJHM.strip(), "nationality": ALPHA3_BY_CHINESE[traveller.GJ]}},
        )
        if person is None:
            continue  # a non-worker: not a person of the hub
        surname, _, given = traveller.YWXM.partition(",")
        assert person["name"]["surname"] == surname.strip()
        assert person["name"]["givenNames"] == (given.strip() or None)
        checked["single" if not given.strip() else "full"] += 1
    assert checked["single"] > 0 and checked["full"] > 0


async def test_relinking_keeps_every_person_id(estate: Estate) -> None:
    sources = Sources.open(estate.settings.source_urls)
    store = HubStore.open(estate.settings.store_url)
    try:
        before = (await store.snapshot()).person_of_anchor
        report = await link_estate(sources, store)
        after = (await store.snapshot()).person_of_anchor
    finally:
        await sources.close()
        await store.close()
    assert report.new_persons == 0
    assert after == before
    assert (report.linked, report.flagged) == (estate.report.linked, estate.report.flagged)
