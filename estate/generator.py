"""`generate_estate`: the legacy databases filled with one consistent synthetic population.

Each person is generated in one pass (permit story, passports, then what every other agency
holds about them), rows are collected per table and flushed every few thousand persons. The
notice's five agencies are one story (an enrollment writes insurance and card rows together),
generated here; a plug-in agency's spec brings its `EstatePart`, which sees every generated
person.
Every draw comes from `random.Random` instances seeded by `seed` and a purpose, so the same
`persons`, `seed` and `as_of` give the same rows in the same order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.registry import DEFAULT_AGENCIES
from adapters.spec import AgencySpec, EstatePart
from domain.records import AgencyId
from estate.exit_entry import ExitEntry
from estate.formats import Rows, mistyped
from estate.insurance import Insurance, benefit_rows, employer_rows
from estate.people import Person, Population
from estate.permits import ACTIVATED, Period, PermitOffice, make_employers, write_work_permit
from estate.writer import EstateWriter

Progress = Callable[[str, int, int], None]
PERSONS_PER_FLUSH = 5_000
RENEWED_SHARE = 0.10  # drawn; recent applicants cannot have renewed, so about 8 % do
LEFT_ALONE_SHARE = 0.03
LOOK_ALIKE_SHARE = 0.005
NEWCOMER_E_CARD_SHARE = 0.4  # of notice-issued permit holders: registered right after entry


@dataclass(frozen=True, slots=True)
class Worker:
    """A generated person as an estate part sees them: who they are (name, sex, birth date,
    nationality, passports oldest first; dates as ordinals) and their permit story."""

    person: Person
    permit_number: str
    periods: list[Period]


@dataclass(frozen=True)
class EstateSummary:
    """What was written: rows per table name, e.g. `counts["WP_SQR"] == persons`."""

    persons: int
    seed: int
    as_of: date
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.counts.values())


class Estate:
    """The synchronous generator; `rows` fills as persons are added."""

    def __init__(
        self, persons: int, seed: int, as_of: date, rows: Rows, parts: Mapping[str, EstatePart]
    ) -> None:
        def rng(purpose: str) -> random.Random:
            return random.Random(f"estate:{seed}:{purpose}")

        self.t = t = as_of.toordinal()
        self.rows = rows
        self.parts = [(part, rng(f"part:{name}")) for name, part in parts.items()]
        employers, weights = make_employers(rng("employers"), max(20, persons // 50))
        employer_rows(self.rows, employers)
        benefit_rows(self.rows)
        self.population = Population(rng("people"), t)
        self.permits = PermitOffice(rng("permits"), t, employers, weights)
        self.insurance = Insurance(rng("insurance"), t, self.rows)
        self.exit_entry = ExitEntry(rng("exit-entry"), t, self.rows)
        self.cases = rng("cases")
        look_alikes = max(1, round(persons * LOOK_ALIKE_SHARE)) if persons else 0
        self.weak_exit_entry = set(self.cases.sample(range(persons), look_alikes))
        self.weak_insurance = set(self.cases.sample(range(persons), look_alikes))
        self.next_xkid = 1
        # Holders of a notice-issued permit, who may have registered an e-card before enrolling;
        # drawn after everyone else, from their own generator, so no other row changes.
        self.notice_holders: list[tuple[str, int]] = []
        self.newcomers = rng("newcomer-e-cards")

    def add_person(self, index: int) -> None:
        cases, population, t = self.cases, self.population, self.t
        person = population.draw(index + 1)
        xkzh, periods = self.permits.story()
        first_use = periods[0].applied
        renewal = None
        if cases.random() < RENEWED_SHARE:
            activated = next(
                (p.start for p in periods if p.status in ACTIVATED and p.start is not None), None
            )
            if activated is not None and cases.random() < 0.4:  # before enrolment: insurance has the new one
                renewal = cases.randint(first_use + 20, activated)
            elif first_use + 150 <= t - 10:
                renewal = cases.randint(max(first_use + 150, t - 900), t - 10)
        population.issue_passports(person, first_use, renewal)
        self.next_xkid = write_work_permit(self.rows, person, xkzh, periods, self.next_xkid)
        self.insurance.enrol(person, xkzh, periods)
        latest = periods[-1]
        if latest.status == "20" and latest.letter_date is not None:
            self.notice_holders.append((xkzh, latest.letter_date))
        self.exit_entry.worker(person, periods)
        for part, part_rng in self.parts:
            part.add_person(part_rng, t, Worker(person, xkzh, periods), self.rows)
        if index in self.weak_exit_entry:  # misread in one of the last four digits ...
            self.exit_entry.look_alike(person, mistyped(person.passport, cases.randrange(4)))
        if index in self.weak_insurance:  # ... or in one of the four before: never the same number
            self.insurance.look_alike(person, mistyped(person.passport, 4 + cases.randrange(4)))
        if cases.random() < LEFT_ALONE_SHARE:
            family = cases.random() < 0.6
            if family:  # often the worker's spouse or child, under the worker's surname
                surname = person.name.surname if cases.random() < 0.5 else None
                visitor = population.draw(0, person.nationality, 18, 60, surname)
            else:
                visitor = population.draw(0, None, 18, 28)
            population.issue_passports(visitor, t - 30, None)
            self.exit_entry.visitor(visitor, family)

    def register_newcomers(self) -> None:
        """E-cards registered right after entry on a notice-issued permit: no social security
        number yet (DOMAIN.md, the notice's order)."""
        for xkzh, notice in self.notice_holders:
            if self.newcomers.random() < NEWCOMER_E_CARD_SHARE:
                self.insurance.newcomer_ecard(self.newcomers, xkzh, notice)


async def generate_estate(
    engines: Mapping[AgencyId, AsyncEngine],
    persons: int,
    seed: int,
    as_of: date,
    progress: Progress | None = None,
    agencies: Sequence[AgencySpec] = DEFAULT_AGENCIES,
) -> EstateSummary:
    """Create the tables if missing and fill every agency's database (a plug-in agency's
    through its spec's `estate`); refuses a non-empty estate."""
    if persons < 0:
        raise ValueError("persons must not be negative")
    writer = EstateWriter(engines, agencies)
    try:
        await writer.open()
        parts = {spec.name: spec.estate for spec in agencies if spec.estate is not None}
        estate = Estate(persons, seed, as_of, writer.empty_rows(), parts)
        for start in range(0, persons, PERSONS_PER_FLUSH):
            stop = min(start + PERSONS_PER_FLUSH, persons)
            for index in range(start, stop):
                estate.add_person(index)
            await writer.flush(estate.rows)
            if progress is not None:
                progress("persons", stop, persons)
        estate.register_newcomers()
        await writer.flush(estate.rows)  # the newcomers' e-cards, and the catalogues
    finally:
        await writer.close()
    return EstateSummary(persons, seed, as_of, {name: writer.counts[name] for name in writer.table_names})
