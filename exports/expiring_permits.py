"""`expiring-permits`, person-level: the current valid permits ending within `withinDays`
days, with their holders' names, the permits `expiringWorkPermits` lists, an EMPLOYER's only
those naming it. Read in keyset batches in the order of the work-permit table's primary key
(period id), which the agency's schema already indexes: each batch costs what it holds, and
memory holds one batch at a time (docs/decisions.md, "Exports")."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from datetime import date, timedelta
from typing import TypeVar

from adapters.work_permit import APPLICANT_LINK
from domain.errors import SourceDataInvalid
from domain.records import WorkPermit
from exports.table import Batch, Column, Extract, Params, Reader
from resolvers.query import check_within_days

COLUMNS = (
    Column("permitNumber"),
    Column("validTo", "date"),
    Column("category"),
    Column("workDistrict"),
    Column("employerCreditCode"),
    Column("employerName"),
    Column("personId"),
    Column("surname"),
    Column("givenNames"),
    Column("nationality"),
)
# What a row shows of its person, as the graph's audit names the fields read.
AUDITED_FIELDS = (
    "Person.id",
    "Person.name",
    "Person.nationality",
    "WorkPermit.number",
    "WorkPermit.validTo",
    "WorkPermit.category",
    "WorkPermit.workDistrict",
    "WorkPermit.employer",
    "WorkPermit.holder",
    "Employer.creditCode",
    "Employer.name",
)
# The graph's fields the export answers from: a caller's grant must read every one.
READS = (
    ("Query", "expiringWorkPermits"),
    ("Person", "name"),
    ("WorkPermit", "validTo"),
    ("WorkPermit", "holder"),
    ("WorkPermit", "workDistrict"),
    ("WorkPermit", "employer"),
    ("Employer", "creditCode"),
    ("Employer", "name"),
)

log = logging.getLogger("hub.exports")
T = TypeVar("T")


async def open_expiring_permits(params: Params, reader: Reader) -> Extract:
    within_days = params.integer("withinDays")
    check_within_days(within_days)
    params.check_all_read()
    until = reader.today + timedelta(days=within_days)
    # The person index knows how many (as linking last saw them) in one cheap count.
    expected = await reader.store.count_expiring(reader.today, until, reader.employer)
    return Extract(COLUMNS, _batches(reader, until), rows=expected)


async def _batches(reader: Reader, until: date) -> AsyncGenerator[Batch, None]:
    after: int | None = None
    while True:
        permits, after = await reader.sources.work_permits.expiring_permits_by_key(
            reader.today, until, reader.batch_rows, after, employer=reader.employer
        )
        yield await _batch(reader, permits)
        if after is None:
            return


async def _batch(reader: Reader, items: list[WorkPermit | SourceDataInvalid]) -> Batch:
    permits = [p for p in items if isinstance(p, WorkPermit)]
    if len(permits) < len(items):
        # A row the work-permit system holds but cannot be read is left out, as the graph
        # answers it as an error at its item; only how many is logged, never whose.
        log.warning("expiring-permits export left out %d unreadable permit rows", len(items) - len(permits))
    keys = [(APPLICANT_LINK, p.owner) for p in permits]
    owners = (await reader.store.person_ids_by_owner(_padded(keys, reader.batch_rows)))[: len(keys)]
    known = list(dict.fromkeys(i for i in owners if i is not None))
    found = await reader.store.persons_by_id(_padded(known, reader.batch_rows))
    persons = {p.id: p for p in found if p is not None}
    rows = []
    for permit, person_id in zip(permits, owners, strict=True):
        person = persons.get(person_id) if person_id is not None else None
        employer = permit.employer
        rows.append(
            (
                permit.number,
                permit.valid_to,
                permit.category.value,
                permit.work_district,
                employer.credit_code if employer else None,
                employer.name if employer else None,
                reader.ids.encode("Person", person.id) if person else None,
                person.surname if person else None,
                person.given_names if person else None,
                person.nationality if person else None,
            )
        )
    return Batch(rows, [p for p in known if p in persons])


def _padded(values: list[T], size: int) -> list[T]:
    """The list made `size` long by repeating its last value, so that every batch's `IN (...)`
    has as many parameters and runs the same SQL: the drivers' statement caches (sqlite3's,
    asyncpg's) then keep one statement, not one per batch length, which grew the memory with
    the number of batches."""
    return values + values[-1:] * (size - len(values)) if values else values
