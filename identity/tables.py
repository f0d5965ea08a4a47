"""The hub's own store: persons' identity cores, links to agency records, identifiers to find
them by, and the person index that statistics count over. Refreshed by linking; person ids
are never renumbered."""

from __future__ import annotations

import secrets
from datetime import date, datetime

from sqlalchemy import Table
from sqlmodel import Field, SQLModel

# Record keys are uniform over [0, RECORD_KEY_RANGE): 31 bits, an INTEGER on every backend,
# whose sum over any cell still fits the BIGINT that SUM answers.
RECORD_KEY_RANGE = 2**31


def table_of(model: type[SQLModel]) -> Table:
    """The Table of a `table=True` model, as SQLAlchemy's declarative mapping sets it."""
    table: Table = model.__table__  # type: ignore[attr-defined]  # SQLModel sets it, never declares it
    return table


def new_record_key() -> int:
    """A record key nobody can predict (the operating system's CSPRNG)."""
    return secrets.randbelow(RECORD_KEY_RANGE)


class HubPerson(SQLModel, table=True):
    """A person's identity core, kept so the person is named even while a source is down."""

    __tablename__ = "person"

    id: int = Field(primary_key=True)
    surname: str
    given_names: str | None = None
    sex: str
    birth_date: date
    nationality: str = Field(index=True)
    # The WP_SQR record a person was created for; a person is never created twice for one.
    anchor_key: str = Field(unique=True)
    # Drawn once, by the column default, whenever a person is inserted, and never shown or
    # changed: statistics sum it per cell to decide how the cell's count is rounded
    # (access/disclosure.py), so the same persons round the same way in every query.
    record_key: int = Field(sa_column_kwargs={"default": new_record_key})


class PersonPassport(SQLModel, table=True):
    __tablename__ = "person_passport"

    person_id: int = Field(primary_key=True, foreign_key="person.id")
    number: str = Field(primary_key=True)
    nationality: str = Field(primary_key=True)
    valid_from: date | None = None
    valid_to: date | None = None
    current: bool = False


class IdentityLink(SQLModel, table=True):
    """One agency record belonging to (CONFIRMED) or resembling (WEAK) a person.

    `owner_key` is the key the agency files the person's records under (SQRID, AAC001,
    SHBZHM, RYBH, KH): what the person-grouped batch reads take."""

    __tablename__ = "identity_link"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(index=True, foreign_key="person.id")
    agency: str
    record_type: str
    record_key: str
    owner_key: str
    confidence: str
    evidence: str


class PersonIdentifier(SQLModel, table=True):
    """Every identifier a `PersonLookup` can name, pointing at its person (confirmed links only)."""

    __tablename__ = "person_identifier"

    kind: str = Field(primary_key=True)
    value: str = Field(primary_key=True)
    person_id: int = Field(index=True, foreign_key="person.id")


class PersonIndexRow(SQLModel, table=True):
    """The dimensions statistics group by, per person, as linking last saw them."""

    __tablename__ = "person_index"

    person_id: int = Field(primary_key=True, foreign_key="person.id")
    nationality: str
    talent_category: str | None = None
    permit_status: str | None = None
    permit_valid_to: date | None = None
    work_district: str | None = None
    employer_credit_code: str | None = None
    insured: bool = False


class News(SQLModel, table=True):
    """A news item the work-permit authority published, stored once: each recipient is a
    notification row naming it (`Notification.news_id`), which takes its text from here."""

    __tablename__ = "news"

    id: int = Field(primary_key=True)
    published_at: datetime
    published_by: str  # the client that published it
    message: str
    # The audience as given (JSON: nationality, workDistrict, category; {} for everyone),
    # evaluated once, at publishing.
    audience: str
    recipients: int
    # The recipients' cell key (their record keys' sum, reduced as access/disclosure.py does):
    # the count is shown rounded by it, as statistics are, since it says how many of a group
    # hold a signed e-card.
    recipient_cell_key: int


class Notification(SQLModel, table=True):
    """Events for a person, kept so a client can read what it missed (written by the workflows)."""

    __tablename__ = "notification"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(index=True, foreign_key="person.id")
    kind: str
    at: datetime
    message: str  # empty for news: its text is the news item's, stored once
    subject_type: str | None = None
    subject_key: str | None = None
    news_id: int | None = Field(default=None, index=True, foreign_key="news.id")


class BenefitDecision(SQLModel, table=True):
    """A benefit payment marked paid or rejected through the hub, by the payment's key in
    BJT_FF as it now stands: the rejection's reason (BJT_FF has no column for it), and the
    planned date a payment paid on another day was moved from."""

    __tablename__ = "benefit_decision"

    card_number: str = Field(primary_key=True)
    benefit_code: str = Field(primary_key=True)
    payment_date: str = Field(primary_key=True)  # FFRQ, YYYY-MM-DD
    planned_on: str = Field(index=True)  # FFRQ before the decision
    status: str  # BJT_FF.ZT: S or R
    reason: str | None = None
    decided_at: datetime
    decided_by: str  # the client that decided


class LinkRun(SQLModel, table=True):
    """When linking last ran and what it found."""

    __tablename__ = "link_run"

    id: int | None = Field(default=None, primary_key=True)
    finished_at: datetime
    linked: int
    flagged: int
    left_alone: int
    unmappable: int


class ActivationCode(SQLModel, table=True):
    """A one-time code an e-card registration hands the person's app, to be exchanged (with the
    person's name and permit number) for a cardholder token (access/activation.py). Only its
    hash is kept."""

    __tablename__ = "activation_code"

    code_hash: str = Field(primary_key=True)
    person_id: int = Field(index=True, foreign_key="person.id")
    electronic_card: str
    issued_to: str  # the client that registered the card (the e-card app's backend)
    issued_at: datetime
    expires_at: datetime
    failed_tries: int = 0
    used_at: datetime | None = None
    used_by: str | None = Field(default=None, index=True)  # the subject of the token it became
    # Set when the e-card is revoked or its code reissued: the code is dead, and so is the token.
    revoked_at: datetime | None = None


class ElectronicCardRevocation(SQLModel, table=True):
    """Why and when an e-card was revoked (SBK_DZK keeps only QFZT = 2)."""

    __tablename__ = "electronic_card_revocation"

    electronic_card: str = Field(primary_key=True)
    reason: str
    revoked_at: datetime
    revoked_by: str  # the client that revoked it
