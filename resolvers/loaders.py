"""Per-request DataLoaders, built from the declared relationships (never at module level)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from functools import cached_property
from typing import Any

from strawberry.dataloader import DataLoader

from adapters import Sources
from adapters.base import Group
from audit.log import AccessRecord, AuditLog
from domain.errors import NotAvailable
from domain.records import Page
from identity.store import HubStore, Passport, PersonCore, PersonLinks
from resolvers.relationships import KeyedRead, PagedPersonRelationship, PersonRelationship

PageKey = tuple[Group, int, tuple[Any, ...] | None]


class Loaders:
    """One request's loaders: each key is read once, every parent of a level in one batch."""

    def __init__(self, sources: Sources, store: HubStore, audit: AuditLog | None, today: date) -> None:
        self.sources = sources
        self.store = store
        self.audit = audit
        self.today = today
        self._by_name: dict[str, DataLoader[Any, Any]] = {}

    def person_relation(self, relationship: PersonRelationship) -> DataLoader[Group, Any]:
        loader = self._by_name.get(relationship.name)
        if loader is None:
            loader = DataLoader(load_fn=relationship.read(self.sources, self.today))
            self._by_name[relationship.name] = loader
        return loader

    def paged_relation(self, relationship: PagedPersonRelationship) -> DataLoader[PageKey, Any]:
        loader = self._by_name.get(relationship.name)
        if loader is None:

            async def read(groups: list[Group], first: int, after: Any) -> Sequence[Any]:
                return await relationship.read(self.sources, groups, first, after, self.today)

            loader = DataLoader(load_fn=lambda keys: _pages_by_arguments(keys, read))
            self._by_name[relationship.name] = loader
        return loader

    def keyed(self, read: KeyedRead) -> DataLoader[Any, Any]:
        loader = self._by_name.get(read.name)
        if loader is None:
            loader = DataLoader(load_fn=read.read(self.sources, self.today))
            self._by_name[read.name] = loader
        return loader

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
    def person_id_by_owner(self) -> DataLoader[tuple[str, str], int | None]:
        return DataLoader(load_fn=self.store.person_ids_by_owner)

    @cached_property
    def notifications_by_person(self) -> DataLoader[tuple[int, int, int | None], Any]:
        return DataLoader(load_fn=lambda keys: _pages_by_arguments(keys, self.store.notifications_by_person))

    @cached_property
    def employer_permits(self) -> DataLoader[tuple[str, int, Any], Any]:
        async def read(credit_codes: list[str], first: int, after: Any) -> Sequence[Any]:
            return await self.sources.work_permits.permits_of_employers(
                credit_codes, first, after, self.today
            )

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
