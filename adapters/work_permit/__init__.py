"""The work-permit system adapter: applicants, permit periods, business records."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, case, func, or_, select, tuple_
from sqlalchemy.sql import Executable, Subquery

from adapters.base import (
    KEYS,
    Group,
    GroupIndex,
    PagedPerGroup,
    RecordList,
    SqlSource,
    UnmappableValue,
    answer_by_key,
    blank_to_none,
    by_group,
    code,
    fetch_all,
    first_of_group,
    group_by_key,
    parse_compact_date,
    required,
    split_mapped,
)
from adapters.work_permit import mapping
from adapters.work_permit.tables import WP_HZLS, WP_SQR, WP_XKZ, WP_YWJL, metadata
from domain.errors import SourceDataInvalid
from domain.records import (
    Agency,
    Applicant,
    Employer,
    Page,
    PassportPeriod,
    PermitEvent,
    TalentCategory,
    WorkPermit,
    WorkPermitStatus,
)

# The record an identity link to an applicant names (its owner key: SQRID); permit periods
# belong to their applicant.
APPLICANT_LINK = WP_SQR.name


@dataclass(frozen=True, slots=True)
class PermitCriteria:
    """Filters on a person's current permit period, evaluated in this system's SQL."""

    status: WorkPermitStatus | None = None
    category: TalentCategory | None = None
    employer_credit_code: str | None = None
    work_district: str | None = None

    def __bool__(self) -> bool:
        return any(
            v is not None for v in (self.status, self.category, self.employer_credit_code, self.work_district)
        )


@dataclass(frozen=True, slots=True)
class CurrentPermitSummary:
    """What the person index keeps of a current period (for statistics)."""

    applicant_key: str
    category: TalentCategory | None
    raw_status: WorkPermitStatus | None
    valid_to: date | None
    work_district: str | None
    employer_credit_code: str | None


def _current_periods(partition: ColumnElement[Any], where: ColumnElement[bool] | None = None) -> Subquery:
    """Periods ranked by DOMAIN.md's rule: the latest YXQQ not cancelled or rejected, else the
    latest period; ties by highest XKID. Rank 1 is the current one."""
    rank = func.row_number().over(partition_by=partition, order_by=_current_first(WP_XKZ.c))
    statement = select(WP_XKZ, rank.label("rank"))
    if where is not None:
        statement = statement.where(where)
    return statement.subquery("periods")


def _current_first(periods: Any) -> tuple[ColumnElement[Any], ...]:
    """DOMAIN.md's order of a person's periods, the current one first (`periods`: the columns
    of WP_XKZ or of a subquery of it)."""
    return (case((periods.ZT.in_(mapping.ENDED_CODES), 1), else_=0), periods.YXQQ.desc(), periods.XKID.desc())


# The reads' statements, built once: each batch binds its keys (`KEYS`).
PERMITS_BY_APPLICANT = select(WP_XKZ).where(WP_XKZ.c.SQRID.in_(KEYS)).order_by(WP_XKZ.c.XKID.desc())
# Each applicant record's current period, all in DOMAIN.md's order: a person's current period
# is the first of their records' (the rule is one total order, so the best of the bests).
_APPLICANT_PERIODS = _current_periods(WP_XKZ.c.SQRID, WP_XKZ.c.SQRID.in_(KEYS))
CURRENT_PERMITS_BY_APPLICANT = (
    select(_APPLICANT_PERIODS)
    .where(_APPLICANT_PERIODS.c.rank == 1)
    .order_by(*_current_first(_APPLICANT_PERIODS.c))
)
_NUMBERED_PERIODS = _current_periods(WP_XKZ.c.XKZH, WP_XKZ.c.XKZH.in_(KEYS))
CURRENT_PERMITS_BY_NUMBER = select(_NUMBERED_PERIODS).where(_NUMBERED_PERIODS.c.rank == 1)
PERMITS_BY_LETTER = select(WP_XKZ).where(WP_XKZ.c.TZSBH.in_(KEYS))
PERMITS_BY_ID = select(WP_XKZ).where(WP_XKZ.c.XKID.in_(KEYS))
EVENTS_BY_PERMIT = (
    select(WP_YWJL).where(WP_YWJL.c.XKID.in_(KEYS)).order_by(WP_YWJL.c.XKID, WP_YWJL.c.SQRQ, WP_YWJL.c.BJRQ)
)
_EMPLOYER_PERIODS = (
    select(
        WP_XKZ.c.TYSHXYDM,
        WP_XKZ.c.DWMC,
        func.row_number().over(partition_by=WP_XKZ.c.TYSHXYDM, order_by=WP_XKZ.c.XKID.desc()).label("rank"),
    )
    .where(WP_XKZ.c.TYSHXYDM.in_(KEYS))
    .subquery()
)
EMPLOYERS_BY_CREDIT_CODE = select(_EMPLOYER_PERIODS).where(_EMPLOYER_PERIODS.c.rank == 1)
PERMITS_BY_EMPLOYER = PagedPerGroup([WP_XKZ], WP_XKZ.c.TYSHXYDM, [WP_XKZ.c.XKID])
PERMIT_COUNTS_BY_EMPLOYER = (
    select(WP_XKZ.c.TYSHXYDM, func.count().label("n"))
    .where(WP_XKZ.c.TYSHXYDM.in_(KEYS))
    .group_by(WP_XKZ.c.TYSHXYDM)
)
NAMES_BY_APPLICANT = select(WP_SQR.c.XM).where(WP_SQR.c.SQRID.in_(KEYS))


@functools.cache
def _expiring_batch_statements(for_employer: bool) -> tuple[Executable, Executable]:
    """The statements of `expiring_permits_by_key`, built once with bound parameters: built per
    batch, their expression objects were garbage that only a full collection frees, so an
    export's memory grew with its batches. The batch is a subquery, not a list of keys, so
    every batch runs the same SQL (one entry in the driver's statement cache)."""
    batch = (
        select(WP_XKZ.c.XKID, WP_XKZ.c.XKZH)
        .where(
            WP_XKZ.c.ZT == "30",
            WP_XKZ.c.YXQZ >= bindparam("from_day"),
            WP_XKZ.c.YXQZ <= bindparam("until_day"),
            *([WP_XKZ.c.TYSHXYDM == bindparam("employer")] if for_employer else []),
            WP_XKZ.c.XKID > bindparam("after"),
        )
        .order_by(WP_XKZ.c.XKID)
        .limit(bindparam("first"))
        .subquery("batch")
    )
    extent = select(func.count(), func.max(batch.c.XKID))
    periods = _current_periods(WP_XKZ.c.XKZH, WP_XKZ.c.XKZH.in_(select(batch.c.XKZH)))
    current = (
        select(periods)
        .where(periods.c.rank == 1, periods.c.XKID.in_(select(batch.c.XKID)))
        .order_by(periods.c.XKID)
    )
    return extent, current


def _status_condition(periods: Subquery, status: WorkPermitStatus) -> ColumnElement[bool]:
    """Periods of the status on the day bound as `today_text`."""
    zt, valid_to = periods.c.ZT, periods.c.YXQZ
    today_text = bindparam("today_text", type_=valid_to.type)
    if status is WorkPermitStatus.VALID:
        return and_(zt == "30", or_(valid_to == "", valid_to >= today_text))
    if status is WorkPermitStatus.EXPIRED:
        return or_(zt == "50", and_(zt == "30", valid_to != "", valid_to < today_text))
    return zt == mapping.STATUS_CODE[status]


@functools.cache
def _applicants_matching(
    status: WorkPermitStatus | None, by_category: bool, by_employer: bool, by_district: bool
) -> Any:
    """SQRIDs whose current period meets the criteria given, built once per combination; the
    values are bound (`today_text`, `category`, `employer`, `district`)."""
    periods = _current_periods(WP_XKZ.c.SQRID)
    conditions: list[ColumnElement[bool]] = [periods.c.rank == 1]
    if status is not None:
        conditions.append(_status_condition(periods, status))
    if by_category:
        conditions.append(periods.c.RCLB == bindparam("category"))
    if by_employer:
        conditions.append(periods.c.TYSHXYDM == bindparam("employer"))
    if by_district:
        conditions.append(periods.c.GZDD == bindparam("district"))
    return select(periods.c.SQRID).where(and_(*conditions))


class WorkPermitSystem(SqlSource):
    agency = Agency.WORK_PERMIT_SYSTEM
    metadata = metadata

    def _permit(self, row: Any, today: date) -> WorkPermit | SourceDataInvalid:
        return self.map_one(row.XKID, row, lambda r: mapping.work_permit(r, today))

    async def permits_by_applicant(
        self, groups: Sequence[Group], today: date
    ) -> list[RecordList[WorkPermit]]:
        """Every period of each person's applicant records, newest first."""
        index = GroupIndex.of(groups, as_int=True)
        async with self.connect() as conn:
            rows = await fetch_all(conn, PERMITS_BY_APPLICANT, {"keys": index.keys})
        return by_group(index.count, ((index(r.SQRID), self._permit(r, today)) for r in rows))

    async def current_permit_by_applicant(
        self, groups: Sequence[Group], today: date
    ) -> list[WorkPermit | SourceDataInvalid | None]:
        """Each person's current period (DOMAIN.md's rule, decided in SQL)."""
        index = GroupIndex.of(groups, as_int=True)
        async with self.connect() as conn:
            rows = await fetch_all(conn, CURRENT_PERMITS_BY_APPLICANT, {"keys": index.keys})
        return first_of_group(index.count, ((index(r.SQRID), self._permit(r, today)) for r in rows))

    async def current_permit_by_number(
        self, numbers: Sequence[str], today: date
    ) -> list[WorkPermit | SourceDataInvalid | None]:
        async with self.connect() as conn:
            rows = await fetch_all(conn, CURRENT_PERMITS_BY_NUMBER, {"keys": list(numbers)})
        return answer_by_key(numbers, ((r.XKZH, self._permit(r, today)) for r in rows))

    async def current_permit_by_letter(
        self, letter_numbers: Sequence[str], today: date
    ) -> list[WorkPermit | SourceDataInvalid | None]:
        """The period a Notification Letter was issued for."""
        async with self.connect() as conn:
            rows = await fetch_all(conn, PERMITS_BY_LETTER, {"keys": list(letter_numbers)})
        return answer_by_key(letter_numbers, ((r.TZSBH, self._permit(r, today)) for r in rows))

    async def permits_by_id(
        self, permit_keys: Sequence[str], today: date
    ) -> list[WorkPermit | SourceDataInvalid | None]:
        ids = [int(k) for k in permit_keys if k.isdigit()]
        async with self.connect() as conn:
            rows = await fetch_all(conn, PERMITS_BY_ID, {"keys": ids})
        return answer_by_key(permit_keys, ((str(r.XKID), self._permit(r, today)) for r in rows))

    async def events_by_permit(self, permit_keys: Sequence[str]) -> list[RecordList[PermitEvent]]:
        """The business records of each period, oldest first."""
        ids = [int(k) for k in permit_keys]
        async with self.connect() as conn:
            rows = await fetch_all(conn, EVENTS_BY_PERMIT, {"keys": ids})

        def pair(row: Any) -> tuple[str, PermitEvent | SourceDataInvalid]:
            key = f"{row.XKID}/{row.YWLX}/{row.SQRQ}"
            return str(row.XKID), self.map_one(key, row, lambda r: mapping.permit_event(r, key))

        return group_by_key(permit_keys, (pair(r) for r in rows))

    async def employers_by_credit_code(self, credit_codes: Sequence[str]) -> list[Employer | None]:
        """The employer as its newest permit period names it."""
        async with self.connect() as conn:
            rows = await fetch_all(conn, EMPLOYERS_BY_CREDIT_CODE, {"keys": list(credit_codes)})
        return answer_by_key(
            credit_codes, ((r.TYSHXYDM, mapping.employer(r.TYSHXYDM, r.DWMC, r.TYSHXYDM)) for r in rows)
        )

    async def permits_of_employers(
        self, credit_codes: Sequence[str], first: int, after: tuple[Any, ...] | None, today: date
    ) -> list[Page[WorkPermit | SourceDataInvalid]]:
        """A page of every period naming each employer, newest first, with each total."""
        index = GroupIndex.of([(credit_code,) for credit_code in credit_codes])
        async with self.connect() as conn:
            rows = await PERMITS_BY_EMPLOYER.rows(conn, index, first, after)
            counted = await fetch_all(conn, PERMIT_COUNTS_BY_EMPLOYER, {"keys": index.keys})
        totals = {r.TYSHXYDM: r.n for r in counted}
        pages = PERMITS_BY_EMPLOYER.pages(
            index, first, rows, lambda r: self._permit(r, today), lambda r: (r.XKID,)
        )
        return [
            Page(page.items, page.positions, page.has_next, totals.get(credit_code, 0))
            for page, credit_code in zip(pages, credit_codes, strict=True)
        ]

    async def expiring_permits(
        self, today: date, until: date, first: int, after: tuple[Any, ...] | None, employer: str | None = None
    ) -> Page[WorkPermit | SourceDataInvalid]:
        """Current periods, valid, ending from today to `until` inclusive; by end date, then
        number; only those naming `employer` when one is given."""
        periods = _current_periods(WP_XKZ.c.XKZH)
        where = and_(
            periods.c.rank == 1,
            periods.c.ZT == "30",
            periods.c.YXQZ >= mapping.compact_date(today),
            periods.c.YXQZ <= mapping.compact_date(until),
            *([periods.c.TYSHXYDM == employer] if employer else []),
        )
        statement = select(periods).where(where)
        if after is not None:
            statement = statement.where(
                tuple_(periods.c.YXQZ, periods.c.XKZH) > tuple_(str(after[0]), str(after[1]))
            )
        statement = statement.order_by(periods.c.YXQZ, periods.c.XKZH).limit(first + 1)
        async with self.connect() as conn:
            rows = await fetch_all(conn, statement)
            total = (await conn.execute(select(func.count()).select_from(periods).where(where))).scalar_one()
        return Page(
            items=[self._permit(r, today) for r in rows[:first]],
            positions=[(r.YXQZ, r.XKZH) for r in rows[:first]],
            has_next=len(rows) > first,
            total=total,
        )

    async def expiring_permits_by_key(
        self, today: date, until: date, first: int, after: int | None, employer: str | None = None
    ) -> tuple[list[WorkPermit | SourceDataInvalid], int | None]:
        """What `expiring_permits` lists, in period key (XKID) order, a batch at a time in time
        linear in the batch: the next `first` valid periods ending in the range are found on
        the primary key (on `ix_WP_XKZ_TYSHXYDM` for one employer), and only their permits'
        periods are ranked, to keep the current ones. Answers the batch (fewer than `first`
        when some periods are not current) and the key to read on after (None: no more)."""
        extent, current = _expiring_batch_statements(employer is not None)
        params = {
            "from_day": mapping.compact_date(today),
            "until_day": mapping.compact_date(until),
            "employer": employer,
            "after": after if after is not None else -1,
            "first": first,
        }
        async with self.connect() as conn:
            size, last = (await conn.execute(extent, params)).one()
            rows = (await conn.execute(current, params)).all() if size else []
        return [self._permit(r, today) for r in rows], last if size == first else None

    async def applicant_keys_matching(self, criteria: PermitCriteria, today: date) -> list[str]:
        """SQRIDs whose current period meets every criterion (evaluated here, in SQL)."""
        statement = _applicants_matching(
            criteria.status,
            criteria.category is not None,
            criteria.employer_credit_code is not None,
            criteria.work_district is not None,
        )
        parameters = {
            "today_text": mapping.compact_date(today),
            "category": criteria.category.value if criteria.category is not None else None,
            "employer": criteria.employer_credit_code,
            "district": criteria.work_district,
        }
        async with self.connect() as conn:
            rows = await fetch_all(conn, statement, parameters)
        return [str(r.SQRID) for r in rows]

    async def names_by_applicant(self, keys: Sequence[str]) -> list[str]:
        """The names applicants gave, as in their passports, for a name check."""
        async with self.connect() as conn:
            rows = await fetch_all(conn, NAMES_BY_APPLICANT, {"keys": [int(k) for k in keys]})
        return [r.XM for r in rows]

    async def current_permit_summaries(self) -> list[CurrentPermitSummary]:
        """Every applicant's current period, for the hub's person index."""
        periods = _current_periods(WP_XKZ.c.SQRID)
        statement = select(
            periods.c.SQRID, periods.c.RCLB, periods.c.ZT, periods.c.YXQZ, periods.c.GZDD, periods.c.TYSHXYDM
        ).where(periods.c.rank == 1)
        async with self.connect() as conn:
            rows = await fetch_all(conn, statement)
        summaries = []
        for row in rows:
            try:
                valid_to = parse_compact_date(row.YXQZ, "YXQZ")
                status = code(mapping.STATUS, row.ZT, "ZT")
                category = code(mapping.CATEGORY, row.RCLB, "RCLB")
            except UnmappableValue:
                valid_to, status, category = None, None, None
            summaries.append(
                CurrentPermitSummary(
                    applicant_key=str(row.SQRID),
                    category=category,
                    raw_status=status,
                    valid_to=valid_to,
                    work_district=blank_to_none(row.GZDD),
                    employer_credit_code=blank_to_none(row.TYSHXYDM),
                )
            )
        return summaries

    async def all_applicants(self) -> tuple[list[Applicant], list[SourceDataInvalid]]:
        """Every applicant with passports, permit numbers and letters: what identity linking reads."""
        async with self.connect() as conn:
            applicants = await fetch_all(conn, select(WP_SQR).order_by(WP_SQR.c.SQRID))
            passports = await fetch_all(conn, select(WP_HZLS).order_by(WP_HZLS.c.SQRID, WP_HZLS.c.QSRQ))
            permits = await fetch_all(
                conn, select(WP_XKZ.c.SQRID, WP_XKZ.c.XKZH, WP_XKZ.c.TZSBH).order_by(WP_XKZ.c.XKID)
            )
        history: dict[int, list[Any]] = {}
        for row in passports:
            history.setdefault(row.SQRID, []).append(row)
        numbers: dict[int, dict[str, None]] = {}
        letters: dict[int, dict[str, None]] = {}
        for row in permits:
            numbers.setdefault(row.SQRID, {})[row.XKZH.strip()] = None
            if blank_to_none(row.TZSBH):
                letters.setdefault(row.SQRID, {})[row.TZSBH.strip()] = None
        return split_mapped(
            self.map_one(
                row.SQRID,
                row,
                lambda r: _applicant(
                    r,
                    history.get(r.SQRID, []),
                    list(numbers.get(r.SQRID, {})),
                    list(letters.get(r.SQRID, {})),
                ),
            )
            for row in applicants
        )


def _applicant(row: Any, history: list[Any], permit_numbers: list[str], letters: list[str]) -> Applicant:
    nationality = mapping.nationality(row.GJ)
    current_number = required(blank_to_none(row.HZHM), "HZHM")
    passports = [
        PassportPeriod(
            number=p.HZHM.strip(),
            nationality=nationality,
            valid_from=parse_compact_date(p.QSRQ, "QSRQ"),
            valid_to=parse_compact_date(p.ZZRQ, "ZZRQ"),
            current=p.HZHM.strip() == current_number,
        )
        for p in history
    ]
    if not any(p.current for p in passports):
        passports.append(PassportPeriod(current_number, nationality, None, None, True))
    return Applicant(
        key=str(row.SQRID),
        name_upper=required(blank_to_none(row.XM), "XM"),
        sex=code(mapping.SEX, row.XB, "XB"),
        birth_date=required(parse_compact_date(row.CSRQ, "CSRQ"), "CSRQ"),
        nationality=nationality,
        passport_number=current_number,
        passports=tuple(passports),
        permit_numbers=tuple(permit_numbers),
        notification_letters=tuple(letters),
    )
