"""Workforce statistics hold against every combination of queries (docs/statistics.md).

An attacker with the REPORTING grant asks every grouping of the six dimensions in up to 100
orders, and every grouping again under every single-dimension filter value, then works out
what subtraction and bounds reveal. The campaign runs in-process against the real resolver,
over a seeded SQLite estate whose record keys come from a seeded generator (so its outcome
is the same on every run); a sample of it goes over HTTP, which must give the same cells.
True counts come from the legacy databases."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from access.caller import Caller
from access.disclosure import BASE
from access.policy import load_policy
from access.scope import scope_of
from app import close_hub, open_hub
from domain.records import CallerRole, StatisticsDimension, TalentCategory, WorkPermitStatus
from identity.store import PERSON, HubStore
from identity.tables import RECORD_KEY_RANGE
from resolvers.context import Context, Info
from resolvers.hub import HubState
from resolvers.loaders import Loaders
from resolvers.query import PersonCriteria, workforce_statistics
from schema import build_schema
from settings import Settings
from tests.conftest import AS_OF, BACKENDS, Estate, caller_headers, fresh_estate, graphql, serve
from tests.legacy import statistics_dimensions

Cell = frozenset[tuple[str, str]]  # the (dimension, value) pairs a cell fixes, filters included
Filter = tuple[str, str] | None
DIMENSIONS = [d.value for d in StatisticsDimension]
ORDERINGS = 100
KEYS_SEED = 8  # the record keys of the attacked estate
# The values the schema enumerates: where a line of cells lists all of them, nothing is left out.
CLOSED = {
    "TALENT_CATEGORY": {c.value for c in TalentCategory} | {"NONE"},
    "PERMIT_STATUS": {s.value for s in WorkPermitStatus} | {"NONE"},
    "INSURED": {"true", "false"},
}
STATISTICS = (
    "query($g: [StatisticsDimension!]!, $f: PersonFilter) "
    "{ workforceStatistics(groupBy: $g, filter: $f) { keys { dimension value } count suppressed } }"
)
FILTER_FIELDS = {
    "NATIONALITY": "nationality",
    "TALENT_CATEGORY": "category",
    "PERMIT_STATUS": "permitStatus",
    "WORK_DISTRICT": "workDistrict",
    "EMPLOYER": "employerCreditCode",
    "INSURED": "insured",
}


@dataclass(frozen=True)
class Answer:
    group_by: tuple[str, ...]
    filter: Filter
    rows: tuple[tuple[tuple[tuple[str, str], ...], int | None], ...]  # (keys in order, count)

    def cells(self) -> dict[Cell, int | None]:
        """The rows by cell: the keys shown plus the value the filter fixes."""
        fixed = {self.filter} if self.filter else set()
        return {frozenset(keys) | fixed: count for keys, count in self.rows}


# ---------------------------------------------------------------- the attacker's queries


@dataclass(frozen=True)
class _ResolverInfo:
    """The part of strawberry's Info the resolver reads: the request's context."""

    context: Context


async def _reporting_context(hub: HubState) -> Context:
    caller = Caller(subject="test-reporting", role=CallerRole.REPORTING)
    return Context(
        hub=hub,
        loaders=Loaders(hub.sources, hub.store, None, AS_OF),
        today=AS_OF,
        caller=caller,
        grant=hub.policy.grant(caller.role, None),
        scope=await scope_of(caller, hub.sources, hub.store, AS_OF),
        audit=None,
    )


def _criteria(filter_: Filter) -> PersonCriteria:
    if filter_ is None:
        return PersonCriteria()
    dimension, value = filter_
    match dimension:
        case "NATIONALITY":
            return PersonCriteria(nationality=value)
        case "TALENT_CATEGORY":
            return PersonCriteria(category=TalentCategory(value))
        case "PERMIT_STATUS":
            return PersonCriteria(permit_status=WorkPermitStatus(value))
        case "WORK_DISTRICT":
            return PersonCriteria(work_district=value)
        case "EMPLOYER":
            return PersonCriteria(employer_credit_code=value)
        case _:
            return PersonCriteria(insured=value == "true")


async def _ask(context: Context, group_by: Sequence[str], filter_: Filter) -> Answer:
    info = cast(Info, _ResolverInfo(context))
    rows = await workforce_statistics(info, [StatisticsDimension(d) for d in group_by], _criteria(filter_))
    return Answer(
        tuple(group_by),
        filter_,
        tuple((tuple((d.value, v) for d, v in row.keys), row.count) for row in rows),
    )


def _groupings() -> Iterator[tuple[str, ...]]:
    for size in range(len(DIMENSIONS) + 1):
        yield from itertools.combinations(DIMENSIONS, size)


def _orderings(grouping: tuple[str, ...], rng: random.Random) -> list[tuple[str, ...]]:
    """Every order of the grouping, or ORDERINGS random distinct ones where there are more."""
    every = list(itertools.permutations(grouping))
    return every if len(every) <= ORDERINGS else rng.sample(every, ORDERINGS)


async def _campaign(context: Context, values: Mapping[str, set[str]], rng: random.Random) -> list[Answer]:
    answers = [await _ask(context, order, None) for g in _groupings() for order in _orderings(g, rng)]
    for dimension in DIMENSIONS:
        for value in sorted(values[dimension] - {"NONE"}):  # no filter names NONE
            for grouping in _groupings():
                order = tuple(rng.sample(grouping, len(grouping)))
                answers.append(await _ask(context, order, (dimension, value)))
    return answers


async def _set_record_keys(settings: Settings, seed: int) -> None:
    """Every person's record key drawn again, from a seeded generator instead of the CSPRNG."""
    engine = create_async_engine(settings.store_url)
    try:
        async with engine.begin() as conn:
            ids = (await conn.execute(select(PERSON.c.id).order_by(PERSON.c.id))).scalars().all()
            rng = random.Random(seed)
            await conn.execute(
                update(PERSON).where(PERSON.c.id == bindparam("b_id")).values(record_key=bindparam("b_key")),
                [{"b_id": i, "b_key": rng.randrange(RECORD_KEY_RANGE)} for i in ids],
            )
    finally:
        await engine.dispose()


def _true_counts(persons: list[dict[str, str]]) -> Counter[Cell]:
    """How many persons each cell of every grouping really has (the empty cell: everyone)."""
    counts: Counter[Cell] = Counter()
    for person in persons:
        pairs = sorted(person.items())
        for size in range(len(pairs) + 1):
            counts.update(frozenset(c) for c in itertools.combinations(pairs, size))
    return counts


@dataclass
class Attacked:
    estate: Estate
    context: Context
    truth: Counter[Cell]
    answers: list[Answer]

    def shown(self) -> dict[Cell, int | None]:
        """What the attacker holds: every cell any answer listed, with the count it showed."""
        shown: dict[Cell, int | None] = {}
        for answer in self.answers:
            shown.update(answer.cells())
        return shown

    def table(self, dimensions: Sequence[str]) -> dict[Cell, int | None]:
        """The unfiltered answer of one grouping, by cell."""
        wanted = frozenset(dimensions)
        return next(a for a in self.answers if a.filter is None and set(a.group_by) == wanted).cells()


@pytest.fixture(scope="module")
async def attacked(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Attacked]:
    async with fresh_estate("sqlite", tmp_path_factory.mktemp("attacked")) as estate:
        await _set_record_keys(estate.settings, KEYS_SEED)
        persons = await statistics_dimensions(estate.settings, AS_OF)
        values = {d: {p[d] for p in persons} for d in DIMENSIONS}
        hub = await open_hub(
            estate.settings, load_policy(build_schema()._schema, estate.settings.policy_path)
        )
        try:
            context = await _reporting_context(hub)
            answers = await _campaign(context, values, random.Random(1))
            yield Attacked(estate, context, _true_counts(persons), answers)
        finally:
            await close_hub(hub)


# ---------------------------------------------------------------- what the attacker works out


def _lines(shown: Mapping[Cell, object]) -> dict[tuple[Cell, str], list[Cell]]:
    """The lines of every table: the listed cells that differ in one dimension only, by their
    marginal (the cell without that dimension, which their persons add up to)."""
    lines: dict[tuple[Cell, str], list[Cell]] = defaultdict(list)
    for cell in shown:
        for pair in cell:
            lines[(cell - {pair}, pair[0])].append(cell)
    return lines


@dataclass(frozen=True)
class Derived:
    """A count worked out: of the persons of `cell` outside the cells `less`."""

    cell: Cell
    less: frozenset[Cell]
    value: int

    def truth(self, truth: Counter[Cell]) -> int:
        return truth[self.cell] - sum(truth[c] for c in self.less)


def difference(shown: Mapping[Cell, int | None]) -> list[Derived]:
    """Every count the attacker works out by subtraction. A line's cells and the cells it does
    not list add up to its marginal: a line with one withheld cell gives that cell away as the
    marginal less the others (and that value is used again, until nothing more follows). In a
    line with none withheld, the marginal less the others is taken for each cell (as if no
    cell were left unlisted), and the marginal less them all for what its unlisted cells add
    up to."""
    known = {cell: count for cell, count in shown.items() if count is not None}
    lines = _lines(shown)
    derived: list[Derived] = []
    progress = True
    while progress:
        progress = False
        for (marginal, _), cells in lines.items():
            unknown = [c for c in cells if c not in known]
            if marginal in known and len(unknown) == 1:
                value = known[marginal] - sum(known[c] for c in cells if c in known)
                known[unknown[0]] = value
                derived.append(Derived(unknown[0], frozenset(), value))
                progress = True
    for (marginal, _), cells in lines.items():
        if marginal in known and all(c in known for c in cells):
            rest = known[marginal] - sum(known[c] for c in cells)
            derived.append(Derived(marginal, frozenset(cells), rest))
            derived += [Derived(c, frozenset(), rest + known[c]) for c in cells]
    return derived


def bounds(shown: Mapping[Cell, int | None], error: int = BASE - 1) -> dict[Cell, tuple[int, int]]:
    """The tightest bounds on true counts the attacker finds by interval reasoning. A shown
    count is within `error` of the truth, and a listed cell has a person; a marginal not listed
    rounded to 0. A line's cells add up to at most its marginal, so each is at most the
    marginal's upper bound less the others' lower bounds, and the marginal at least the sum
    of theirs; where the schema enumerates the dimension, the values a line leaves out are at
    most `error` each, which bounds from the other side too. Repeated until nothing tightens."""
    ceiling = cast(int, shown[frozenset()]) + error
    low = {c: max(1, s - error) if s is not None else 1 for c, s in shown.items()}
    high = {c: s + error if s is not None else ceiling for c, s in shown.items()}
    lines = _lines(shown)
    for marginal, _ in lines:
        if marginal not in shown:
            low[marginal], high[marginal] = 1, error
    tightened = True
    while tightened:
        tightened = False
        for (marginal, dimension), cells in lines.items():
            missing = CLOSED[dimension] - {dict(c)[dimension] for c in cells} if dimension in CLOSED else None
            rest = ceiling if missing is None else error * len(missing)
            sum_low, sum_high = sum(low[c] for c in cells), sum(high[c] for c in cells)
            updates = [(marginal, max(low[marginal], sum_low), min(high[marginal], sum_high + rest))]
            updates += [
                (
                    c,
                    max(low[c], low[marginal] - (sum_high - high[c]) - rest),
                    min(high[c], high[marginal] - (sum_low - low[c])),
                )
                for c in cells
            ]
            for cell, new_low, new_high in updates:
                if (new_low, new_high) != (low[cell], high[cell]):
                    low[cell], high[cell] = new_low, new_high
                    tightened = True
    return {c: (low[c], high[c]) for c in low}


# ---------------------------------------------------------------- the tests


def test_every_query_shows_a_cell_with_the_same_count(attacked: Attacked) -> None:
    assert len(attacked.answers) > 6000
    for answer in attacked.answers:
        # Keys, and rows, follow the order asked for.
        assert all([d for d, _ in keys] == list(answer.group_by) for keys, _ in answer.rows), answer
        values = [tuple(v for _, v in keys) for keys, _ in answer.rows]
        assert values == sorted(values), answer
        cells = answer.cells()
        assert len(cells) == len(answer.rows)
        # Orderings and filters only pick and slice: the cells are the unfiltered table's.
        dimensions = set(answer.group_by) | ({answer.filter[0]} if answer.filter else set())
        expected = {
            c: n
            for c, n in attacked.table(sorted(dimensions)).items()
            if not answer.filter or answer.filter in c
        }
        assert cells == expected, (answer.group_by, answer.filter)


def test_differencing_recovers_no_count_from_1_to_4(attacked: Attacked) -> None:
    derived = difference(attacked.shown())
    assert derived, "the attacker has lines to subtract"
    recovered = [
        d for d in derived if 1 <= d.truth(attacked.truth) <= 4 and d.value == d.truth(attacked.truth)
    ]
    assert recovered == [], f"{len(recovered)} small counts recovered exactly, e.g. {recovered[:3]}"
    assert all(d.value % BASE == 0 for d in derived)


def test_bounds_pin_no_count_from_1_to_4(attacked: Attacked) -> None:
    found = bounds(attacked.shown())
    assert all(low <= attacked.truth[c] <= high for c, (low, high) in found.items()), "sound reasoning"
    assert any(high - low < 2 * (BASE - 1) for low, high in found.values()), "reasoning that tightens"
    pinned = {c: low for c, (low, high) in found.items() if low == high and 1 <= low <= 4}
    assert pinned == {}


def test_counts_are_multiples_of_5_within_4_of_the_truth(attacked: Attacked) -> None:
    shown = attacked.shown()
    total = shown[frozenset()]
    assert total is not None and total % BASE == 0  # the total is rounded too
    for cell, count in shown.items():
        assert count is not None and count > 0 and count % BASE == 0, (cell, count)
        assert abs(count - attacked.truth[cell]) < BASE, (cell, count, attacked.truth[cell])
    # A cell of 5 or more never rounds to 0; one rounding to 0 is left out, whatever the query.
    assert {c for c, n in attacked.truth.items() if n >= BASE} <= set(shown)
    assert any(1 <= n < BASE for c, n in attacked.truth.items() if c not in shown)


def test_rounding_is_unbiased(attacked: Attacked) -> None:
    persons = attacked.truth[frozenset()]
    for dimension in DIMENSIONS:
        table = attacked.table([dimension])
        cells = sum(1 for c in attacked.truth if len(c) == 1 and next(iter(c))[0] == dimension)
        # Each rounding is off by less than 5 and by 0 on average: the sum strays by about its
        # standard deviation, at most 2.5 per cell and root of the cells.
        assert abs(sum(n or 0 for n in table.values()) - persons) <= 2 * BASE * math.sqrt(cells), dimension
    shown = attacked.shown()
    errors = [(shown.get(c) or 0) - n for c, n in attacked.truth.items()]
    assert abs(sum(errors) / len(errors)) < 0.5  # always down (or to the nearest) would be about -1


async def test_http_answers_with_the_same_cells(attacked: Attacked) -> None:
    settings = attacked.estate.settings
    sample = random.Random(2).sample(attacked.answers, 40)
    async with serve(settings, caller_headers(settings, CallerRole.REPORTING)) as http:
        for answer in sample:
            filter_ = None
            if answer.filter:
                dimension, value = answer.filter
                filter_ = {FILTER_FIELDS[dimension]: value == "true" if dimension == "INSURED" else value}
            body = await graphql(http, STATISTICS, {"g": list(answer.group_by), "f": filter_})
            assert "errors" not in body, body["errors"]
            rows = body["data"]["workforceStatistics"]
            assert all(r["suppressed"] is False for r in rows)
            assert [
                (tuple((k["dimension"], k["value"]) for k in r["keys"]), r["count"]) for r in rows
            ] == list(answer.rows)


async def test_the_record_keys_decide_the_rounding(attacked: Attacked) -> None:
    first = await _ask(attacked.context, DIMENSIONS, None)
    assert await _ask(attacked.context, DIMENSIONS, None) == first
    mine = first.cells()
    assert mine == attacked.table(DIMENSIONS)
    settings = attacked.estate.settings
    try:
        await _set_record_keys(settings, KEYS_SEED + 1)
        other = (await _ask(attacked.context, DIMENSIONS, None)).cells()
    finally:
        await _set_record_keys(settings, KEYS_SEED)
    differ = {c for c in mine.keys() | other.keys() if mine.get(c) != other.get(c)}
    assert differ, "other record keys round some cells the other way"
    assert all(attacked.truth[c] % BASE != 0 for c in differ)  # a multiple of 5 never moves
    assert (await _ask(attacked.context, DIMENSIONS, None)).cells() == mine  # the keys put back


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_store_made_before_record_keys_gets_one_per_person(backend: str, tmp_path: Path) -> None:
    async with fresh_estate(backend, tmp_path, persons=30) as estate:
        engine = create_async_engine(estate.settings.store_url)
        store = HubStore.open(estate.settings.store_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("ALTER TABLE person DROP COLUMN record_key"))
            await store.create_tables()
            keys = await _record_keys(engine)
            await store.create_tables()  # drawn once: the keys stay
            assert await _record_keys(engine) == keys
            assert len(keys) == 30 and len(set(keys)) > 25
            assert all(0 <= k < RECORD_KEY_RANGE for k in keys)
            (total,) = await store.statistics([], {}, AS_OF)
            assert (total.count, total.key_sum) == (30, sum(keys))
        finally:
            await store.close()
            await engine.dispose()


APPLY = (
    "mutation($input: ApplyForWorkPermitInput!) "
    "{ applyForWorkPermit(input: $input) { workPermit { number } userErrors { code } } }"
)


async def test_a_person_a_workflow_registers_gets_a_record_key_of_their_own(tmp_path: Path) -> None:
    async with fresh_estate("sqlite", tmp_path, persons=20) as estate:
        settings = estate.settings
        engine = create_async_engine(settings.store_url)
        headers = caller_headers(settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
        try:
            before = await _record_keys(engine)
            async with serve(settings, headers) as http:
                for passport in ("K0100001", "K0100002"):
                    applicant = {
                        "name": {"surname": "Novak", "givenNames": "Petra"},
                        "sex": "FEMALE",
                        "birthDate": "1991-02-03",
                        "nationality": "CZE",
                        "passportNumber": passport,
                    }
                    application = {
                        "applicant": applicant,
                        "employerCreditCode": "91110000600037341L",
                        "category": "B",
                        "position": "Engineer",
                        "workDistrict": "110105",
                        "validTo": "2027-06-15",
                    }
                    body = await graphql(http, APPLY, {"input": application})
                    assert body["data"]["applyForWorkPermit"]["userErrors"] == [], body
            after = await _record_keys(engine)
        finally:
            await engine.dispose()
    assert after[: len(before)] == before  # nobody else's key moves
    new = after[len(before) :]
    assert len(new) == 2 and new[0] != new[1] and all(0 <= k < RECORD_KEY_RANGE for k in new)


async def _record_keys(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(PERSON.c.record_key).order_by(PERSON.c.id))).scalars())
