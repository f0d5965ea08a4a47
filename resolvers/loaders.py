"""Per-request DataLoaders, built from the declared relationships (never at module level).

Every record a loader hands out carries the person it belongs to (`person_id`): a person's
relationships are loaded by person, so the loader knows; a read by the records' own keys looks
the persons up by the records' owner keys in the same batch (one statement of the hub store).
Grants, scope and the audit then know whose a record is wherever it is read."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from functools import cached_property
from typing import Any

from strawberry.dataloader import DataLoader

from adapters import Sources
from adapters.base import RecordList
from adapters.relationships import KeyedRead, PagedPersonRelationship, PersonRelationship
from adapters.work_permit import APPLICANT_LINK
from audit.log import AccessRecord, AuditLog
from domain.errors import NotAvailable
from domain.records import Page
from identity.store import HubStore, Passport, PersonCore, PersonLinks

PageKey = tuple[int, int, tuple[Any, ...] | None]  # (person id, first, after)


class Loaders:
    """One request's loaders: each key is read once, every parent of a level in one batch."""

    def __init__(self, sources: Sources, store: HubStore, audit: AuditLog | None, today: date) -> None:
        self.sources = sources
        self.store = store
        self.audit = audit
        self.today = today
        self._by_name: dict[str, DataLoader[Any, Any]] = {}

    def person_relation(self, relationship: PersonRelationship[Any]) -> DataLoader[int, Any]:
        """A person's records in one agency, by person id: the current one, or all of them."""
        loader = self._by_name.get(relationship.name)
        if loader is None:
            empty: Callable[[], Any] = RecordList if relationship.many else lambda: None

            async def read(person_ids: Sequence[int]) -> list[Any]:
                groups = [links.owners(relationship.source.agency) for links in await self._links(person_ids)]
                answers: list[Any] = [empty() for _ in person_ids]
                asked = [i for i, group in enumerate(groups) if group]
                if asked:
                    source = self.sources.of(relationship.source)
                    found = await relationship.read(source, self.today)([groups[i] for i in asked])
                    for i, value in zip(asked, found, strict=True):
                        answers[i] = owned_by(person_ids[i], value)
                return answers

            loader = DataLoader(load_fn=read)
            self._by_name[relationship.name] = loader
        return loader

    def paged_relation(self, relationship: PagedPersonRelationship[Any]) -> DataLoader[PageKey, Any]:
        """A keyset page of a person's records in one agency, by (person id, first, after)."""
        loader = self._by_name.get(relationship.name)
        if loader is None:

            async def read(person_ids: list[int], first: int, after: Any) -> Sequence[Any]:
                groups = [links.owners(relationship.source.agency) for links in await self._links(person_ids)]
                answers: list[Any] = [Page([], [], False) for _ in person_ids]
                asked = [i for i, group in enumerate(groups) if group]
                if asked:
                    source = self.sources.of(relationship.source)
                    found = await relationship.read(
                        source, [groups[i] for i in asked], first, after, self.today
                    )
                    for i, page in zip(asked, found, strict=True):
                        answers[i] = owned_by(person_ids[i], page)
                return answers

            loader = DataLoader(load_fn=lambda keys: _pages_by_arguments(keys, read))
            self._by_name[relationship.name] = loader
        return loader

    def keyed(self, read: KeyedRead[Any]) -> DataLoader[Any, Any]:
        """Records by their own keys, each noting its person (through `read.linked_as`)."""
        loader = self._by_name.get(read.name)
        if loader is None:

            async def load(keys: Sequence[Any]) -> list[Any]:
                found = list(await read.read(self.sources.of(read.source), self.today)(keys))
                return await self.owned(read.linked_as, found) if read.linked_as else found

            loader = DataLoader(load_fn=load)
            self._by_name[read.name] = loader
        return loader

    async def reread(self, read: KeyedRead[Any], key: Any) -> Any:
        """A record a workflow has just written: read anew, never from this request's cache
        (an earlier field of the same document may have read it before)."""
        loader = self.keyed(read)
        _forget(loader, key)
        return await loader.load(key)

    async def reread_related(self, relationship: PersonRelationship[Any], person_id: int) -> Any:
        """A person's records after a workflow wrote them (and perhaps the person's links)."""
        _forget(self.links_by_person, person_id)
        loader = self.person_relation(relationship)
        _forget(loader, person_id)
        return await loader.load(person_id)

    async def owned(self, linked_as: str, values: list[Any]) -> list[Any]:
        """Records read by their own keys (or a page of them), each with the person its owner
        key is linked to: one statement of the hub store for all of them."""
        records = [r for value in values for r in _records_in(value)]
        owners = list(dict.fromkeys(r.owner for r in records))
        persons = dict(
            zip(owners, await self.store.person_ids_by_owner([(linked_as, o) for o in owners]), strict=True)
        )
        for record in records:
            _note(record, persons.get(record.owner))
        return values

    async def _links(self, person_ids: Sequence[int]) -> list[PersonLinks]:
        return list(await self.links_by_person.load_many(person_ids))

    @cached_property
    def person_by_id(self) -> DataLoader[int, PersonCore | None]:
        return DataLoader(load_fn=self.store.persons_by_id)

    @cached_property
    def passports_by_person(self) -> DataLoader[int, list[Passport]]:
        return DataLoader(load_fn=self.store.passports_by_person)

    @cached_property
    def links_by_person(self) -> DataLoader[int, PersonLinks]:
        return DataLoader(load_fn=self.store.links_by_person)

    @cached_property
    def person_id_by_identifier(self) -> DataLoader[tuple[str, str], int | None]:
        return DataLoader(load_fn=self.store.person_ids_by_identifier)

    @cached_property
    def notifications_by_person(self) -> DataLoader[tuple[int, int, int | None], Any]:
        return DataLoader(load_fn=lambda keys: _pages_by_arguments(keys, self.store.notifications_by_person))

    @cached_property
    def employer_permits(self) -> DataLoader[tuple[str, int, Any], Any]:
        async def read(credit_codes: list[str], first: int, after: Any) -> Sequence[Any]:
            pages = await self.sources.work_permits.permits_of_employers(
                credit_codes, first, after, self.today
            )
            return await self.owned(APPLICANT_LINK, list(pages))

        return DataLoader(load_fn=lambda keys: _pages_by_arguments(keys, read))

    @cached_property
    def access_log(self) -> DataLoader[tuple[int, int, Any], Page[AccessRecord]]:
        async def read(person_ids: list[int], first: int, after: Any) -> Sequence[Page[AccessRecord]]:
            if self.audit is None:
                raise NotAvailable("the audit trail is switched off in this process")
            seq, visible_on = after
            pages = await self.audit.access_pages(person_ids, first, seq, visible_on)
            return [Page(records, [(r.seq,) for r in records], has_next) for records, has_next in pages]

        return DataLoader(load_fn=lambda keys: _pages_by_arguments(keys, read))

    @cached_property
    def notification_by_id(self) -> DataLoader[int, Any]:
        return DataLoader(load_fn=self.store.notifications_by_id)

    @cached_property
    def benefit_decision_by_payment(self) -> DataLoader[str, Any]:
        return DataLoader(load_fn=self.store.benefit_decisions)


def _forget(loader: DataLoader[Any, Any], key: Any) -> None:
    """Drop a key from the request's cache (strawberry's `clear` fails on a key never read)."""
    if loader.cache_map.get(key) is not None:
        loader.clear(key)


_RECORD_TYPES: dict[type, bool] = {}


def _is_record(value: object) -> bool:
    """Whether the value is a record of someone's (a dataclass with `owner` and `person_id`),
    decided once per type: every record of every read asks."""
    kind = type(value)
    known = _RECORD_TYPES.get(kind)
    if known is None:
        names = {f.name for f in dataclasses.fields(kind)} if dataclasses.is_dataclass(kind) else set()
        known = _RECORD_TYPES[kind] = {"owner", "person_id"} <= names
    return known


def _records_in(value: Any) -> list[Any]:
    """The person-owned records a read answered: one, a list of them, or a page's items."""
    if isinstance(value, Page):
        return [item for item in value.items if _is_record(item)]
    if isinstance(value, list):
        return [item for item in value if _is_record(item)]
    return [value] if _is_record(value) else []


def owned_by(person_id: int, value: Any) -> Any:
    """What a person's relationship read, every record in it noted as the person's."""
    for record in _records_in(value):
        _note(record, person_id)
    return value


def _note(record: Any, person_id: int | None) -> None:
    # The loader that read a record completes it with its person before anyone else sees it
    # (every read builds its records afresh); frozen for everyone after. dataclasses.replace
    # cost 3 % of a page of 50.
    object.__setattr__(record, "person_id", person_id)


async def _pages_by_arguments(
    keys: Sequence[tuple[Any, int, Any]],
    read: Callable[[list[Any], int, Any], Awaitable[Sequence[Any]]],
) -> list[Any]:
    """Pages for many (subject, first, after) keys: subjects asked with the same page
    arguments are read in one statement."""
    by_arguments: dict[tuple[int, Any], list[int]] = defaultdict(list)
    for position, (_subject, first, after) in enumerate(keys):
        by_arguments[(first, after)].append(position)
    answers: list[Any] = [None] * len(keys)
    for (first, after), positions in by_arguments.items():
        pages = await read([keys[p][0] for p in positions], first, after)
        for position, page in zip(positions, pages, strict=True):
            answers[position] = page
    return answers
