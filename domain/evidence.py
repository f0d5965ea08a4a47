"""What an agency's records say about whose they are: the evidence linking weighs.

Each agency's adapter yields one `Candidate` per person record it holds (identity/linking.py
matches them against the work-permit applicants every person is anchored on, and against the
identifiers earlier candidates confirmed). No decisions here, only the facts a record offers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from domain.errors import SourceDataInvalid


class IdentifierKind(StrEnum):
    """Numbers that name one person for sure, as the hub's identifier index keeps them."""

    WORK_PERMIT_NUMBER = "WORK_PERMIT_NUMBER"
    SOCIAL_SECURITY_NUMBER = "SOCIAL_SECURITY_NUMBER"
    CARD_NUMBER = "CARD_NUMBER"
    PASSPORT = "PASSPORT"
    RESIDENCE_PERMIT_NUMBER = "RESIDENCE_PERMIT_NUMBER"
    # Matched on, never kept in the index: a letter names its applicant with the birth date.
    NOTIFICATION_LETTER = "NOTIFICATION_LETTER"


Identifier = tuple[IdentifierKind, str]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One record of an agency that may belong to a person.

    Strong evidence, in this order: the passport (number and nationality) with the same birth
    date; any of `keys` that an earlier record confirmed for a person (with the same birth
    date, where the record has one). Weak: the same name words and birth date alone, or the
    passport with another birth date. `provides` are the identifiers the record gives its
    person once confirmed; `names` the surname and given names where the agency tells them apart.
    """

    record_type: str
    record_key: str
    owner_key: str
    passport: tuple[str, str] | None = None  # (number, nationality)
    name: str | None = None
    birth_date: date | None = None
    keys: tuple[Identifier, ...] = ()
    provides: tuple[Identifier, ...] = ()
    names: tuple[str, str | None] | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """An agency's candidates, and the person records that could not be read."""

    candidates: tuple[Candidate, ...] = ()
    unreadable: tuple[SourceDataInvalid, ...] = field(default=())
