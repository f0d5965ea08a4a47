"""Reads and writes of the hub's own store (see identity/tables.py for what it holds)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
)
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from adapters.base import DEFAULT_POOL, Group, hold_write_lock, insert_rows, insert_tuples, open_engine
from adapters.beijing_pass.mapping import key_parts, payment_key
from adapters.card_service import CARD_LINK
from domain.evidence import IdentifierKind as IdentifierKind  # re-exported (workflows)
from domain.records import AgencyId, LinkConfidence, Page, Sex, StatisticsDimension, WorkPermitStatus
from identity.tables import (
    BenefitDecision,
    HubPerson,
    IdentityLink,
    LinkRun,
    News,
    Notification,
    PersonIdentifier,
    PersonIndexRow,
    PersonPassport,
    new_record_key,
    table_of,
)

# The PostgreSQL advisory lock under which the store's tables are created.
SCHEMA_LOCK = 0x6875625F73746F72  # "hub_stor"
PERSON = table_of(HubPerson)
PASSPORT = table_of(PersonPassport)
LINK = table_of(IdentityLink)
IDENTIFIER = table_of(PersonIdentifier)
INDEX = table_of(PersonIndexRow)
NOTIFICATION = table_of(Notification)
NEWS = table_of(News)
BENEFIT_DECISION = table_of(BenefitDecision)
LINK_RUN = table_of(LinkRun)
# The keys of notifications written at most once (an expiry notice per permit period and end
# date, a retried workflow's notice): a notification whose key is taken is not written again.
NOTIFICATION_KEY = Table(
    "notification_key",
    SQLModel.metadata,
    Column("key", String, primary_key=True),
    Column("notification_id", Integer, ForeignKey("notification.id"), nullable=False),
)
# A notification as read: a news item's recipients take its text from the news row.
NOTIFICATION_SOURCE = NOTIFICATION.outerjoin(NEWS, NEWS.c.id == NOTIFICATION.c.news_id)
NOTIFICATION_COLUMNS = (*NOTIFICATION.c, NEWS.c.message.label("news_message"))
# Statements a batch read runs again and again (an export's every batch), built once: built per
# call, their expression objects are garbage only a full collection frees (exports/).
PERSONS_BY_ID = select(PERSON).where(PERSON.c.id.in_(bindparam("ids", expanding=True)))
PERSON_IDS_BY_OWNER = select(LINK.c.record_type, LINK.c.owner_key, LINK.c.person_id).where(
    LINK.c.owner_key.in_(bindparam("owners", expanding=True)),
    LINK.c.confidence == LinkConfidence.CONFIRMED.value,
)
# PostgreSQL: notifications are inserted under this transaction-level advisory lock, so their ids
# commit in id order and `id > last seen` never skips one (SQLite serializes writers anyway).
NOTIFICATION_LOCK = 0x6E6F74696679  # "notify"

PASSPORT_COLUMNS = ("person_id", "number", "nationality", "valid_from", "valid_to", "current")
LINK_COLUMNS = ("person_id", "agency", "record_type", "record_key", "owner_key", "confidence", "evidence")
NO_VALUE = "NONE"  # a statistics key for persons without a value in that dimension

# The other reads of a request, built once too (building them was a fifth of a request's CPU).
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
PASSPORTS_BY_PERSON = (
    select(PASSPORT)
    .where(PASSPORT.c.person_id.in_(_IDS))
    .order_by(PASSPORT.c.person_id, PASSPORT.c.current.desc(), PASSPORT.c.valid_from.desc())
)
LINKS_BY_PERSON = select(LINK).where(LINK.c.person_id.in_(_IDS)).order_by(LINK.c.person_id, LINK.c.id)
PERSON_IDS_BY_IDENTIFIER = select(IDENTIFIER).where(
    IDENTIFIER.c.value.in_(bindparam("values", expanding=True))
)
NOTIFICATIONS_BY_ID = (
    select(*NOTIFICATION_COLUMNS).select_from(NOTIFICATION_SOURCE).where(NOTIFICATION.c.id.in_(_IDS))
)
NEWS_BY_ID = select(NEWS).where(NEWS.c.id.in_(_IDS))


def _notification_pages(after: bool) -> Any:
    """A page of each person's notifications, newest first, at most `per_person` each (the
    caller's first + 1), before the notification `after` when paging on."""
    ranked = (
        select(
            *NOTIFICATION_COLUMNS,
            func.row_number()
            .over(partition_by=NOTIFICATION.c.person_id, order_by=NOTIFICATION.c.id.desc())
            .label("pos"),
        )
        .select_from(NOTIFICATION_SOURCE)
        .where(NOTIFICATION.c.person_id.in_(_IDS))
        .where(NOTIFICATION.c.id < bindparam("after") if after else NOTIFICATION.c.id.isnot(None))
        .subquery()
    )
    return (
        select(ranked)
        .where(ranked.c.pos <= bindparam("per_person"))
        .order_by(ranked.c.person_id, ranked.c.pos)
    )


NOTIFICATION_PAGES = {False: _notification_pages(after=False), True: _notification_pages(after=True)}


@dataclass(frozen=True, slots=True)
class PersonCore:
    """A person as the hub's store knows them: the identity core."""

    id: int
    surname: str
    given_names: str | None
    sex: Sex
    birth_date: date
    nationality: str


@dataclass(frozen=True, slots=True)
class PersonCoreRow:
    """A person's identity core as linking writes it."""

    id: int
    surname: str
    given_names: str | None
    sex: str
    birth_date: date
    nationality: str
    anchor_key: str


@dataclass(frozen=True, slots=True)
class Passport:
    number: str
    nationality: str
    valid_from: date | None
    valid_to: date | None
    current: bool


@dataclass(frozen=True, slots=True)
class PersonLink:
    agency: AgencyId
    record_type: str
    record_key: str
    owner_key: str
    confidence: LinkConfidence


@dataclass(frozen=True, slots=True)
class PersonLinks:
    """A person's links; the owner keys per agency are what person-grouped source reads take."""

    links: tuple[PersonLink, ...]

    def owners(self, agency: AgencyId) -> Group:
        seen: dict[str, None] = {}
        for link in self.links:
            if link.agency == agency and link.confidence is LinkConfidence.CONFIRMED:
                seen[link.owner_key] = None
        return tuple(seen)

    def card_numbers(self) -> Group:
        return tuple(
            link.record_key
            for link in self.links
            if link.record_type == CARD_LINK and link.confidence is LinkConfidence.CONFIRMED
        )


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    key: int
    person_id: int
    kind: str
    at: datetime
    message: str
    subject_type: str | None
    subject_key: str | None


@dataclass(frozen=True, slots=True)
class NewNotification:
    """A notification to write; one with a `key` is written at most once."""

    person_id: int
    kind: str
    message: str
    subject_type: str | None = None
    subject_key: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class SamplePerson:
    person_id: int
    permit_number: str
    employer_credit_code: str | None


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    max_person_id: int
    person_of_anchor: dict[str, int]


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """Persons who have (or, with include=False, have not) a confirmed link of this record type
    whose owner key is among `keys`: a source's SQL answer joined through the link table.
    `by_record` matches the records' own keys instead (an e-card's id, not its holder's)."""

    record_type: str
    keys: Sequence[str]
    include: bool = True
    by_record: bool = False


@dataclass(frozen=True, slots=True)
class NewsRecord:
    key: int
    published_at: datetime
    message: str
    audience: dict[str, str]
    recipients: int
    recipient_cell_key: int


@dataclass(frozen=True, slots=True)
class BenefitDecisionRecord:
    """What the hub keeps of a payment it marked paid or rejected (BJT_FF keeps the rest)."""

    payment_key: str  # KH/DYDM/FFRQ as BJT_FF now has it
    planned_on: str
    status: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class StatisticsCount:
    """One cell: its values in the order asked for, how many persons, and the sum of their
    record keys (what access/disclosure.py rounds the count by)."""

    keys: tuple[tuple[StatisticsDimension, str], ...]
    count: int
    key_sum: int


def _index_status(today: date) -> ColumnElement[Any]:
    """The permit status as of today: a valid period past its end is EXPIRED."""
    return case(
        (
            and_(INDEX.c.permit_status == WorkPermitStatus.VALID.value, INDEX.c.permit_valid_to < today),
            WorkPermitStatus.EXPIRED.value,
        ),
        else_=func.coalesce(INDEX.c.permit_status, NO_VALUE),
    )


def _dimension(dimension: StatisticsDimension, today: date) -> ColumnElement[Any]:
    match dimension:
        case StatisticsDimension.NATIONALITY:
            return INDEX.c.nationality
        case StatisticsDimension.TALENT_CATEGORY:
            return func.coalesce(INDEX.c.talent_category, NO_VALUE)
        case StatisticsDimension.PERMIT_STATUS:
            return _index_status(today)
        case StatisticsDimension.WORK_DISTRICT:
            return func.coalesce(INDEX.c.work_district, NO_VALUE)
        case StatisticsDimension.EMPLOYER:
            return func.coalesce(INDEX.c.employer_credit_code, NO_VALUE)
        case StatisticsDimension.INSURED:
            return case((INDEX.c.insured, "true"), else_="false")


def _expiring(today: date, until: date) -> tuple[ColumnElement[bool], ...]:
    """Index rows of a valid current permit ending from `today` to `until` inclusive."""
    return (
        INDEX.c.permit_status == WorkPermitStatus.VALID.value,
        INDEX.c.permit_valid_to >= today,
        INDEX.c.permit_valid_to <= until,
    )


class HubStore:
    """The hub's own database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, pool: int = DEFAULT_POOL) -> HubStore:
        return cls(open_engine(url, pool=pool))

    async def create_tables(self) -> None:
        async with self.engine.begin() as conn:
            await hold_write_lock(conn, SCHEMA_LOCK)  # processes starting at once create them once
            await conn.run_sync(SQLModel.metadata.create_all)
            await _add_record_keys(conn)
            await _add_news_column(conn)

    async def drop_tables(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.drop_all)

    async def close(self) -> None:
        await self.engine.dispose()

    # ------------------------------------------------------------ linking

    async def snapshot(self) -> StoreSnapshot:
        async with self.engine.connect() as conn:
            max_id = (await conn.execute(select(func.coalesce(func.max(PERSON.c.id), 0)))).scalar_one()
            anchors = (await conn.execute(select(PERSON.c.anchor_key, PERSON.c.id))).all()
        return StoreSnapshot(max_person_id=int(max_id), person_of_anchor=dict(anchors))

    async def replace_links(
        self,
        *,
        cores: list[PersonCoreRow],
        passports: list[tuple[int, str, str, date | None, date | None, bool]],
        links: list[tuple[int, str, str, str, str, str, str]],
        identifiers: list[tuple[str, str, int]],
        index: list[dict[str, object]],
        report: tuple[int, int, int, int],
        finished_at: datetime,
    ) -> None:
        """Replace everything linking derives, in one transaction; persons keep their ids."""
        async with self.engine.begin() as conn:
            stored = {
                row.id: _core_values(PersonCoreRow(*row))
                for row in (
                    await conn.execute(
                        select(
                            PERSON.c.id,
                            PERSON.c.surname,
                            PERSON.c.given_names,
                            PERSON.c.sex,
                            PERSON.c.birth_date,
                            PERSON.c.nationality,
                            PERSON.c.anchor_key,
                        )
                    )
                ).all()
            }
            fresh = [c for c in cores if c.id not in stored]
            # Only cores that changed are written again; a relink of an unchanged estate writes none.
            existing = [c for c in cores if c.id in stored and stored[c.id] != _core_values(c)]
            for table in (INDEX, IDENTIFIER, LINK, PASSPORT):
                await conn.execute(delete(table))
            # A person's record key is drawn once, here or in the workflow that registers them.
            new_persons = [{**_core_values(c), "record_key": new_record_key()} for c in fresh]
            await insert_rows(conn, PERSON, new_persons)
            if existing:
                await conn.execute(
                    sql_update(PERSON)
                    .where(PERSON.c.id == bindparam("b_id"))
                    .values(
                        surname=bindparam("b_surname"),
                        given_names=bindparam("b_given_names"),
                        sex=bindparam("b_sex"),
                        birth_date=bindparam("b_birth_date"),
                        nationality=bindparam("b_nationality"),
                    ),
                    [{f"b_{k}": v for k, v in _core_values(c).items()} for c in existing],
                )
            await insert_tuples(conn, PASSPORT, PASSPORT_COLUMNS, passports)
            await insert_tuples(conn, LINK, LINK_COLUMNS, links)
            await insert_tuples(conn, IDENTIFIER, ("kind", "value", "person_id"), identifiers)
            await insert_rows(conn, INDEX, index)
            linked, flagged, left_alone, unmappable = report
            await conn.execute(
                insert(LINK_RUN).values(
                    finished_at=finished_at,
                    linked=linked,
                    flagged=flagged,
                    left_alone=left_alone,
                    unmappable=unmappable,
                )
            )

    async def sample_person(self, agencies: int) -> SamplePerson | None:
        """The first person all `agencies` (the number registered) know, to try the demo with."""
        known_to_all = (
            select(LINK.c.person_id)
            .where(LINK.c.confidence == LinkConfidence.CONFIRMED.value)
            .group_by(LINK.c.person_id)
            .having(func.count(LINK.c.agency.distinct()) == agencies)
            .order_by(LINK.c.person_id)
            .limit(1)
            .scalar_subquery()
        )
        statement = (
            select(INDEX.c.person_id, INDEX.c.employer_credit_code, IDENTIFIER.c.value)
            .join(IDENTIFIER, IDENTIFIER.c.person_id == INDEX.c.person_id)
            .where(
                and_(
                    INDEX.c.person_id == known_to_all,
                    IDENTIFIER.c.kind == IdentifierKind.WORK_PERMIT_NUMBER.value,
                )
            )
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(statement)).first()
        return SamplePerson(row.person_id, row.value, row.employer_credit_code) if row else None

    # ------------------------------------------------------------ reads for the graph

    async def persons_by_id(self, ids: Sequence[int]) -> list[PersonCore | None]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(PERSONS_BY_ID, {"ids": list(ids)})).all()
        found = {r.id: _person(r) for r in rows}
        return [found.get(i) for i in ids]

    async def passports_by_person(self, ids: Sequence[int]) -> list[list[Passport]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(PASSPORTS_BY_PERSON, {"ids": list(ids)})).all()
        grouped: dict[int, list[Passport]] = {i: [] for i in ids}
        for r in rows:
            grouped[r.person_id].append(
                Passport(r.number, r.nationality, r.valid_from, r.valid_to, bool(r.current))
            )
        return [grouped[i] for i in ids]

    async def links_by_person(self, ids: Sequence[int]) -> list[PersonLinks]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(LINKS_BY_PERSON, {"ids": list(ids)})).all()
        grouped: dict[int, list[PersonLink]] = {i: [] for i in ids}
        for r in rows:
            grouped[r.person_id].append(
                PersonLink(r.agency, r.record_type, r.record_key, r.owner_key, LinkConfidence(r.confidence))
            )
        return [PersonLinks(tuple(grouped[i])) for i in ids]

    async def person_ids_by_identifier(self, keys: Sequence[tuple[str, str]]) -> list[int | None]:
        """(kind, value) -> person id, for every `PersonLookup` identifier."""
        values = [value for _kind, value in keys]
        async with self.engine.connect() as conn:
            rows = (await conn.execute(PERSON_IDS_BY_IDENTIFIER, {"values": values})).all()
        found = {(r.kind, r.value): r.person_id for r in rows}
        return [found.get(key) for key in keys]

    async def person_ids_by_owner(self, keys: Sequence[tuple[str, str]]) -> list[int | None]:
        """(record type, owner key) of a confirmed link -> person id: who a record belongs to."""
        owners = [owner for _type, owner in keys]
        async with self.engine.connect() as conn:
            rows = (await conn.execute(PERSON_IDS_BY_OWNER, {"owners": owners})).all()
        found = {(r.record_type, r.owner_key): r.person_id for r in rows}
        return [found.get(key) for key in keys]

    async def page_persons(
        self,
        *,
        nationality: str | None,
        key_filters: Sequence[KeyFilter],
        first: int,
        after: int | None,
        within: frozenset[int] | None = None,
    ) -> Page[int]:
        """Person ids in id order after a keyset position, with the total. Each source's
        answer is combined with persons through the link table in SQL (never person by person
        in Python); `within` narrows to a caller's scope."""
        async with self.engine.connect() as conn, _TemporaryKeys(conn) as temporary:
            conditions = await _person_conditions(temporary, nationality, key_filters)
            if within is not None:
                conditions.append(
                    PERSON.c.id.in_(select(await temporary.table([str(i) for i in within], int)))
                )
            statement = select(PERSON.c.id)
            count = select(func.count()).select_from(PERSON)
            if conditions:
                statement = statement.where(and_(*conditions))
                count = count.where(and_(*conditions))
            if after is not None:
                statement = statement.where(PERSON.c.id > after)
            ids = [r[0] for r in (await conn.execute(statement.order_by(PERSON.c.id).limit(first + 1))).all()]
            total = (await conn.execute(count)).scalar_one()
        return Page(
            items=ids[:first], positions=[(i,) for i in ids[:first]], has_next=len(ids) > first, total=total
        )

    async def persons_matching(
        self, *, nationality: str | None, key_filters: Sequence[KeyFilter]
    ) -> list[tuple[int, int]]:
        """(person id, record key) of every person the filters of `page_persons` select, in
        id order, in one statement (news to a city's foreigners: tens of thousands)."""
        async with self.engine.connect() as conn, _TemporaryKeys(conn) as temporary:
            conditions = await _person_conditions(temporary, nationality, key_filters)
            statement = select(PERSON.c.id, PERSON.c.record_key).order_by(PERSON.c.id)
            if conditions:
                statement = statement.where(and_(*conditions))
            return [(r.id, r.record_key) for r in (await conn.execute(statement)).all()]

    async def person_ids_linked(self, owners: Sequence[tuple[str, Sequence[str]]]) -> set[int]:
        """Persons with a confirmed link of any of these (record type, owner keys)."""
        found: set[int] = set()
        async with self.engine.connect() as conn, _TemporaryKeys(conn) as temporary:
            for record_type, keys in owners:
                statement = select(LINK.c.person_id).where(
                    and_(
                        LINK.c.record_type == record_type,
                        LINK.c.confidence == LinkConfidence.CONFIRMED.value,
                        LINK.c.owner_key.in_(select(await temporary.table(keys))),
                    )
                )
                found |= {r[0] for r in (await conn.execute(statement)).all()}
        return found

    async def indexed_persons(self) -> int:
        """How many persons the person index holds: no statistics table has more cells."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(INDEX))).scalar_one())

    async def statistics(
        self,
        group_by: Sequence[StatisticsDimension],
        fixed: Mapping[StatisticsDimension, str],
        today: date,
    ) -> list[StatisticsCount]:
        """Persons counted by GROUP BY over the person index, among those with the `fixed`
        values (a filter slices the table, it never regroups it), in `group_by` order."""
        dims = [_dimension(d, today).label(f"d{i}") for i, d in enumerate(group_by)]
        statement = select(
            *dims, func.count().label("n"), func.coalesce(func.sum(PERSON.c.record_key), 0).label("k")
        ).select_from(INDEX.join(PERSON, PERSON.c.id == INDEX.c.person_id))
        if fixed:
            statement = statement.where(*(_dimension(d, today) == value for d, value in fixed.items()))
        if dims:
            statement = statement.group_by(*dims).order_by(*dims)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            StatisticsCount(tuple((d, str(row[i])) for i, d in enumerate(group_by)), int(row.n), int(row.k))
            for row in rows
            if row.n > 0
        ]

    async def count_expiring(self, today: date, until: date, employer: str | None = None) -> int:
        """How many persons' current permits are valid and end from `today` to `until`
        inclusive (naming `employer`, when given), as linking last saw them."""
        statement = select(func.count()).where(
            *_expiring(today, until), *([INDEX.c.employer_credit_code == employer] if employer else [])
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def expiring_counts(
        self, group_by: Sequence[StatisticsDimension], today: date, until: date
    ) -> AsyncIterator[tuple[date, StatisticsCount]]:
        """Persons whose current permit is valid and ends from `today` to `until` inclusive,
        counted per end date and `group_by` values, by end date then values; streamed, so a
        year of cells never sits in memory at once."""
        ends = INDEX.c.permit_valid_to.label("ends")
        dims = [_dimension(d, today).label(f"d{i}") for i, d in enumerate(group_by)]
        statement = (
            select(ends, *dims, func.count().label("n"), func.sum(PERSON.c.record_key).label("k"))
            .select_from(INDEX.join(PERSON, PERSON.c.id == INDEX.c.person_id))
            .where(*_expiring(today, until))
            .group_by(ends, *dims)
            .order_by(ends, *dims)
        )
        async with self.engine.connect() as conn:
            async for row in await conn.stream(statement):
                keys = tuple((d, str(row[i + 1])) for i, d in enumerate(group_by))
                yield row.ends, StatisticsCount(keys, int(row.n), int(row.k))

    async def notifications_by_person(
        self, ids: Sequence[int], first: int, after: int | None
    ) -> list[Page[NotificationRecord]]:
        statement = NOTIFICATION_PAGES[after is not None]
        parameters = {"ids": list(ids), "after": after, "per_person": first + 1}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement, parameters)).all()
        grouped: dict[int, list[NotificationRecord]] = {i: [] for i in ids}
        for r in rows:
            grouped[r.person_id].append(_notification(r))
        return [
            Page(
                items=grouped[i][:first],
                positions=[(n.key,) for n in grouped[i][:first]],
                has_next=len(grouped[i]) > first,
            )
            for i in ids
        ]

    async def notifications_by_id(self, ids: Sequence[int]) -> list[NotificationRecord | None]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(NOTIFICATIONS_BY_ID, {"ids": list(ids)})).all()
        found = {r.id: _notification(r) for r in rows}
        return [found.get(i) for i in ids]

    async def add_notifications(
        self, notices: Sequence[NewNotification], conn: AsyncConnection | None = None
    ) -> list[NotificationRecord]:
        """Write notifications, skipping those whose key is already taken; returns what was
        written. On `conn` they join the caller's transaction (wake subscribers after it
        commits); otherwise they commit here. Ids are allocated and committed in order."""
        if conn is not None:
            return await _add_notifications(conn, notices, datetime.now(UTC))
        for attempt in (1, 2):
            try:
                async with self.engine.begin() as own:
                    return await _add_notifications(own, notices, datetime.now(UTC))
            except IntegrityError:
                # Another process took one of the keys between our check and our insert
                # (SQLite; PostgreSQL checks under the lock): read the keys again, once.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def notifications_after(self, person_id: int, after: int, limit: int) -> list[NotificationRecord]:
        """The person's notifications after a position, oldest first (what a subscriber missed)."""
        statement = (
            select(*NOTIFICATION_COLUMNS)
            .select_from(NOTIFICATION_SOURCE)
            .where(and_(NOTIFICATION.c.person_id == person_id, NOTIFICATION.c.id > after))
            .order_by(NOTIFICATION.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [_notification(r) for r in rows]

    async def last_notification_key(self, person_id: int) -> int:
        """The position of the person's newest notification, 0 when there is none."""
        statement = select(func.coalesce(func.max(NOTIFICATION.c.id), 0)).where(
            NOTIFICATION.c.person_id == person_id
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def notification_keys_taken(self, keys: Sequence[str]) -> set[str]:
        """Which of these notification keys are already used."""
        async with self.engine.connect() as conn:
            return await _keys_taken(conn, keys)

    async def news_by_id(self, ids: Sequence[int]) -> list[NewsRecord | None]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(NEWS_BY_ID, {"ids": list(ids)})).all()
        found = {
            r.id: NewsRecord(
                r.id,
                r.published_at if r.published_at.tzinfo is not None else r.published_at.replace(tzinfo=UTC),
                r.message,
                json.loads(r.audience),
                r.recipients,
                r.recipient_cell_key,
            )
            for r in rows
        }
        return [found.get(i) for i in ids]

    async def benefit_decisions(self, payment_keys: Sequence[str]) -> list[BenefitDecisionRecord | None]:
        """What the hub decided about these payments (by BJT_FF's key, `KH/DYDM/FFRQ`)."""
        matches = [
            and_(
                BENEFIT_DECISION.c.card_number == card,
                BENEFIT_DECISION.c.benefit_code == code,
                BENEFIT_DECISION.c.payment_date == on,
            )
            for card, code, on in filter(None, map(key_parts, payment_keys))
        ]
        if not matches:
            return [None] * len(payment_keys)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(BENEFIT_DECISION).where(or_(*matches)))).all()
        found: dict[str, BenefitDecisionRecord] = {}
        for r in rows:
            key = payment_key(r.card_number, r.benefit_code, r.payment_date)
            found[key] = BenefitDecisionRecord(key, r.planned_on, r.status, r.reason)
        return [found.get(key) for key in payment_keys]


async def _add_record_keys(conn: AsyncConnection) -> None:
    """A store made before persons had record keys gets them: one drawn per person, once."""
    columns = await conn.run_sync(lambda sync: {c["name"] for c in inspect(sync).get_columns(PERSON.name)})
    if "record_key" in columns:
        return
    await conn.execute(text("ALTER TABLE person ADD COLUMN record_key INTEGER NOT NULL DEFAULT 0"))
    ids = (await conn.execute(select(PERSON.c.id))).scalars().all()
    if ids:
        await conn.execute(
            sql_update(PERSON).where(PERSON.c.id == bindparam("b_id")).values(record_key=bindparam("b_key")),
            [{"b_id": i, "b_key": new_record_key()} for i in ids],
        )


async def _add_news_column(conn: AsyncConnection) -> None:
    """A store made before news gets the column by which a notification names its news item."""
    columns = await conn.run_sync(
        lambda sync: {c["name"] for c in inspect(sync).get_columns(NOTIFICATION.name)}
    )
    if "news_id" in columns:
        return
    await conn.execute(text("ALTER TABLE notification ADD COLUMN news_id INTEGER REFERENCES news (id)"))
    await conn.execute(text("CREATE INDEX ix_notification_news_id ON notification (news_id)"))


async def _person_conditions(
    temporary: _TemporaryKeys, nationality: str | None, key_filters: Sequence[KeyFilter]
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if nationality is not None:
        conditions.append(PERSON.c.nationality == nationality)
    for key_filter in key_filters:
        keys = await temporary.table(key_filter.keys)
        matched = LINK.c.record_key if key_filter.by_record else LINK.c.owner_key
        linked = exists().where(
            and_(
                LINK.c.person_id == PERSON.c.id,
                LINK.c.record_type == key_filter.record_type,
                LINK.c.confidence == LinkConfidence.CONFIRMED.value,
                matched.in_(select(keys)),
            )
        )
        conditions.append(linked if key_filter.include else ~linked)
    return conditions


def _person(row: Any) -> PersonCore:
    return PersonCore(row.id, row.surname, row.given_names, Sex(row.sex), row.birth_date, row.nationality)


def _notification(row: Any) -> NotificationRecord:
    # The column type answers UTC with its offset; a value written without one is UTC too.
    at = row.at if row.at.tzinfo is not None else row.at.replace(tzinfo=UTC)
    message = row.news_message if row.news_message is not None else row.message
    return NotificationRecord(row.id, row.person_id, row.kind, at, message, row.subject_type, row.subject_key)


async def lock_notification_order(conn: AsyncConnection) -> None:
    """Take the lock under which notifications are inserted, until the transaction ends, so
    that their ids commit in id order (SQLite serializes writers anyway)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": NOTIFICATION_LOCK})


async def _keys_taken(conn: AsyncConnection, keys: Sequence[str]) -> set[str]:
    taken: set[str] = set()
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        statement = select(NOTIFICATION_KEY.c.key).where(NOTIFICATION_KEY.c.key.in_(chunk))
        taken |= {r[0] for r in (await conn.execute(statement)).all()}
    return taken


async def _add_notifications(
    conn: AsyncConnection, notices: Sequence[NewNotification], now: datetime
) -> list[NotificationRecord]:
    if not notices:
        return []
    await lock_notification_order(conn)
    taken = await _keys_taken(conn, [n.key for n in notices if n.key is not None])
    at = now.astimezone(UTC)
    written: list[NotificationRecord] = []
    for notice in notices:
        if notice.key is not None:
            if notice.key in taken:
                continue
            taken.add(notice.key)
        values = {
            "person_id": notice.person_id,
            "kind": notice.kind,
            "at": at,
            "message": notice.message,
            "subject_type": notice.subject_type,
            "subject_key": notice.subject_key,
        }
        key = (
            await conn.execute(insert(NOTIFICATION).values(**values).returning(NOTIFICATION.c.id))
        ).scalar_one()
        if notice.key is not None:
            await conn.execute(insert(NOTIFICATION_KEY).values(key=notice.key, notification_id=key))
        written.append(
            NotificationRecord(
                key,
                notice.person_id,
                notice.kind,
                at,
                notice.message,
                notice.subject_type,
                notice.subject_key,
            )
        )
    return written


def _core_values(core: PersonCoreRow) -> dict[str, object]:
    return {
        "id": core.id,
        "surname": core.surname,
        "given_names": core.given_names,
        "sex": core.sex,
        "birth_date": core.birth_date,
        "nationality": core.nationality,
        "anchor_key": core.anchor_key,
    }


class _TemporaryKeys:
    """Temporary key tables on one connection (a source's answer, joinable in SQL), dropped
    when the block ends."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.tables: list[Table] = []

    async def table(self, keys: Sequence[str], kind: type = str) -> Any:
        column_type = Integer if kind is int else String
        table = Table(
            f"temporary_keys_{len(self.tables)}",
            MetaData(),
            Column("k", column_type, primary_key=True),
            prefixes=["TEMPORARY"],
        )
        await self.conn.run_sync(lambda sync: table.create(sync, checkfirst=False))
        self.tables.append(table)
        values = [kind(k) for k in dict.fromkeys(keys)]
        await insert_tuples(self.conn, table, ("k",), [(v,) for v in values])
        return table.c.k

    async def __aenter__(self) -> _TemporaryKeys:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for table in self.tables:
            await self.conn.run_sync(table.drop, checkfirst=True)
        await self.conn.commit()
