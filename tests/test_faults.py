"""Each agency in turn fails, hangs, slows down or returns corrupt rows, injected at its real
database connection (faults/): the hub answers everything else, names what is missing and
why, never waits past a source's budget, cuts a failing source off and lets it back after a
good probe, and a mutation that needs a source that is down writes nothing anywhere."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from adapters import Sources
from adapters.base import SourceBudget, SourceGuard, open_engine, problems_by_agency
from adapters.registry import DEFAULT_AGENCIES
from adapters.work_permit import WorkPermitSystem
from app import create_app
from clock import SYSTEM_CLOCK, Clock
from domain.errors import SourceUnavailable
from domain.records import Agency, AgencyId, CallerRole
from faults import Fault, FaultConfigError, FaultPlan, faults_of, install, parse_faults, plan_from_environment
from settings import Settings, budgets_from_environment
from tests.clock import SAFETY_NET, ManualClock, until
from tests.conftest import BACKENDS, caller_headers, fresh_estate, global_ids, read_everything

# On the hub's clock, which the tests move themselves (tests/clock.py): a budget runs out and a
# breaker's pause ends when a test says so, however slow the machine is. In real time the
# budget is also PostgreSQL's statement_timeout, far beyond any healthy statement.
BUDGET = SourceBudget(timeout=600.0, attempts=3, breaker_failures=3, breaker_pause=10.0)

QUERY = """query($l: PersonLookup!) { person(lookup: $l) {
  id
  name { full }
  identityLinks { agency recordKey }
  workPermit { id number }
  socialSecurityNumber
  socialSecurityCard { number }
  visas { number }
  residencePermit { number }
  benefitPayments(first: 50) { edges { node { benefitCode status } } }
} }"""

# The fields of QUERY each agency answers.
FIELDS: dict[Agency, tuple[str, ...]] = {
    Agency.WORK_PERMIT_SYSTEM: ("workPermit",),
    Agency.SOCIAL_INSURANCE: ("socialSecurityNumber",),
    Agency.CARD_SERVICE: ("socialSecurityCard",),
    Agency.EXIT_ENTRY: ("visas", "residencePermit"),
    Agency.BEIJING_PASS: ("benefitPayments",),
}
AGENCIES = [spec.id for spec in DEFAULT_AGENCIES]


@pytest.fixture(scope="module", params=BACKENDS)
async def estate(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Settings]:
    """A fresh estate of its own: the mutation tests must find every database as it was."""
    async with fresh_estate(
        request.param, tmp_path_factory.mktemp(f"faults-{request.param}"), 120, 5
    ) as seeded:
        yield seeded.settings


@dataclass
class Hub:
    http: httpx.AsyncClient
    sources: Sources
    plan: FaultPlan
    clock: ManualClock


@asynccontextmanager
async def running(
    settings: Settings,
    everything: bool = True,
    budgets: Mapping[AgencyId, SourceBudget] | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[Hub]:
    """The hub's ASGI app with its own sources (fresh breakers), every agency on BUDGET (but
    those in `budgets`), on a clock of its own that stands still until the test moves it."""
    headers: dict[str, str] | None = None
    if everything:
        settings, headers = read_everything(settings)
    manual = ManualClock()
    app = create_app(
        replace(
            settings,
            source_budgets={spec.id: (budgets or {}).get(spec.id, BUDGET) for spec in DEFAULT_AGENCIES},
            clock=clock or manual,
        )
    )
    async with app.router.lifespan_context(app):
        sources = app.state.hub.sources
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub", headers=headers) as http:
            yield Hub(http, sources, faults_of(sources), manual)


async def ask(hub: Hub, lookup: dict[str, str], query: str = QUERY) -> dict[str, Any]:
    response = await hub.http.post("/graphql", json={"query": query, "variables": {"l": lookup}})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def errors_at(body: dict[str, Any]) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    found: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for error in body.get("errors", []):
        found.setdefault(tuple(error["path"]), []).append(error)
    return found


async def full_person(hub: Hub) -> tuple[dict[str, str], dict[str, Any]]:
    """A person every agency knows, with a value in every field of QUERY, looked up by permit
    number (an identifier the hub's own store answers), and their full answer."""
    body = await ask(
        hub,
        {},
        "query { persons(first: 100) { edges { node { workPermit { number } } } } }",
    )
    for edge in body["data"]["persons"]["edges"]:
        permit = edge["node"]["workPermit"]
        if permit is None:
            continue
        lookup = {"workPermitNumber": permit["number"]}
        answer = await ask(hub, lookup)
        person = answer["data"]["person"]
        if "errors" not in answer and all(
            person[f] not in (None, []) for fields in FIELDS.values() for f in fields
        ):
            if person["benefitPayments"]["edges"]:
                return lookup, person
    raise AssertionError("the estate should hold a person known to all five agencies")


def assert_unavailable(
    body: dict[str, Any], baseline: dict[str, Any], agency: Agency
) -> list[dict[str, Any]]:
    """The agency's fields are null, each with SOURCE_UNAVAILABLE naming it at its path; the
    person is still found and named (the hub's store) and every other agency still answers."""
    person = body["data"]["person"]
    errors = errors_at(body)
    found = []
    assert person["id"] == baseline["id"] and person["name"] == baseline["name"]
    assert person["identityLinks"] == baseline["identityLinks"]
    for other, fields in FIELDS.items():
        for field in fields:
            if other is agency:
                assert person[field] is None, field
                [error] = errors[("person", field)]
                assert error["path"] == ["person", field]
                assert error["extensions"] == {"code": "SOURCE_UNAVAILABLE", "agency": agency.value}
                assert agency.value in error["message"]
                found.append(error)
            else:
                assert person[field] == baseline[field], field
    assert sum(len(e) for e in errors.values()) == len(found), body["errors"]
    return found


# ---------------------------------------------------------------- a source down, hanging, slow


@pytest.mark.parametrize("agency", AGENCIES)
async def test_a_source_that_is_down_nulls_only_its_own_fields(estate: Settings, agency: Agency) -> None:
    async with running(estate) as hub:
        lookup, baseline = await full_person(hub)
        hub.plan.set(agency, Fault.down())
        body = await ask(hub, lookup)
        assert_unavailable(body, baseline, agency)
        # A list of persons: every one is still found and named; only the agency's fields fail.
        listing = await ask(
            hub,
            {},
            f"query {{ persons(first: 5) {{ edges {{ node {{ name {{ full }} {FIELDS[agency][0]} {{ __typename }} }} }} }} }}"
            if agency is not Agency.SOCIAL_INSURANCE
            else "query { persons(first: 5) { edges { node { name { full } socialSecurityNumber } } } }",
        )
        nodes = [edge["node"] for edge in listing["data"]["persons"]["edges"]]
        assert len(nodes) == 5 and all(node["name"]["full"] for node in nodes)
        assert {e["extensions"]["agency"] for e in listing["errors"]} == {agency.value}


@pytest.mark.parametrize("agency", AGENCIES)
async def test_a_transient_failure_is_retried_within_the_budget(estate: Settings, agency: Agency) -> None:
    async with running(estate) as hub:
        lookup, baseline = await full_person(hub)
        hub.plan.set(agency, Fault.down(times=1))  # the next statement fails, the retry answers
        body = await ask(hub, lookup)
        assert "errors" not in body, body["errors"]
        assert body["data"]["person"] == baseline
        assert hub.plan.injected[agency.value] == 1
        assert hub.sources.sources_status()[agency.value]["failures"] == 0


# The hanging agency's budget: the others' (BUDGET) lies far beyond however often the test
# moves the clock by this much.
HANG_BUDGET = replace(BUDGET, timeout=60.0)


@pytest.mark.parametrize("agency", AGENCIES)
async def test_a_hanging_source_is_given_up_on_at_its_budget(estate: Settings, agency: Agency) -> None:
    async with running(estate, budgets={agency: HANG_BUDGET}) as hub:
        lookup, baseline = await full_person(hub)
        failed_before = hub.sources.sources_status()[agency.value]["failedCalls"]
        hub.plan.set(agency, Fault.hang())  # an hour
        asking = asyncio.create_task(ask(hub, lookup))
        hung = 0

        def hangs_or_answered() -> bool:
            return asking.done() or hub.plan.injected[agency.value] > hung

        while not asking.done():  # each read of the agency hangs until its budget runs out
            await until(hangs_or_answered, "a read of the hanging source, or the answer")
            if hub.plan.injected[agency.value] > hung:
                hung = hub.plan.injected[agency.value]
                assert HANG_BUDGET.timeout is not None
                hub.clock.advance(HANG_BUDGET.timeout)
        body = await asking  # not after the hour: `until` would have given up long before
        for error in assert_unavailable(body, baseline, agency):
            assert "no answer within 60 s" in error["message"]
        # Each call gave up once, when its budget ran out, and was not tried again: no more
        # statements reached the source than calls failed (a call whose budget ran out while
        # it waited for a connection failed without one).
        failed = hub.sources.sources_status()[agency.value]["failedCalls"] - failed_before
        assert 1 <= hub.plan.injected[agency.value] <= failed
        # The cancelled statements left no broken connection behind: the next request answers.
        hub.plan.set(agency, None)
        again = await ask(hub, lookup)
        assert "errors" not in again and again["data"]["person"] == baseline


@pytest.mark.parametrize("agency", AGENCIES)
async def test_a_slow_source_within_its_budget_still_answers(estate: Settings, agency: Agency) -> None:
    """On the real clock: a source slowed down, but well within its budget, answers in full."""
    async with running(estate, clock=SYSTEM_CLOCK) as hub:
        lookup, baseline = await full_person(hub)
        hub.plan.set(agency, Fault.slow(0.2))
        body = await ask(hub, lookup)
        assert hub.plan.injected[agency.value] >= 1  # it was slowed down
        assert "errors" not in body and body["data"]["person"] == baseline


async def test_a_statement_running_past_the_budget_is_cancelled_in_the_database(estate: Settings) -> None:
    """A statement that really runs long (not an injected sleep) is given up on at a real
    budget and ended in the database: SQLite's is interrupted (else the connection could not
    be closed until the endless statement ends, and the call would never return);
    PostgreSQL's is cancelled and no longer runs on the server. The server's own
    statement_timeout is left out of the engine, so that only the hub's cancel can end it."""
    budget = SourceBudget(timeout=1.0, attempts=1)
    url = estate.source_urls[Agency.WORK_PERMIT_SYSTEM]
    source = WorkPermitSystem(open_engine(url), SourceGuard(Agency.WORK_PERMIT_SYSTEM, budget))
    sqlite = source.engine.dialect.name == "sqlite"
    endless = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
        if sqlite
        else "SELECT pg_sleep(3600)"
    )
    try:
        async with asyncio.timeout(SAFETY_NET):  # the endless statement is not waited for
            with pytest.raises(SourceUnavailable, match="no answer within 1 s"):
                async with source.reading() as conn:
                    await conn.execute(text(endless))
            if not sqlite:
                running_on_server = text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND state = 'active' AND query = :endless"
                )
                while True:  # the cancel reaches the server as the next event, not at a time
                    async with source.engine.connect() as conn:
                        if (await conn.execute(running_on_server, {"endless": endless})).scalar_one() == 0:
                            break
                    await asyncio.sleep(0.05)
            async with source.engine.connect() as conn:  # the source's next statement runs
                assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await source.engine.dispose()
    if not sqlite:  # where the engine has one, the server also ends a statement at the budget
        limited = open_engine(url, statement_timeout=1.5)
        try:
            async with limited.connect() as conn:
                assert (await conn.execute(text("SHOW statement_timeout"))).scalar_one() == "1500ms"
        finally:
            await limited.dispose()


# ---------------------------------------------------------------- corrupt rows


@dataclass(frozen=True)
class Corruption:
    agency: Agency
    kind: str
    column: str
    value: str
    fields: tuple[str, ...]  # the fields of QUERY that read the column


CORRUPTIONS = [
    Corruption(Agency.WORK_PERMIT_SYSTEM, "impossible date", "YXQZ", "20261340", ("workPermit",)),
    Corruption(Agency.WORK_PERMIT_SYSTEM, "unknown code", "RCLB", "Z", ("workPermit",)),
    Corruption(Agency.SOCIAL_INSURANCE, "impossible date", "AAC006", "19800230", ("socialSecurityNumber",)),
    Corruption(Agency.SOCIAL_INSURANCE, "unknown code", "AAC004", "7", ("socialSecurityNumber",)),
    Corruption(Agency.SOCIAL_INSURANCE, "failed check character", "AAC002", "", ("socialSecurityNumber",)),
    Corruption(Agency.CARD_SERVICE, "impossible date", "FKRQ", "2025-02-30", ("socialSecurityCard",)),
    Corruption(Agency.CARD_SERVICE, "unknown code", "KZT", "9", ("socialSecurityCard",)),
    Corruption(Agency.CARD_SERVICE, "broken JSON", "GZXKXX", "{broken", ("socialSecurityCard",)),
    Corruption(Agency.EXIT_ENTRY, "impossible date", "QFRQ", "2025/02/30", ("visas", "residencePermit")),
    Corruption(Agency.EXIT_ENTRY, "unknown code", "JLSY", "ZZ", ("residencePermit",)),
    Corruption(Agency.BEIJING_PASS, "impossible date", "FFRQ", "2025-02-30", ("benefitPayments",)),
    Corruption(Agency.BEIJING_PASS, "unknown code", "ZT", "X", ("benefitPayments",)),
]


def record_keys(settings: Settings, baseline: dict[str, Any], corruption: Corruption, field: str) -> set[str]:
    """The keys of the person's records the field is read from."""
    links = {
        link["recordKey"] for link in baseline["identityLinks"] if link["agency"] == corruption.agency.value
    }
    match field:
        case "workPermit":
            return {global_ids(settings).decode(baseline["workPermit"]["id"])[1]}
        case "socialSecurityNumber":
            return links
        case "socialSecurityCard":
            return {baseline["socialSecurityCard"]["number"]}
        case "visas":
            return {visa["number"] for visa in baseline["visas"]}
        case "residencePermit":
            return {baseline["residencePermit"]["number"]}
    return links  # payments: the card number begins each payment's key


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=lambda c: f"{c.agency.value}-{c.column}")
async def test_corrupt_rows_name_the_record_and_the_rest_answers(
    estate: Settings, corruption: Corruption
) -> None:
    async with running(estate) as hub:
        lookup, baseline = await full_person(hub)
        value = corruption.value
        if corruption.kind == "failed check character":
            number = baseline["socialSecurityNumber"]
            value = number[:-1] + ("0" if number[-1] != "0" else "1")
        counted = problems_by_agency[corruption.agency.value]
        hub.plan.set(corruption.agency, Fault.corrupt(corruption.column, value))
        body = await ask(hub, lookup)
    person = body["data"]["person"]
    errors = errors_at(body)
    for field in corruption.fields:
        keys = record_keys(estate, baseline, corruption, field)
        field_errors = errors.pop(("person", field))
        for error in field_errors:
            extensions = error["extensions"]
            assert (
                extensions["code"] == "SOURCE_DATA_INVALID"
                and extensions["agency"] == corruption.agency.value
            )
            assert extensions["field"] == corruption.column
            key = extensions["recordKey"]
            assert (key.split("/")[0] if corruption.agency is Agency.BEIJING_PASS else key) in keys, (
                key,
                keys,
            )
            assert key in error["message"]
        if corruption.kind == "failed check character":
            assert person[field] == value  # returned with its error
        elif field == "visas":
            assert person["visas"] == []  # every row unreadable, each named
            assert {e["extensions"]["recordKey"] for e in field_errors} == keys
        elif field == "benefitPayments":
            assert person["benefitPayments"]["edges"] == []
        else:
            assert person[field] is None
    assert not errors, errors  # nothing else is touched
    for fields in FIELDS.values():
        for field in fields:
            if field not in corruption.fields:
                assert person[field] == baseline[field]
    assert person["name"] == baseline["name"]
    assert problems_by_agency[corruption.agency.value] > counted  # counted for the metrics


# ---------------------------------------------------------------- the circuit breaker


@pytest.mark.parametrize("agency", AGENCIES)
async def test_the_breaker_opens_fails_fast_and_closes_after_a_good_probe(
    estate: Settings, agency: Agency
) -> None:
    async with running(estate) as hub:
        lookup, baseline = await full_person(hub)
        assert hub.sources.sources_status()[agency.value]["breaker"] == "closed"
        hub.plan.set(agency, Fault.down())
        for _ in range(BUDGET.breaker_failures):
            assert_unavailable(await ask(hub, lookup), baseline, agency)
            if hub.sources.sources_status()[agency.value]["breaker"] == "open":
                break
        status = hub.sources.sources_status()[agency.value]
        assert status["breaker"] == "open" and status["failures"] >= BUDGET.breaker_failures
        # Open: the calls fail at once, and no statement reaches the database.
        reached = hub.plan.statements[agency.value]
        rejected = status["rejectedCalls"]
        for error in assert_unavailable(await ask(hub, lookup), baseline, agency):
            assert "cut off after repeated failures" in error["message"]
        assert hub.plan.statements[agency.value] == reached
        assert hub.sources.sources_status()[agency.value]["rejectedCalls"] > rejected
        # The hub's clock stands still: open however long all this took. Once the pause is
        # over calls probe; the source still fails, so the breaker opens again.
        hub.clock.advance(BUDGET.breaker_pause)
        assert hub.sources.sources_status()[agency.value]["breaker"] == "half_open"
        assert_unavailable(await ask(hub, lookup), baseline, agency)
        assert hub.plan.statements[agency.value] > reached
        assert hub.sources.sources_status()[agency.value]["breaker"] == "open"
        # The source recovers: after the pause a good probe closes the breaker.
        hub.plan.set(agency, None)
        hub.clock.advance(BUDGET.breaker_pause)
        assert hub.sources.sources_status()[agency.value]["breaker"] == "half_open"
        body = await ask(hub, lookup)
        assert "errors" not in body and body["data"]["person"] == baseline
        status = hub.sources.sources_status()[agency.value]
        assert status["breaker"] == "closed" and status["failures"] == 0


async def test_on_the_system_clock_the_breaker_pauses_in_real_time() -> None:
    """In service (SYSTEM_CLOCK) the pause is real seconds: an open breaker fails fast, and
    lets calls probe once the pause has passed (a sleep lasts at least as long as asked, however
    loaded the machine)."""

    async def fail(guard: SourceGuard) -> None:
        with pytest.raises(SourceUnavailable):
            async with guard.bounded():
                raise sa_exc.OperationalError("SELECT 1", {}, OSError("refused"))

    long = SourceGuard(Agency.EXIT_ENTRY, SourceBudget(breaker_failures=1, breaker_pause=3600))
    await fail(long)
    assert long.status()["breaker"] == "open"
    with pytest.raises(SourceUnavailable, match="cut off"):
        async with long.bounded():
            pass
    short = SourceGuard(Agency.EXIT_ENTRY, SourceBudget(breaker_failures=1, breaker_pause=0.05))
    await fail(short)
    await asyncio.sleep(0.1)
    assert short.status()["breaker"] == "half_open"
    async with short.bounded():
        pass
    assert short.status()["breaker"] == "closed"


# ---------------------------------------------------------------- mutations with a source down


async def snapshot(settings: Settings) -> dict[str, list[str]]:
    """Every row of every table of the five agencies and the hub's store, but the workflow
    engine's own log of runs."""
    urls = {**{str(a): u for a, u in settings.source_urls.items()}, "HUB_STORE": settings.store_url}
    tables: dict[str, list[str]] = {}
    for name, url in urls.items():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
                for table in names:
                    if table in ("workflow_run", "workflow_journal"):
                        continue
                    rows = (await conn.execute(text(f'SELECT * FROM "{table}"'))).all()
                    tables[f"{name}.{table}"] = sorted(repr(tuple(row)) for row in rows)
        finally:
            await engine.dispose()
    return tables


async def mutate(
    hub: Hub, settings: Settings, role: CallerRole, purpose: str, name: str, arguments: dict[str, Any]
) -> list[dict[str, Any]]:
    kind = name[0].upper() + name[1:]
    response = await hub.http.post(
        "/graphql",
        json={
            "query": f"mutation($i: {kind}Input!) {{ {name}(input: $i) {{ userErrors {{ code message field }} }} }}",
            "variables": {"i": arguments},
        },
        headers=caller_headers(settings, role, purpose),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    errors: list[dict[str, Any]] = body["data"][name]["userErrors"]
    return errors


async def test_an_application_with_the_permit_system_down_writes_nothing(estate: Settings) -> None:
    application = {
        "applicant": {
            "name": {"surname": "Lindqvist", "givenNames": "Eva"},
            "sex": "FEMALE",
            "birthDate": "1991-02-03",
            "nationality": "SWE",
            "passportNumber": "F0900001",
        },
        "employerCreditCode": "91110000600037341L",
        "category": "B",
        "position": "Engineer",
        "workDistrict": "110105",
        "validTo": "2027-06-01",
        "idempotencyKey": "apply-while-down",
    }
    async with running(estate, everything=False) as hub:
        before = await snapshot(estate)
        hub.plan.set(Agency.WORK_PERMIT_SYSTEM, Fault.down())
        errors = await mutate(
            hub,
            estate,
            CallerRole.WORK_PERMIT_AUTHORITY,
            "permit-administration",
            "applyForWorkPermit",
            application,
        )
        assert [e["code"] for e in errors] == ["SOURCE_UNAVAILABLE"]
        assert "WORK_PERMIT_SYSTEM" in errors[0]["message"] and "Nothing was changed" in errors[0]["message"]
        assert await snapshot(estate) == before
        # The unavailable source's answer is not kept: once the source is back, the same key runs.
        hub.plan.set(Agency.WORK_PERMIT_SYSTEM, None)
        errors = await mutate(
            hub,
            estate,
            CallerRole.WORK_PERMIT_AUTHORITY,
            "permit-administration",
            "applyForWorkPermit",
            application,
        )
        assert errors == []
        assert await snapshot(estate) != before


@pytest.fixture(scope="module")
async def enrollment(estate: Settings) -> dict[str, Any]:
    """The input of an enrollment that writes both the insurance agency and the card service:
    a notice-issued permit of a person the agency does not know yet, made valid in place."""
    store = create_async_engine(estate.store_url)
    wp = create_async_engine(estate.source_urls[Agency.WORK_PERMIT_SYSTEM])
    try:
        async with store.connect() as conn:
            uninsured = {
                row[0]
                for row in await conn.execute(
                    text(
                        "SELECT owner_key FROM identity_link l WHERE record_type = 'WP_SQR' AND NOT EXISTS "
                        "(SELECT 1 FROM identity_link i WHERE i.person_id = l.person_id AND i.record_type = 'AC01')"
                    )
                )
            }
        async with wp.begin() as conn:
            permits = (
                await conn.execute(
                    text(
                        """SELECT "XKID", "XKZH", "SQRID", "TZSBH", "TYSHXYDM" FROM "WP_XKZ" WHERE "ZT" = '20' ORDER BY "XKID" """
                    )
                )
            ).all()
            permit = next(p for p in permits if str(p.SQRID) in uninsured)
            await conn.execute(
                text(f"""UPDATE "WP_XKZ" SET "ZT" = '30', "YXQZ" = '20300101' WHERE "XKID" = {permit.XKID}""")
            )
    finally:
        await store.dispose()
        await wp.dispose()
    return {
        "workPermitNumber": permit.XKZH.strip(),
        "evidence": {"notificationLetterNumber": permit.TZSBH.strip()},
        "employerCreditCode": permit.TYSHXYDM.strip(),
        "insuringDistrict": "110105",
    }


@pytest.mark.parametrize("agency", [Agency.SOCIAL_INSURANCE, Agency.CARD_SERVICE])
async def test_an_enrollment_with_an_involved_source_down_writes_nothing(
    estate: Settings, enrollment: dict[str, Any], agency: Agency
) -> None:
    async with running(estate, everything=False) as hub:
        before = await snapshot(estate)
        hub.plan.set(agency, Fault.down())
        errors = await mutate(
            hub,
            estate,
            CallerRole.SOCIAL_INSURANCE_AGENCY,
            "insurance-enrollment",
            "enrollInInsurance",
            enrollment,
        )
        assert [e["code"] for e in errors] == ["SOURCE_UNAVAILABLE"], errors
        assert agency.value in errors[0]["message"]
        # With the card service down the insurance agency's rows were written, then undone.
        assert await snapshot(estate) == before
        if agency is Agency.CARD_SERVICE:
            assert hub.plan.statements[Agency.SOCIAL_INSURANCE.value] > 0


async def test_an_enrollment_with_every_source_up_writes_both_agencies(
    estate: Settings, enrollment: dict[str, Any]
) -> None:
    """The input above is a good one: with nothing down, the same enrollment writes."""
    async with running(estate, everything=False) as hub:
        before = await snapshot(estate)
        errors = await mutate(
            hub,
            estate,
            CallerRole.SOCIAL_INSURANCE_AGENCY,
            "insurance-enrollment",
            "enrollInInsurance",
            enrollment,
        )
        assert errors == []
        after = await snapshot(estate)
    changed = {table for table in after if after[table] != before.get(table)}
    assert {"SOCIAL_INSURANCE.AC01", "CARD_SERVICE.SBK_KXX"} <= changed


# ---------------------------------------------------------------- configuration


def test_faults_are_configured_inline_or_by_file(tmp_path: Path) -> None:
    assert parse_faults("WORK_PERMIT_SYSTEM=down; EXIT_ENTRY=slow:0.5; CARD_SERVICE=hang") == {
        Agency.WORK_PERMIT_SYSTEM: Fault("down"),
        Agency.EXIT_ENTRY: Fault("slow", seconds=0.5),
        Agency.CARD_SERVICE: Fault("hang", seconds=3600.0),
    }
    assert parse_faults("beijing_pass=corrupt:ZT=X@0.25") == {
        Agency.BEIJING_PASS: Fault("corrupt", column="ZT", value="X", rate=0.25)
    }
    assert parse_faults('{"SOCIAL_INSURANCE": {"kind": "down", "times": 2}}') == {
        Agency.SOCIAL_INSURANCE: Fault("down", times=2)
    }
    for broken in ("NOWHERE=down", "EXIT_ENTRY=explode", "EXIT_ENTRY=slow", "EXIT_ENTRY=down@2", "{"):
        with pytest.raises(FaultConfigError):
            parse_faults(broken)
    toml = tmp_path / "faults.toml"
    toml.write_text('[EXIT_ENTRY]\nkind = "corrupt"\ncolumn = "QFRQ"\nvalue = "2025/02/30"\n')
    plan = plan_from_environment({"HUB_FAULTS_FILE": str(toml)})
    assert plan.active() == {Agency.EXIT_ENTRY: Fault("corrupt", column="QFRQ", value="2025/02/30")}
    assert plan_from_environment({"HUB_FAULTS_FILE": str(tmp_path / "later.json")}).active() == {}
    (tmp_path / "broken.json").write_text('{"EXIT_ENTRY": {"kind": "fall over"}}')
    with pytest.raises(FaultConfigError):
        plan_from_environment({"HUB_FAULTS_FILE": str(tmp_path / "broken.json")})


async def test_a_fault_file_switches_faults_while_the_hub_runs(estate: Settings, tmp_path: Path) -> None:
    file = tmp_path / "faults.json"  # not there yet: no fault until it is
    async with running(estate) as hub:
        lookup, baseline = await full_person(hub)
        plan = FaultPlan(file=file)
        install(hub.sources, plan)
        file.write_text(json.dumps({"BEIJING_PASS": {"kind": "down"}}))
        await asyncio.sleep(0.1)  # the file is looked at every 50 ms
        assert_unavailable(await ask(hub, lookup), baseline, Agency.BEIJING_PASS)
        file.write_text("{}")
        await asyncio.sleep(0.1)
        body = await ask(hub, lookup)
        assert "errors" not in body and body["data"]["person"] == baseline


def test_budgets_come_from_the_environment() -> None:
    budgets = budgets_from_environment(
        {
            "HUB_SOURCE_TIMEOUT": "1.5",
            "HUB_TIMEOUT_EXIT_ENTRY_SECONDS": "0.25",
            "HUB_BREAKER_FAILURES": "4",
            "HUB_BREAKER_PAUSE": "30",
            "HUB_SOURCE_ATTEMPTS": "2",
        }
    )
    assert budgets[Agency.EXIT_ENTRY] == SourceBudget(0.25, 2, 4, 30.0)
    assert budgets[Agency.WORK_PERMIT_SYSTEM] == SourceBudget(1.5, 2, 4, 30.0)
    assert budgets_from_environment({})[Agency.CARD_SERVICE] == SourceBudget()
    for bad in ({"HUB_SOURCE_TIMEOUT": "soon"}, {"HUB_TIMEOUT_BEIJING_PASS_SECONDS": "0"}):
        with pytest.raises(ValueError, match="HUB_"):
            budgets_from_environment(bad)
    assert (
        Settings.from_environment({"HUB_SOURCE_TIMEOUT": "3"}).source_budgets[Agency.BEIJING_PASS].timeout
        == 3
    )


@pytest.mark.parametrize("agency", [Agency.WORK_PERMIT_SYSTEM, Agency.SOCIAL_INSURANCE])
async def test_an_employer_whose_staff_cannot_be_worked_out_gets_503(
    estate: Settings, agency: Agency
) -> None:
    """An employer's scope comes from the permit and insurance sources: with one down the hub
    cannot tell its staff, so it answers nothing, with the agency named, rather than a 500."""
    async with running(estate, everything=False) as hub:
        headers = caller_headers(estate, CallerRole.EMPLOYER, "employment", employer="91110000600037341L")
        hub.plan.set(agency, Fault.down())
        response = await hub.http.post(
            "/graphql", json={"query": "{ persons { totalCount } }"}, headers=headers
        )
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "SOURCE_UNAVAILABLE" and agency.value in error["message"]
        hub.plan.set(agency, None)
        recovered = await hub.http.post(
            "/graphql", json={"query": "{ persons { totalCount } }"}, headers=headers
        )
        assert recovered.status_code == 200
