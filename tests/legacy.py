"""Independent answers straight from the legacy databases, to check the graph against.

These read the agencies' tables with plain SQL and apply DOMAIN.md's rules in Python,
deliberately not through the adapters."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from domain.records import Agency
from settings import Settings

STATUS = {
    "10": "UNDER_REVIEW",
    "20": "NOTICE_ISSUED",
    "30": "VALID",
    "40": "CANCELLED",
    "50": "EXPIRED",
    "60": "REJECTED",
}


async def rows(url: str, sql: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class CurrentPermit:
    sqrid: int
    number: str
    status: str
    category: str
    employer: str
    district: str
    valid_to: str


def current_permits(permit_rows: list[Any], today: date) -> dict[int, CurrentPermit]:
    """DOMAIN.md: the latest YXQQ not cancelled or rejected, else the latest; ties by XKID."""
    periods: dict[int, list[Any]] = defaultdict(list)
    for row in permit_rows:
        periods[row.SQRID].append(row)
    current = {}
    for sqrid, candidates in periods.items():
        open_ones = [r for r in candidates if r.ZT not in ("40", "60")]
        pool = open_ones or candidates
        best = max(pool, key=lambda r: (r.YXQQ, r.XKID))
        status = STATUS[best.ZT]
        if best.ZT == "30" and best.YXQZ and best.YXQZ < today.strftime("%Y%m%d"):
            status = "EXPIRED"
        current[sqrid] = CurrentPermit(
            sqrid, best.XKZH, status, best.RCLB, best.TYSHXYDM.strip(), best.GZDD.strip(), best.YXQZ
        )
    return current


async def legacy_view(settings: Settings, today: date) -> dict[str, Any]:
    """Per applicant: nationality, current permit, insured (a valid paying participation)."""
    wp_url = settings.source_urls[Agency.WORK_PERMIT_SYSTEM]
    applicants = await rows(wp_url, 'SELECT "SQRID", "GJ", "HZHM" FROM "WP_SQR"')
    permits = await rows(
        wp_url, 'SELECT "XKID","XKZH","SQRID","RCLB","ZT","YXQQ","YXQZ","TYSHXYDM","GZDD" FROM "WP_XKZ"'
    )
    insured_numbers = {
        r[0]
        for r in await rows(
            settings.source_urls[Agency.SOCIAL_INSURANCE],
            'SELECT DISTINCT "AAC001" FROM "AC02" WHERE "AAE100" = \'1\' AND "AAC008" = \'1\'',
        )
    }
    return {
        "applicants": applicants,
        "current": current_permits(permits, today),
        "insured_aac001": insured_numbers,
        "permits": permits,
    }


def count_by(items: list[tuple[str, ...]]) -> Counter[tuple[str, ...]]:
    return Counter(items)


async def insured_applicants(settings: Settings) -> set[int]:
    """Applicants (SQRID) with a valid paying participation, matched by passport number,
    nationality and birth date in plain SQL over both databases' rows."""
    from adapters.countries import ALPHA3_BY_NUMERIC

    wp_url = settings.source_urls[Agency.WORK_PERMIT_SYSTEM]
    passports = await rows(
        wp_url,
        'SELECT h."SQRID", h."HZHM", s."GJ", s."CSRQ" FROM "WP_HZLS" h JOIN "WP_SQR" s ON s."SQRID" = h."SQRID"',
    )
    by_passport = {(r.HZHM.strip(), r.GJ.strip()): (r.SQRID, r.CSRQ) for r in passports}
    insured = await rows(
        settings.source_urls[Agency.SOCIAL_INSURANCE],
        'SELECT DISTINCT p."AAE135", p."AAC161", p."AAC006" FROM "AC01" p JOIN "AC02" c ON c."AAC001" = p."AAC001" '
        "WHERE c.\"AAE100\" = '1' AND c.\"AAC008\" = '1'",
    )
    found = set()
    for row in insured:
        match = by_passport.get((row.AAE135.strip(), ALPHA3_BY_NUMERIC.get(row.AAC161, "")))
        if match is not None and str(row.AAC006) == match[1]:
            found.add(match[0])
    return found


async def statistics_dimensions(settings: Settings, today: date) -> list[dict[str, str]]:
    """Per applicant, the values of the six statistics dimensions as `workforceStatistics`
    spells them (NONE for a permit value of an applicant without a current permit)."""
    view = await legacy_view(settings, today)
    insured = await insured_applicants(settings)
    persons = []
    for applicant in view["applicants"]:
        current: CurrentPermit | None = view["current"].get(applicant.SQRID)
        persons.append(
            {
                "NATIONALITY": applicant.GJ,
                "TALENT_CATEGORY": current.category if current else "NONE",
                "PERMIT_STATUS": current.status if current else "NONE",
                "WORK_DISTRICT": current.district if current else "NONE",
                "EMPLOYER": current.employer if current else "NONE",
                "INSURED": "true" if applicant.SQRID in insured else "false",
            }
        )
    return persons
