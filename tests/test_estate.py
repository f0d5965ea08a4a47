"""The synthetic estate: deterministic, well-formed, consistent across agencies, and awkward
in every way the hub has to cope with."""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from adapters import identifiers
from adapters.countries import CHINESE_BY_ALPHA3, NUMERIC_BY_ALPHA3
from adapters.registry import DEFAULT_AGENCIES
from estate import EstateSummary, generate_estate
from settings import Settings

AS_OF = date(2025, 3, 1)
PERSONS = 300
Tables = dict[str, list[dict[str, Any]]]


async def _seed(directory: Path, seed: int, persons: int = PERSONS) -> EstateSummary:
    urls = Settings.for_directory(directory).source_urls
    engines = {agency: create_async_engine(url) for agency, url in urls.items()}
    try:
        return await generate_estate(engines, persons, seed, AS_OF)
    finally:
        for engine in engines.values():
            await engine.dispose()


async def _read(directory: Path) -> Tables:
    urls = Settings.for_directory(directory).source_urls
    contents: Tables = {}
    for spec in DEFAULT_AGENCIES:
        engine = create_async_engine(urls[spec.id])
        async with engine.connect() as conn:
            for table in spec.source.metadata.tables.values():
                contents[table.name] = [dict(r._mapping) for r in await conn.execute(select(table))]
        await engine.dispose()
    return contents


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, EstateSummary, Tables]:
    directory = tmp_path_factory.mktemp("estate")
    summary = asyncio.run(_seed(directory, 11))
    return directory, summary, asyncio.run(_read(directory))


@pytest.fixture(scope="module")
def tables(seeded: tuple[Path, EstateSummary, Tables]) -> Tables:
    return seeded[2]


_SPELLED_OUT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ø": "oe", "ł": "l",
                              "Ä": "AE", "Ö": "OE", "Ü": "UE", "Ø": "OE", "Ł": "L"})  # fmt: skip


def _words(name: str) -> tuple[str, ...]:
    """Name words for comparison: umlauts spelled out, accents dropped, any order."""
    spelled = name.translate(_SPELLED_OUT)
    plain = "".join(c for c in unicodedata.normalize("NFKD", spelled) if not unicodedata.combining(c))
    return tuple(sorted(w for w in re.split(r"[^A-Z0-9]+", plain.upper()) if w))


def _owner_by_passport(tables: Tables) -> dict[str, int]:
    return {r["HZHM"]: r["SQRID"] for r in tables["WP_HZLS"]}


@pytest.fixture
def two_directories(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "again").mkdir()
    (tmp_path / "other").mkdir()
    return tmp_path / "again", tmp_path / "other"


async def test_same_arguments_give_identical_estates(
    seeded: tuple[Path, EstateSummary, Tables], two_directories: tuple[Path, Path]
) -> None:
    directory, summary, first = seeded
    again, other_directory = two_directories
    assert await _seed(again, 11) == summary
    assert await _read(again) == first
    for file in (spec.file_name for spec in DEFAULT_AGENCIES):
        assert (again / file).read_bytes() == (directory / file).read_bytes(), file
    await _seed(other_directory, 12)
    other = await _read(other_directory)
    assert other["WP_SQR"] != first["WP_SQR"]
    assert other["AC01"] != first["AC01"]


async def test_a_seeded_estate_is_not_seeded_over(seeded: tuple[Path, EstateSummary, Tables]) -> None:
    with pytest.raises(ValueError, match="already holds rows in WP_SQR"):
        await _seed(seeded[0], 11)


def test_summary_counts_every_table(seeded: tuple[Path, EstateSummary, Tables]) -> None:
    _, summary, tables = seeded
    assert summary.counts == {name: len(rows) for name, rows in tables.items()}
    assert summary.counts["WP_SQR"] == PERSONS
    assert summary.total_rows == sum(summary.counts.values())


def test_identifiers_are_well_formed(tables: Tables) -> None:
    codes = [r["AAB998"] for r in tables["AB01"]] + [r["TYSHXYDM"] for r in tables["WP_XKZ"]]
    assert all(identifiers.is_valid_credit_code(c) for c in codes)
    assert all(identifiers.is_valid_social_security_number(r["AAC002"]) for r in tables["AC01"])
    formats: list[tuple[re.Pattern[str], list[str]]] = [
        (identifiers.PERMIT_NUMBER, [r["XKZH"] for r in tables["WP_XKZ"] + tables["SBK_DZK"]]),
        (identifiers.NOTIFICATION_LETTER_NUMBER,
         [r["TZSBH"] for r in tables["WP_XKZ"] + tables["CRJ_QZ"] if r["TZSBH"]]),
        (identifiers.CARD_NUMBER, [r["KH"] for r in tables["SBK_KXX"] + tables["SBK_DZK"] + tables["BJT_FF"]
                                   if r["KH"]]),
        (identifiers.ELECTRONIC_CARD_ID, [r["DZKID"] for r in tables["SBK_DZK"]]),
        (identifiers.VISA_NUMBER, [r["QZH"] for r in tables["CRJ_QZ"] + tables["CRJ_RJ"] if r["QZH"]]),
        (identifiers.RESIDENCE_PERMIT_NUMBER, [r["JLXKZH"] for r in tables["CRJ_JLXK"]]),
        (identifiers.DISTRICT_CODE, [r["GZDD"] for r in tables["WP_XKZ"]]),
        (re.compile(r"^[A-Z0-9]{6,12}$"), [r["HZHM"] for r in tables["WP_HZLS"]]),
        (re.compile(r"^RY\d{10}$"), [r["RYBH"] for r in tables["CRJ_RY"]]),
    ]  # fmt: skip
    for pattern, values in formats:
        assert values, pattern.pattern
        assert [v for v in values if not pattern.match(v)] == [], pattern.pattern
    unique = {"SBK_KXX": "KH", "SBK_DZK": "DZKID", "CRJ_QZ": "QZH", "CRJ_JLXK": "JLXKZH", "AC01": "AAC002",
              "WP_XKZ": "TZSBH", "WP_HZLS": "HZHM", "AB01": "AAB998", "CRJ_RY": "RYBH"}  # fmt: skip
    for table, key in unique.items():
        values = [r[key] for r in tables[table] if r[key]]
        assert len(values) == len(set(values)), key
    permit_owners = {(r["XKZH"], r["SQRID"]) for r in tables["WP_XKZ"]}
    assert len(permit_owners) == len({xkzh for xkzh, _ in permit_owners}) == PERSONS
    assert [r["XKID"] for r in tables["WP_XKZ"]] == list(range(1, len(tables["WP_XKZ"]) + 1))


def test_dates_and_codes_follow_each_agency(tables: Tables) -> None:
    assert all(len(r["XM"]) == 40 and r["XM"] == r["XM"].upper() for r in tables["WP_SQR"])
    assert all(re.fullmatch(r"\d{8}", r["CSRQ"]) for r in tables["WP_SQR"])
    assert all(re.fullmatch(r"\d{4}/\d{2}/\d{2}", r["CSRQ"]) for r in tables["CRJ_RY"])
    assert {r["XB"] for r in tables["CRJ_RY"]} == {"男", "女"}
    assert all(r["AAC003"].isascii() for r in tables["AC01"])
    assert {r["AAE140"] for r in tables["AC02"]} == {"110", "210", "310", "410", "510"}
    for card in tables["SBK_KXX"]:
        assert (card["FKRQ"] == "") == (card["KZT"] == "0")
        if card["GZXKXX"]:
            loaded = json.loads(card["GZXKXX"])
            assert list(loaded) == ["XKZH", "ZT", "YXQZ", "JZSJ"]
            assert loaded["JZSJ"].endswith("+08:00")
    for ecard in tables["SBK_DZK"]:
        assert (ecard["QFSJ"] == "") == (ecard["QFZT"] == "0")
        assert ecard["RZFS"] in ("FACE", "BANK", "COUNTER")
    for period in tables["WP_XKZ"]:
        has_dates = period["ZT"] not in ("10", "60")
        assert bool(period["YXQQ"]) == bool(period["YXQZ"]) == bool(period["TZSBH"]) == has_dates
        if period["ZT"] == "20":
            assert period["YXQQ"] >= AS_OF.strftime("%Y%m%d")


def test_records_agree_across_agencies(tables: Tables) -> None:
    applicants = {r["SQRID"]: r for r in tables["WP_SQR"]}
    owner = _owner_by_passport(tables)
    assert all(applicants[r["SQRID"]]["HZHM"] in owner for r in tables["WP_HZLS"])
    assert {r["TYSHXYDM"] for r in tables["WP_XKZ"]} <= {r["AAB998"] for r in tables["AB01"]}
    assert {r["AAB001"] for r in tables["AC02"]} <= {r["AAB001"] for r in tables["AB01"]}
    assert {r["AAC001"] for r in tables["AC02"]} <= {r["AAC001"] for r in tables["AC01"]}
    numbers = {r["AAC002"] for r in tables["AC01"]}
    assert {r["SHBZHM"] for r in tables["SBK_KXX"] + tables["SBK_DZK"] if r["SHBZHM"]} <= numbers
    # An e-card without a social security number was registered before enrollment (DOMAIN.md),
    # on a notice-issued permit, and is signed.
    notice_issued = {r["XKZH"] for r in tables["WP_XKZ"] if r["ZT"] == "20"}
    newcomers = [r for r in tables["SBK_DZK"] if not r["SHBZHM"]]
    assert newcomers and all(
        r["XKZH"] in notice_issued and r["QFZT"] == "1" and not r["KH"] for r in newcomers
    )
    assert all(r["SHBZHM"] for r in tables["SBK_KXX"])
    assert {r["XKZH"] for r in tables["SBK_DZK"]} <= {r["XKZH"] for r in tables["WP_XKZ"]}
    assert {r["KH"] for r in tables["BJT_FF"]} <= {r["KH"] for r in tables["SBK_KXX"]}
    assert {r["DYDM"] for r in tables["BJT_FF"]} <= {r["DYDM"] for r in tables["BJT_DY"]}
    letters = {r["TZSBH"] for r in tables["WP_XKZ"]}
    assert {r["TZSBH"] for r in tables["CRJ_QZ"] if r["QZZL"] == "Z"} <= letters
    visas = {r["QZH"] for r in tables["CRJ_QZ"]}
    assert {r["QZH"] for r in tables["CRJ_RJ"] if r["QZH"]} <= visas
    for person in tables["CRJ_RY"]:
        if person["ZJHM"] in owner:
            applicant = applicants[owner[person["ZJHM"]]]
            assert _words(person["YWXM"]) == _words(applicant["XM"])
            assert person["CSRQ"].replace("/", "") == applicant["CSRQ"]
            assert person["GJ"] == CHINESE_BY_ALPHA3[applicant["GJ"]]
    for insured in tables["AC01"]:
        if insured["AAE135"] in owner:
            applicant = applicants[owner[insured["AAE135"]]]
            assert _words(insured["AAC003"]) == _words(applicant["XM"])
            assert str(insured["AAC006"]) == applicant["CSRQ"]
            assert insured["AAC161"] == NUMERIC_BY_ALPHA3[applicant["GJ"]]
            assert insured["AAC002"][:3] == applicant["GJ"]


def test_awkward_cases_occur(tables: Tables) -> None:
    applicants = {r["SQRID"]: r for r in tables["WP_SQR"]}
    owner = _owner_by_passport(tables)
    periods: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in tables["WP_XKZ"]:
        periods[row["SQRID"]].append(row)
    at_exit_entry = {r["ZJHM"] for r in tables["CRJ_RY"]}
    as_of = AS_OF.strftime("%Y%m%d")

    # a renewed passport: exit-entry knows the person under the old number
    old_numbers = {r["HZHM"] for r in tables["WP_HZLS"] if applicants[r["SQRID"]]["HZHM"] != r["HZHM"]}
    assert old_numbers & at_exit_entry
    shown_at_enrolment = {r["AAE135"] for r in tables["AC01"]}
    assert old_numbers & shown_at_enrolment
    assert {applicants[owner[n]]["HZHM"] for n in old_numbers} & shown_at_enrolment
    # single names, multi-word names, diacritics folded at social insurance
    assert any(" " not in r["XM"].strip() for r in tables["WP_SQR"])
    assert any("," not in r["YWXM"] and r["ZJHM"] in owner for r in tables["CRJ_RY"])
    assert any(len(r["YWXM"].split(", ")[-1].split()) > 1 for r in tables["CRJ_RY"])
    folded = [
        r
        for r in tables["AC01"]
        if r["AAE135"] in owner and not applicants[owner[r["AAE135"]]]["XM"].isascii()
    ]
    assert any(re.search("ae|oe|ue|ss", r["AAC003"]) for r in folded)
    # permits: legacy cards, every status, expired-by-date, successive periods under one number
    assert any(r["STZ"] == "1" for r in tables["WP_XKZ"])
    assert {r["ZT"] for r in tables["WP_XKZ"]} == {"10", "20", "30", "40", "50", "60"}
    assert any(r["ZT"] == "30" and r["YXQZ"] < as_of for r in tables["WP_XKZ"])
    successive = [rows for rows in periods.values() if len(rows) > 1]
    assert successive
    assert all(len({r["XKZH"] for r in rows}) == 1 and rows[0]["ZT"] in ("40", "50") for rows in successive)
    assert {r["YWLX"] for r in tables["WP_YWJL"]} == {"XB", "TZ", "JH", "YQ", "BG", "ZX", "BH"}
    # an applicant under review is unknown to exit-entry
    applying = [s for s, rows in periods.items() if all(r["ZT"] == "10" for r in rows)]
    assert applying
    assert all(applicants[s]["HZHM"] not in at_exit_entry for s in applying)
    # cards: lost and replaced, pending; payments in every status
    by_number: dict[str, set[str]] = defaultdict(set)
    for card in tables["SBK_KXX"]:
        by_number[card["SHBZHM"]].add(card["KZT"])
    assert any({"1", "2"} <= states for states in by_number.values())
    assert any(states == {"0"} for states in by_number.values())
    assert {r["ZT"] for r in tables["BJT_FF"]} == {"P", "S", "R"}
    # left alone: foreigners in exit-entry who are no workers; look-alikes to be linked WEAK
    workers = {(_words(r["XM"]), r["CSRQ"]) for r in tables["WP_SQR"]}
    strangers = [r for r in tables["CRJ_RY"] if r["ZJHM"] not in owner]
    unrelated = [r for r in strangers if (_words(r["YWXM"]), r["CSRQ"].replace("/", "")) not in workers]
    look_alikes = [r for r in strangers if (_words(r["YWXM"]), r["CSRQ"].replace("/", "")) in workers]
    assert unrelated
    assert look_alikes
    assert {r["JLSY"] for r in tables["CRJ_JLXK"]} == {"GZ", "TQ", "XX"}
    assert any(r["AAE135"] not in owner and (_words(r["AAC003"]), str(r["AAC006"])) in workers
               for r in tables["AC01"])  # fmt: skip
