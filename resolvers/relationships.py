"""Every relationship between records, declared once: the agency whose records it reads, and
the adapter's batch read that answers many parents at once.

A person's relationships are keyed by the person's owner keys in that agency (from identity
links); the per-request DataLoaders in `resolvers/loaders.py` are built from these
declarations, and so could a planned executor be (one call per level for all parents).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from adapters import Sources
from adapters.base import Group
from adapters.beijing_pass import PAID_CARD_LINK
from adapters.card_service import ELECTRONIC_CARD_LINK
from adapters.exit_entry import TRAVELLER_LINK
from adapters.work_permit import APPLICANT_LINK
from domain.records import Agency

BatchRead = Callable[[Sequence[Any]], Awaitable[Sequence[Any]]]


@dataclass(frozen=True)
class PersonRelationship:
    """Records of one agency that belong to a person, read per owner-key group."""

    name: str
    agency: Agency
    read: Callable[[Sources, date], BatchRead]
    many: bool = True  # False: the read answers each person's current record


@dataclass(frozen=True)
class PagedPersonRelationship:
    """Like PersonRelationship, but a keyset page per person: keys are (group, first, after)."""

    name: str
    agency: Agency
    read: Callable[[Sources, Sequence[Group], int, tuple[Any, ...] | None, date], Awaitable[Sequence[Any]]]


WORK_PERMITS = PersonRelationship(
    "work_permits",
    Agency.WORK_PERMIT_SYSTEM,
    lambda s, today: lambda g: s.work_permits.permits_by_applicant(g, today),
)
CURRENT_WORK_PERMIT = PersonRelationship(
    "current_work_permit",
    Agency.WORK_PERMIT_SYSTEM,
    lambda s, today: lambda g: s.work_permits.current_permit_by_applicant(g, today),
    many=False,
)
INSURED_PERSON = PersonRelationship(
    "insured_person", Agency.SOCIAL_INSURANCE, lambda s, _today: s.insurance.insured_by_person, many=False
)
INSURANCE_PARTICIPATIONS = PersonRelationship(
    "insurance_participations",
    Agency.SOCIAL_INSURANCE,
    lambda s, _today: s.insurance.participations_by_person,
)
SOCIAL_SECURITY_CARDS = PersonRelationship(
    "social_security_cards", Agency.CARD_SERVICE, lambda s, _today: s.cards.cards_by_person
)
ELECTRONIC_CARDS = PersonRelationship(
    "electronic_cards", Agency.CARD_SERVICE, lambda s, _today: s.cards.electronic_cards_by_person
)
VISAS = PersonRelationship("visas", Agency.EXIT_ENTRY, lambda s, _today: s.exit_entry.visas_by_person)
RESIDENCE_PERMITS = PersonRelationship(
    "residence_permits",
    Agency.EXIT_ENTRY,
    lambda s, today: lambda g: s.exit_entry.residence_permits_by_person(g, today),
)
ENTRIES = PagedPersonRelationship(
    "entries",
    Agency.EXIT_ENTRY,
    lambda s, groups, first, after, _today: s.exit_entry.entries_by_person(groups, first, after),
)
BENEFIT_PAYMENTS = PagedPersonRelationship(
    "benefit_payments",
    Agency.BEIJING_PASS,
    lambda s, groups, first, after, _today: s.beijing_pass.payments_by_person(groups, first, after),
)


@dataclass(frozen=True)
class KeyedRead:
    """A batch read by the records' own keys (not per person). `linked_as` is the identity
    link that names whose the records are (their owner key's): the loader notes each record's
    person with it, in one statement of the hub store per batch; None for records of nobody
    (employers)."""

    name: str
    agency: Agency | None
    read: Callable[[Sources, date], BatchRead]
    linked_as: str | None = None


PERMIT_BY_NUMBER = KeyedRead(
    "permit_by_number",
    Agency.WORK_PERMIT_SYSTEM,
    lambda s, today: lambda keys: s.work_permits.current_permit_by_number(keys, today),
    APPLICANT_LINK,
)
PERMIT_BY_ID = KeyedRead(
    "permit_by_id",
    Agency.WORK_PERMIT_SYSTEM,
    lambda s, today: lambda keys: s.work_permits.permits_by_id(keys, today),
    APPLICANT_LINK,
)
PERMIT_BY_LETTER = KeyedRead(
    "permit_by_letter",
    Agency.WORK_PERMIT_SYSTEM,
    lambda s, today: lambda keys: s.work_permits.current_permit_by_letter(keys, today),
    APPLICANT_LINK,
)
# A period's steps: read under the period, whose person they share (PermitEvent.owner is XKID).
PERMIT_EVENTS = KeyedRead(
    "permit_events", Agency.WORK_PERMIT_SYSTEM, lambda s, _today: s.work_permits.events_by_permit
)
EMPLOYER_BY_CREDIT_CODE = KeyedRead(
    "employer_by_credit_code",
    Agency.WORK_PERMIT_SYSTEM,
    lambda s, _today: s.work_permits.employers_by_credit_code,
)
INSURED_EMPLOYER_BY_CREDIT_CODE = KeyedRead(
    "insured_employer_by_credit_code",
    Agency.SOCIAL_INSURANCE,
    lambda s, _today: s.insurance.employers_by_credit_code,
)
ELECTRONIC_CARD_BY_ID = KeyedRead(
    "electronic_card_by_id",
    Agency.CARD_SERVICE,
    lambda s, _today: s.cards.electronic_cards_by_id,
    ELECTRONIC_CARD_LINK,
)
PAYMENT_BY_KEY = KeyedRead(
    "payment_by_key", Agency.BEIJING_PASS, lambda s, _today: s.beijing_pass.payments_by_key, PAID_CARD_LINK
)
VISA_BY_NUMBER = KeyedRead(
    "visa_by_number", Agency.EXIT_ENTRY, lambda s, _today: s.exit_entry.visas_by_number, TRAVELLER_LINK
)
ENTRY_BY_KEY = KeyedRead(
    "entry_by_key", Agency.EXIT_ENTRY, lambda s, _today: s.exit_entry.entries_by_key, TRAVELLER_LINK
)
RESIDENCE_PERMIT_BY_NUMBER = KeyedRead(
    "residence_permit_by_number",
    Agency.EXIT_ENTRY,
    lambda s, today: lambda keys: s.exit_entry.residence_permits_by_number(keys, today),
    TRAVELLER_LINK,
)
