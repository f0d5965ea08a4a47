"""Workflows with many processes on the same databases: number series never collide, each
acknowledged write is there exactly once, one idempotency key runs once whichever process it
reaches, and a run whose process is killed mid-run is undone exactly once by a survivor after
its lease expired, never while its process lives.

The processes are real `hub run` servers (beside each other on one store, as workers are,
with HUB_REDIS_URL); the lease rules are also driven in this process with clocks the test
moves, so that no assertion waits on how fast the machine is."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from adapters import Sources
from adapters.base import open_engine
from adapters.work_permit import writes as wp_writes
from adapters.work_permit.tables import WP_XKZ
from domain.records import Agency, CallerRole
from identity.store import HubStore
from settings import Settings
from tests.clock import SAFETY_NET, ManualClock
from tests.conftest import AS_OF, BACKENDS, Estate, caller_headers, fresh_estate
from tests.legacy import rows
from tests.servers import free_port
from tests.test_workers import HUB, REDIS_URL, ROOT, hub_environment, redis_unavailable, run_hub
from workflows.engine import RUN, Journal, WorkflowRunner
from workflows.registry import workflow_runner

WP = Agency.WORK_PERMIT_SYSTEM.value
AUTHORITY = (CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
APPLY = """mutation($i: ApplyForWorkPermitInput!) { applyForWorkPermit(input: $i) {
  workPermit { id number } userErrors { code message field } } }"""
LETTER = """mutation($i: IssueNotificationLetterInput!) { issueNotificationLetter(input: $i) {
  workPermit { notificationLetterNumber } userErrors { code message field } } }"""
EXTEND = """mutation($i: ExtendWorkPermitInput!) { extendWorkPermit(input: $i) {
  workPermit { validTo } userErrors { code message field } } }"""
UNDONE_LINE = "workflow run undone after its process stopped"


@pytest.fixture(scope="module", params=BACKENDS)
async def shared_estate(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Estate]:
    """An estate of its own: the processes below write its agencies' databases."""
    async with fresh_estate(request.param, tmp_path_factory.mktemp(f"across-{request.param}")) as seeded:
        yield seeded


class Hub:
    """One `hub run` process serving the estate beside others (HUB_REDIS_URL set), its JSON
    logs in a file; `faults` are its own (HUB_FAULTS), not its siblings'."""

    def __init__(self, settings: Settings, log: Path, faults: str | None = None, **extra: str) -> None:
        self.port = free_port()
        self.log = log
        # Few connections each: the suite and its neighbours share one PostgreSQL server.
        env = hub_environment(settings, HUB_REDIS_URL=REDIS_URL, HUB_DB_POOL="4", **extra)
        if faults:
            env["HUB_FAULTS"] = faults
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*HUB, "run", "--port", str(self.port)], cwd=ROOT, env=env, stdout=out, stderr=out
            )
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        async with asyncio.timeout(SAFETY_NET):
            while "Application startup complete" not in self.log.read_text():
                assert self.process.poll() is None, self.log.read_text()[-3000:]
                await asyncio.sleep(0.05)

    def lines(self, message: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):
                entry = orjson.loads(line)
                if entry.get("message") == message:
                    found.append(entry)
        return found


@contextmanager
def hubs(*started: Hub) -> Iterator[tuple[Hub, ...]]:
    try:
        yield started
    finally:
        for hub in started:
            if hub.process.poll() is None:
                hub.process.send_signal(signal.SIGTERM)
                try:
                    hub.process.wait(timeout=SAFETY_NET)
                except subprocess.TimeoutExpired:
                    hub.process.kill()
                    hub.process.wait()


def needs_redis() -> None:
    reason = redis_unavailable()
    if reason is not None:
        pytest.skip(reason)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait for an event the test cannot be told of, polling; the net only catches a broken hub."""
    async with asyncio.timeout(SAFETY_NET):
        while not await check():  # noqa: ASYNC110  (another process writes the database: no event to await)
            await asyncio.sleep(0.05)
    assert await check(), what


async def mutate(
    http: httpx.AsyncClient, url: str, query: str, arguments: dict[str, Any], headers: Any
) -> Any:
    answer = await http.post(
        f"{url}/graphql", json={"query": query, "variables": {"i": arguments}}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def application(n: int, employer: str) -> dict[str, Any]:
    return {
        "applicant": {
            "name": {"surname": "Parallel", "givenNames": f"Tester {n}"},
            "sex": "FEMALE" if n % 2 else "MALE",
            "birthDate": f"19{60 + n % 40}-0{1 + n % 9}-1{n % 10}",
            "nationality": ["DEU", "FRA", "USA", "JPN", "BRA"][n % 5],
            "passportNumber": f"PX{n:06d}",
        },
        "employerCreditCode": employer,
        "category": "B",
        "position": "Engineer",
        "workDistrict": "110105",
        "validTo": "2027-06-01",
        "idempotencyKey": f"parallel-{n}",
    }


async def test_keyed_mutations_through_two_processes_give_distinct_numbers_each_written_once(
    shared_estate: Estate, tmp_path: Path
) -> None:
    needs_redis()
    settings = shared_estate.settings
    wp = settings.source_urls[Agency.WORK_PERMIT_SYSTEM]
    [employer] = await rows(
        wp, 'SELECT "TYSHXYDM" FROM "WP_XKZ" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1'
    )
    headers = caller_headers(settings, *AUTHORITY)
    keys = 30
    with hubs(Hub(settings, tmp_path / "a.log"), Hub(settings, tmp_path / "b.log")) as (a, b):
        await asyncio.gather(a.ready(), b.ready())
        async with httpx.AsyncClient(timeout=SAFETY_NET, limits=httpx.Limits(max_connections=64)) as http:
            # Every key reaches both processes at once: they race on the key and on the numbers.
            applied = await asyncio.gather(
                *(
                    mutate(http, hub.url, APPLY, application(n, employer[0]), headers)
                    for n in range(keys)
                    for hub in (a, b)
                )
            )
            assert [answer["userErrors"] for answer in applied] == [[]] * (2 * keys)
            permits = [answer["workPermit"] for answer in applied]
            twins = list(zip(permits[::2], permits[1::2], strict=True))
            assert all(first == second for first, second in twins), "one key, one answer"
            numbers = [first["number"] for first, _ in twins]
            assert len(set(numbers)) == keys
            # The letters, issued for every permit at once through either process.
            lettered = await asyncio.gather(
                *(
                    mutate(http, (a, b)[i % 2].url, LETTER, {"workPermitId": permit["id"]}, headers)
                    for i, (permit, _) in enumerate(twins)
                )
            )
        assert [answer["userErrors"] for answer in lettered] == [[]] * keys
        letters = [answer["workPermit"]["notificationLetterNumber"] for answer in lettered]
        assert len(set(letters)) == keys and all(letters)
    # Every acknowledged permit is in the work-permit system exactly once, with its letter,
    # each applicant once, and no number twice anywhere in it.
    quoted = ", ".join(f"'{number}'" for number in numbers)
    written = await rows(wp, f'SELECT "XKZH", "TZSBH" FROM "WP_XKZ" WHERE "XKZH" IN ({quoted})')
    assert sorted((row.XKZH, row.TZSBH) for row in written) == sorted(zip(numbers, letters, strict=True))
    passports = ", ".join(f"'PX{n:06d}'" for n in range(keys))
    assert (await rows(wp, f'SELECT count(*) AS n FROM "WP_SQR" WHERE "HZHM" IN ({passports})'))[0].n == keys
    for column in ("XKZH", "TZSBH"):
        twice = await rows(
            wp, f"""SELECT "{column}" FROM "WP_XKZ" WHERE "{column}" <> '' GROUP BY 1 HAVING count(*) > 1"""
        )
        # A permit number repeats only across one applicant's periods; a letter never.
        if column == "TZSBH":
            assert twice == []
        else:
            assert not set(numbers) & {row[0] for row in twice}
    verified = run_hub("audit", "verify", env=hub_environment(settings))
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_a_process_killed_mid_run_leaves_nothing_and_a_survivor_undoes_the_run_once(
    shared_estate: Estate, tmp_path: Path
) -> None:
    needs_redis()
    settings = shared_estate.settings
    wp = settings.source_urls[Agency.WORK_PERMIT_SYSTEM]
    store = settings.store_url
    [permit] = await rows(
        wp, """SELECT "XKID", "XKZH", "YXQZ" FROM "WP_XKZ" WHERE "ZT" = '30' ORDER BY "XKID" DESC LIMIT 1"""
    )
    history = (await rows(wp, f'SELECT count(*) AS n FROM "WP_YWJL" WHERE "XKID" = {permit.XKID}'))[0].n
    headers = caller_headers(settings, *AUTHORITY)
    extension = {"workPermitNumber": permit.XKZH, "validTo": "2039-12-31", "idempotencyKey": "killed-once"}

    async def run_row() -> Any:
        found = await rows(store, "SELECT id, status FROM workflow_run WHERE idempotency_key = 'killed-once'")
        return found[0] if found else None

    async def extended_in_permit_system() -> bool:
        [row] = await rows(wp, f'SELECT "YXQZ" FROM "WP_XKZ" WHERE "XKID" = {permit.XKID}')
        return bool(row.YXQZ == "20391231")

    # The doomed process hangs at the run's second agency, the card service, after its write to
    # the work-permit system committed; the survivor answers at once when a key is in flight.
    doomed = Hub(
        settings,
        tmp_path / "doomed.log",
        faults="CARD_SERVICE=hang",
        HUB_TIMEOUT_CARD_SERVICE_SECONDS="3600",
        HUB_RUN_LEASE="2",
    )
    survivor = Hub(settings, tmp_path / "survivor.log", HUB_RUN_LEASE="2", HUB_IDEMPOTENCY_WAIT="0")
    with hubs(doomed, survivor):
        await asyncio.gather(doomed.ready(), survivor.ready())
        async with httpx.AsyncClient(timeout=SAFETY_NET) as http:
            cut_short = asyncio.create_task(mutate(http, doomed.url, EXTEND, extension, headers))
            await until(extended_in_permit_system, "the doomed run wrote the work-permit system")
            run = await run_row()
            assert run.status == "RUNNING"
            # The same key at the sibling while the run is live: refused clearly, not run twice.
            busy = await mutate(http, survivor.url, EXTEND, extension, headers)
            assert [e["code"] for e in busy["userErrors"]] == ["CONFLICT"]
            assert "still running" in busy["userErrors"][0]["message"]
            assert (await run_row()).status == "RUNNING", "a live sibling's run is never undone"
            doomed.process.send_signal(signal.SIGKILL)
            assert doomed.process.wait(timeout=SAFETY_NET) == -signal.SIGKILL
            with pytest.raises(httpx.TransportError):
                await cut_short

            async def undone() -> bool:
                found = await rows(store, f"SELECT status FROM workflow_run WHERE id = {run.id}")
                return bool(found[0].status == "UNDONE")

            await until(undone, "the survivor undid the run once its lease expired")
            assert not await extended_in_permit_system()
            [row] = await rows(wp, f'SELECT "YXQZ" FROM "WP_XKZ" WHERE "XKID" = {permit.XKID}')
            assert row.YXQZ == permit.YXQZ
            assert (await rows(wp, f'SELECT count(*) AS n FROM "WP_YWJL" WHERE "XKID" = {permit.XKID}'))[
                0
            ].n == history
            assert [line["run"] for line in survivor.lines(UNDONE_LINE)] == [run.id], "undone exactly once"
            # The key was freed with the undo: the retry runs, once.
            retried = await mutate(http, survivor.url, EXTEND, extension, headers)
            assert retried["userErrors"] == [] and retried["workPermit"]["validTo"] == "2039-12-31"
    assert await extended_in_permit_system()
    assert (await rows(wp, f'SELECT count(*) AS n FROM "WP_YWJL" WHERE "XKID" = {permit.XKID}'))[
        0
    ].n == history + 1


# ---------------------------------------------------------------- the lease rules, on moved clocks


async def _runner(
    settings: Settings, clock: ManualClock
) -> tuple[WorkflowRunner, Callable[[], Awaitable[None]]]:
    """A runner on engines of its own, as another process has: its own pools and sessions."""
    sources = Sources.open(settings.source_urls)
    store = HubStore.open(settings.store_url)
    runner = workflow_runner(sources, store, clock=clock, lease=30.0, shared=True)

    async def close() -> None:
        await sources.close()
        await store.close()

    return runner, close


async def test_a_live_run_keeps_its_lease_and_an_expired_one_is_claimed_by_one_sibling(
    shared_estate: Estate,
) -> None:
    settings = shared_estate.settings
    wp = settings.source_urls[Agency.WORK_PERMIT_SYSTEM]
    [period] = await rows(
        wp, """SELECT "XKID", "YXQZ" FROM "WP_XKZ" WHERE "ZT" = '30' ORDER BY "XKID" LIMIT 1"""
    )
    start = datetime.now(UTC)
    own_clock, siblings_clock = ManualClock(start), ManualClock(start)
    own, close_own = await _runner(settings, own_clock)
    sibling, close_sibling = await _runner(settings, siblings_clock)
    third, close_third = await _runner(settings, siblings_clock)
    held, release = asyncio.Event(), asyncio.Event()

    async def body(journal: Journal) -> dict[str, Any]:
        async with journal.writing(WP) as conn:
            await journal.update(conn, WP, WP_XKZ, {"XKID": period.XKID}, {"YXQZ": "20991231"})
        held.set()
        await release.wait()
        async with journal.writing(WP) as conn:
            await journal.update(conn, WP, WP_XKZ, {"XKID": period.XKID}, {"YXQZ": "20981231"})
        return {}

    async def end_date() -> str:
        return str((await rows(wp, f'SELECT "YXQZ" FROM "WP_XKZ" WHERE "XKID" = {period.XKID}'))[0].YXQZ)

    try:
        running = asyncio.create_task(own.run("extendWorkPermit", "lease-test", "held", {"n": 1}, body))
        await asyncio.wait_for(held.wait(), SAFETY_NET)
        assert await sibling.recover() == 0  # the lease (30 s) is live
        own_clock.advance(20)
        await own.renew_leases()  # its process renews it: now it holds until 50 s
        siblings_clock.advance(31)  # past the first lease, not the renewed one
        assert await sibling.recover() == 0
        assert await end_date() == "20991231"
        siblings_clock.advance(20)  # 51 s: expired, its process stopped renewing
        claimed = await asyncio.gather(sibling.recover(), third.recover())
        assert sorted(claimed) == [0, 1], "one sibling claims and undoes it, the other finds it taken"
        assert await end_date() == period.YXQZ
        release.set()
        outcome = await asyncio.wait_for(running, SAFETY_NET)
        # The run lost its lease: its next block committed nothing, and it says so.
        assert [e.code for e in outcome.errors] == ["SOURCE_UNAVAILABLE"] and "lease" in outcome.errors[
            0
        ].message
        assert await end_date() == period.YXQZ
        [run] = await rows(
            settings.store_url,
            "SELECT status, idempotency_key FROM workflow_run WHERE client = 'lease-test'",
        )
        assert (run.status, run.idempotency_key) == ("UNDONE", None)
    finally:
        release.set()
        await close_own()
        await close_sibling()
        await close_third()


async def test_a_number_the_agency_issued_itself_is_never_reused(shared_estate: Estate) -> None:
    settings = shared_estate.settings
    wp = settings.source_urls[Agency.WORK_PERMIT_SYSTEM]
    runner, close = await _runner(settings, ManualClock())

    async def letter(journal: Journal) -> dict[str, Any]:
        async with journal.writing(WP) as conn:
            return {"letter": await wp_writes.next_letter_number(journal, conn, AS_OF)}

    try:
        first = (await runner.run("letterNumber", "series-test", None, {}, letter)).result["letter"]
        again = (await runner.run("letterNumber", "series-test", None, {}, letter)).result["letter"]
        assert int(again[-7:]) == int(first[-7:]) + 1, "an allocated number is not handed out twice"
        # The agency issues a number of the series itself, beyond the hub's last.
        issued_itself = f"{first[:-7]}{int(first[-7:]) + 5:07d}"
        [blank] = await rows(wp, """SELECT "XKID" FROM "WP_XKZ" WHERE "TZSBH" = '' ORDER BY "XKID" LIMIT 1""")
        engine = open_engine(wp)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    WP_XKZ.update().where(WP_XKZ.c.XKID == blank.XKID).values(TZSBH=issued_itself)
                )
        finally:
            await engine.dispose()
        after = (await runner.run("letterNumber", "series-test", None, {}, letter)).result["letter"]
        assert int(after[-7:]) == int(issued_itself[-7:]) + 1
    finally:
        await close()


async def test_recovery_restores_what_the_dead_run_wrote_never_what_a_sibling_wrote_since(
    shared_estate: Estate,
) -> None:
    """A process died with a block uncommitted (its database rolled it back) after journaling
    an insert under the next key, which a sibling's run has taken since: the recovery leaves
    the sibling's row, and undoes the dead run's committed change."""
    settings = shared_estate.settings
    wp = settings.source_urls[Agency.WORK_PERMIT_SYSTEM]
    clock = ManualClock()
    runner, close = await _runner(settings, clock)
    [committed, siblings] = await rows(
        wp, """SELECT * FROM "WP_XKZ" WHERE "ZT" = '30' ORDER BY "XKID" LIMIT 2"""
    )
    engine = open_engine(wp)
    try:
        async with engine.begin() as conn:  # the dead run's first block, committed
            await conn.execute(WP_XKZ.update().where(WP_XKZ.c.XKID == committed.XKID).values(YXQZ="20990101"))
        async with runner.store.engine.begin() as conn:
            run_id = (
                await conn.execute(
                    RUN.insert()
                    .values(
                        kind="extendWorkPermit",
                        client="dead",
                        input_hash="x",
                        status="RUNNING",
                        started_at=clock.now(),
                        lease_owner="a process that is gone",
                        lease_expires=clock.now(),
                    )
                    .returning(RUN.c.id)
                )
            ).scalar_one()
            journal = (
                "INSERT INTO workflow_journal (run_id, target, table_name, key, before, after_image)"
                " VALUES (:run, :target, 'WP_XKZ', :key, :before, :after)"
            )
            await conn.execute(
                text(journal),
                {
                    "run": run_id,
                    "target": WP,
                    "key": orjson.dumps({"XKID": committed.XKID}).decode(),
                    "before": orjson.dumps(dict(committed._mapping)).decode(),
                    "after": orjson.dumps({"YXQZ": "20990101"}).decode(),
                },
            )
            await conn.execute(
                text(journal),
                {
                    "run": run_id,
                    "target": WP,
                    "key": orjson.dumps({"XKID": siblings.XKID}).decode(),
                    "before": None,
                    "after": orjson.dumps({"XKID": siblings.XKID, "GZDD": "999999"}).decode(),
                },
            )
        clock.advance(1)
        assert await runner.recover() == 1
        [restored] = await rows(wp, f'SELECT "YXQZ" FROM "WP_XKZ" WHERE "XKID" = {committed.XKID}')
        assert restored.YXQZ == committed.YXQZ
        [kept] = await rows(wp, f'SELECT "GZDD" FROM "WP_XKZ" WHERE "XKID" = {siblings.XKID}')
        assert kept.GZDD == siblings.GZDD, "the sibling's row is not the dead run's to delete"
    finally:
        await engine.dispose()
        await close()
