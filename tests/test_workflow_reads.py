"""The reads the workflows check their rules with, answered by the agencies' adapters (the
workflows name no legacy table or column): each compared with the agency's own rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest

from adapters import Sources
from adapters.exit_entry import writes as ee_writes
from domain.records import Agency, CardStatus, SocialSecurityCard
from tests.conftest import Estate
from tests.legacy import rows


@pytest.fixture
async def sources(estate: Estate) -> AsyncIterator[Sources]:
    opened = Sources.open(estate.settings.source_urls)
    try:
        yield opened
    finally:
        await opened.close()


def slash(day: date) -> str:
    return day.strftime("%Y/%m/%d")


async def test_cards_are_read_by_number(estate: Estate, sources: Sources) -> None:
    legacy = await rows(
        estate.settings.source_urls[Agency.CARD_SERVICE], 'SELECT "KH", "KZT" FROM "SBK_KXX" ORDER BY "KH"'
    )
    asked = [r.KH for r in legacy[:5]] + ["X00000000"]
    found = await sources.cards.cards_by_number(asked)
    codes = {
        "0": CardStatus.PENDING_PRODUCTION,
        "1": CardStatus.IN_USE,
        "2": CardStatus.REPORTED_LOST,
        "3": CardStatus.CANCELLED,
    }
    for row, card in zip(legacy[:5], found, strict=False):
        assert isinstance(card, SocialSecurityCard)
        assert (card.number, card.status) == (row.KH, codes[row.KZT])
    assert found[-1] is None


async def test_names_are_read_by_applicant_and_by_insured_person(estate: Estate, sources: Sources) -> None:
    applicants = await rows(
        estate.settings.source_urls[Agency.WORK_PERMIT_SYSTEM],
        'SELECT "SQRID", "XM" FROM "WP_SQR" ORDER BY "SQRID" LIMIT 4',
    )
    names = await sources.work_permits.names_by_applicant([str(r.SQRID) for r in applicants])
    assert sorted(names) == sorted(r.XM for r in applicants)
    insured = await rows(
        estate.settings.source_urls[Agency.SOCIAL_INSURANCE],
        'SELECT "AAC001", "AAC003" FROM "AC01" ORDER BY "AAC001" LIMIT 4',
    )
    names = await sources.insurance.names_by_insured([str(r.AAC001) for r in insured])
    assert sorted(names) == sorted(r.AAC003 for r in insured)


async def test_entries_are_checked_by_day_port_and_visa_type(estate: Estate, sources: Sources) -> None:
    url = estate.settings.source_urls[Agency.EXIT_ENTRY]
    entries = await rows(
        url,
        'SELECT "CRJ_RJ"."RYBH", "CRJ_RJ"."RJRQ", "CRJ_RJ"."KA", "CRJ_QZ"."QZZL" FROM "CRJ_RJ" '
        'JOIN "CRJ_QZ" ON "CRJ_QZ"."QZH" = "CRJ_RJ"."QZH" ORDER BY "CRJ_RJ"."RYBH", "CRJ_RJ"."RJRQ"',
    )
    entry = entries[0]
    day = date(*map(int, entry.RJRQ.split("/")))
    traveller = entry.RYBH.strip()
    on_file = {(r.RYBH.strip(), r.RJRQ) for r in entries}
    assert await sources.exit_entry.entered_on([traveller], day)
    assert await sources.exit_entry.entered_on([traveller], day + timedelta(days=1)) == (
        (traveller, slash(day + timedelta(days=1))) in on_file
    )
    assert not await sources.exit_entry.entered_on(["NOBODY"], day)
    latest = max(
        date(*map(int, r.RJRQ.split("/")))
        for r in entries
        if r.RYBH.strip() == traveller and r.QZZL == entry.QZZL
    )
    assert await sources.exit_entry.entered_on_visa_since(traveller, entry.QZZL, latest)
    assert not await sources.exit_entry.entered_on_visa_since(
        traveller, entry.QZZL, latest + timedelta(days=1)
    )
    other = "Z" if entry.QZZL != "Z" else "M"
    expected = any(r.RYBH.strip() == traveller and r.QZZL == other for r in entries)
    assert await sources.exit_entry.entered_on_visa_since(traveller, other, date(1900, 1, 1)) == expected
    async with sources.exit_entry.engine.connect() as conn:
        assert await ee_writes.entry_recorded(conn, entry.RYBH, day, entry.KA)
        assert not await ee_writes.entry_recorded(conn, entry.RYBH, day, "ZZZ")
