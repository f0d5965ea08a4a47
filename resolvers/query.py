"""Resolvers of the root query fields."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from access.disclosure import rounded
from access.policy import Grant
from adapters.beijing_pass.spec import PAYMENT_BY_KEY
from adapters.card_service.spec import ELECTRONIC_CARD_BY_ID
from adapters.identifiers import DISTRICT_CODE
from adapters.social_insurance import INSURED_LINK
from adapters.work_permit import APPLICANT_LINK, PermitCriteria
from adapters.work_permit.spec import PERMIT_BY_ID
from domain.errors import ClientError, SourceDataInvalid
from domain.evidence import IdentifierKind
from domain.records import CallerRole, Page, StatisticsDimension, TalentCategory, WorkPermitStatus
from identity.linking import passport_identifier
from identity.store import HubStore, KeyFilter, PersonCore
from opaque.cursors import page_size
from resolvers.context import Info
from resolvers.fetch import deliver
from resolvers.permit import employer_by_credit_code

PERSONS = "persons"
EXPIRING = "expiring"
MAX_WITHIN_DAYS = 365


@dataclass(frozen=True, slots=True)
class Lookup:
    """One identifier of `PersonLookup` (exactly one is given)."""

    id: str | None = None
    work_permit_number: str | None = None
    social_security_number: str | None = None
    card_number: str | None = None
    passport: tuple[str, str] | None = None
    residence_permit_number: str | None = None


@dataclass(frozen=True, slots=True)
class PersonCriteria:
    nationality: str | None = None
    permit_status: WorkPermitStatus | None = None
    category: TalentCategory | None = None
    employer_credit_code: str | None = None
    work_district: str | None = None
    insured: bool | None = None


async def node(info: Info, global_id: str) -> Any:
    type_name, key = info.context.ids.decode(global_id)
    return await node_by_key(info, type_name, key)


async def node_by_key(info: Info, type_name: str, key: str) -> Any:
    loaders = info.context.loaders
    match type_name:
        case "Person":
            return await loaders.person_by_id.load(int(key)) if key.isdigit() else None
        case "WorkPermit":
            return deliver(info, await loaders.keyed(PERMIT_BY_ID).load(key))
        case "ElectronicCard":
            return await loaders.keyed(ELECTRONIC_CARD_BY_ID).load(key)
        case "Employer":
            return await employer_by_credit_code(info, key)
        case "Notification":
            return await loaders.notification_by_id.load(int(key)) if key.isdigit() else None
        case "BenefitPayment":
            return _readable(await loaders.keyed(PAYMENT_BY_KEY).load(key))
    return None


def _readable(record: Any) -> Any:
    """The record, or its unreadable row's error at the field."""
    if isinstance(record, SourceDataInvalid):
        raise record
    return record


async def person(info: Info, lookup: Lookup) -> PersonCore | None:
    loaders = info.context.loaders
    if lookup.id is not None:
        type_name, key = info.context.ids.decode(lookup.id, "lookup.id")
        if type_name != "Person" or not key.isdigit():
            raise ClientError("lookup.id", f"is the id of a {type_name}, not of a Person")
        return await loaders.person_by_id.load(int(key))
    identifier = _identifier(lookup)
    person_id = await loaders.person_id_by_identifier.load(identifier)
    return await loaders.person_by_id.load(person_id) if person_id is not None else None


def _identifier(lookup: Lookup) -> tuple[str, str]:
    if lookup.work_permit_number is not None:
        return IdentifierKind.WORK_PERMIT_NUMBER.value, lookup.work_permit_number.strip()
    if lookup.social_security_number is not None:
        return IdentifierKind.SOCIAL_SECURITY_NUMBER.value, lookup.social_security_number.strip().upper()
    if lookup.card_number is not None:
        return IdentifierKind.CARD_NUMBER.value, lookup.card_number.strip().upper()
    if lookup.passport is not None:
        number, nationality = lookup.passport
        return IdentifierKind.PASSPORT.value, passport_identifier(number, nationality.strip().upper())
    if lookup.residence_permit_number is not None:
        return IdentifierKind.RESIDENCE_PERMIT_NUMBER.value, lookup.residence_permit_number.strip().upper()
    raise ClientError("lookup", "needs exactly one identifier")


async def persons(
    info: Info, criteria: PersonCriteria, first: int | None, after: str | None
) -> tuple[Page[PersonCore], str]:
    """A page of persons in id order; each filter is answered by its source's SQL and the
    answers are joined to persons through the link table, in the hub store's SQL."""
    size = page_size(first)
    position = info.context.cursors.decode(PERSONS, after)
    context = info.context
    check_criteria(criteria)
    key_filters: list[KeyFilter] = []
    permit_criteria = PermitCriteria(
        criteria.permit_status, criteria.category, criteria.employer_credit_code, criteria.work_district
    )
    if permit_criteria:
        keys = await context.sources.work_permits.applicant_keys_matching(permit_criteria, context.today)
        key_filters.append(KeyFilter(APPLICANT_LINK, keys))
    if criteria.insured is not None:
        keys = await context.sources.insurance.insured_keys()
        key_filters.append(KeyFilter(INSURED_LINK, keys, include=criteria.insured))
    ids = await context.store.page_persons(
        nationality=criteria.nationality,
        key_filters=key_filters,
        first=size,
        after=int(position[0]) if position else None,
        within=context.scope.person_ids,
    )
    people = await context.loaders.person_by_id.load_many(ids.items)
    return Page([p for p in people if p is not None], ids.positions, ids.has_next, ids.total), PERSONS


def check_criteria(criteria: PersonCriteria) -> None:
    if criteria.nationality is not None and len(criteria.nationality) != 3:
        raise ClientError("filter.nationality", "must be an ISO 3166-1 alpha-3 code")
    if criteria.work_district is not None and not DISTRICT_CODE.match(criteria.work_district):
        raise ClientError("filter.workDistrict", "must be a 6-digit GB/T 2260 division code")


async def expiring_work_permits(
    info: Info, within_days: int, first: int | None, after: str | None
) -> tuple[Page[Any], str]:
    check_within_days(within_days)
    size = page_size(first)
    position = info.context.cursors.decode(EXPIRING, after)
    today = info.context.today
    page = await info.context.sources.work_permits.expiring_permits(
        today, today + timedelta(days=within_days), size, position, employer=info.context.scope.employer
    )
    (owned,) = await info.context.loaders.owned(APPLICANT_LINK, [page])
    return owned, EXPIRING


def check_within_days(within_days: int) -> None:
    if not 1 <= within_days <= MAX_WITHIN_DAYS:
        raise ClientError("withinDays", f"must be from 1 to {MAX_WITHIN_DAYS}")


@dataclass(frozen=True, slots=True)
class Statistic:
    keys: tuple[tuple[StatisticsDimension, str], ...]
    count: int


async def workforce_statistics(
    info: Info, group_by: Sequence[StatisticsDimension], criteria: PersonCriteria
) -> list[Statistic]:
    """Counts by GROUP BY in SQL, each rounded by its cell key (access/disclosure.py); a cell
    that rounds to 0 is not listed. A filter only slices the table, so a cell has the same
    persons, and so the same count, in every query that shows it."""
    return await shown_statistics(info.context.store, info.context.today, group_by, criteria)


async def shown_statistics(
    store: HubStore, today: date, group_by: Sequence[StatisticsDimension], criteria: PersonCriteria
) -> list[Statistic]:
    """What `workforceStatistics` shows, for any reader of the hub store (exports too)."""
    if len(set(group_by)) != len(group_by):
        raise ClientError("groupBy", "names a dimension twice")
    check_criteria(criteria)
    counted = await store.statistics(group_by, _fixed_values(criteria), today)
    shown = [Statistic(c.keys, rounded(c.count, c.key_sum)) for c in counted]
    return [s for s in shown if s.count > 0]


def _fixed_values(criteria: PersonCriteria) -> dict[StatisticsDimension, str]:
    """The filter as fixed values of the statistics dimensions, spelled as the index spells them."""
    fixed: dict[StatisticsDimension, str | None] = {
        StatisticsDimension.NATIONALITY: criteria.nationality,
        StatisticsDimension.PERMIT_STATUS: criteria.permit_status.value if criteria.permit_status else None,
        StatisticsDimension.TALENT_CATEGORY: criteria.category.value if criteria.category else None,
        StatisticsDimension.EMPLOYER: criteria.employer_credit_code,
        StatisticsDimension.WORK_DISTRICT: criteria.work_district,
        StatisticsDimension.INSURED: None if criteria.insured is None else str(criteria.insured).lower(),
    }
    return {d: v for d, v in fixed.items() if v is not None}


async def me(info: Info) -> PersonCore | None:
    """The cardholder's own person; other callers have no person of their own."""
    caller = info.context.caller
    if caller.role is not CallerRole.CARDHOLDER or caller.person_id is None:
        return None
    return await info.context.loaders.person_by_id.load(caller.person_id)


def access_grants(info: Info) -> Grant:
    return info.context.grant
