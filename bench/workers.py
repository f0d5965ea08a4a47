"""Scale-out benchmark: `hub run --workers N` on PostgreSQL and Redis, for N = 1, 2, 4 in one run.

Usage::

    .venv/bin/python bench/workers.py [--persons 2000] [--workers 1,2,4] [--seconds 8]
        [--concurrency 16] [--mixed 5000] [--connections 60] [--keep-logs DIR]

Needs a PostgreSQL server (``HUB_TEST_POSTGRES``, default the suite's) and Redis
(``HUB_BENCH_REDIS``, default ``redis://127.0.0.1:6379/14``, flushed before each server).

1. Creates fresh PostgreSQL databases (one per agency, the hub store, the audit trail) and
   seeds ``--persons`` persons into them with ``hub seed`` (as of 2026-06-15).
2. For each worker count: starts ``hub run --workers N`` (JSON logs to a file, auditing on),
   waits until every worker has started, then
   - **throughput**: ``--concurrency`` clients read one person each with
     ``bench/every_agency.graphql`` as WORK_PERMIT_AUTHORITY reads it, for ``--seconds``;
     prints requests per second, p50/p99, the hub's requests per CPU-second of its own
     processes (the supervisor and its workers, from ``/proc``) and the load generator's share
     of the machine's CPU (it runs on the same cores);
   - **mixed**: ``--mixed`` requests at once (at most 64 in flight): nine in ten person reads,
     one in ten ``applyForWorkPermit`` with an idempotency key, a fifth of those keys sent
     twice at the same moment (so two workers may race on one key);
   - stops the server with SIGTERM and checks: every answer 200 without errors (no lost answer,
     no ``AUDIT_UNAVAILABLE``), the two answers of one key the same permit, no permit number
     twice in the work-permit system, every acknowledged permit there exactly once and no
     applicant beyond the acknowledged ones, and ``hub audit verify`` intact.
3. Prints one table; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_load import PURPOSE, ROLE, free_port, load_queries
from read_graph import AS_OF, SEED

from access.tokens import TOKEN_KEY, TokenAuthority
from adapters.registry import DEFAULT_AGENCIES
from domain.records import CallerRole
from keys.files import load_or_create_key
from opaque.ids import GlobalIds
from opaque.sealing import sealer

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
ADMIN_DSN = os.environ.get("HUB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
URL_BASE = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
REDIS_URL = os.environ.get("HUB_BENCH_REDIS", "redis://127.0.0.1:6379/14")
APPLY = """mutation($i: ApplyForWorkPermitInput!) { applyForWorkPermit(input: $i) {
  workPermit { number } userErrors { code message field } } }"""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
IN_FLIGHT = 64


class BenchError(Exception):
    pass


@dataclass
class Databases:
    names: dict[str, str]  # setting variable -> database name

    def environment(self, data_dir: Path) -> dict[str, str]:
        env = {**os.environ, "HUB_DATA_DIR": str(data_dir), "HUB_TODAY": AS_OF.isoformat()}
        env.update({variable: f"{URL_BASE}/{name}" for variable, name in self.names.items()})
        env.update(
            HUB_RATE_LIMIT="1000000/minute",
            HUB_NOTIFY_INTERVAL="0",
            HUB_REDIS_URL=REDIS_URL,
            HUB_SOURCE_TIMEOUT="30",
            # A twin waits for the first run as long as the clients wait for their answer.
            HUB_IDEMPOTENCY_WAIT="120",
        )
        for name in ("PROMETHEUS_MULTIPROC_DIR", "HUB_FAULTS", "HUB_FAULTS_FILE", "HUB_CRASH_DRILL"):
            env.pop(name, None)
        return env

    def dsn(self, variable: str) -> str:
        return f"{ADMIN_DSN.rsplit('/', 1)[0]}/{self.names[variable]}"


async def create_databases() -> Databases:
    tag = uuid.uuid4().hex[:8]
    names = {spec.url_variable: f"hubbench_{tag}_{spec.id.lower()}" for spec in DEFAULT_AGENCIES}
    names["HUB_STORE_URL"] = f"hubbench_{tag}_store"
    names["HUB_AUDIT_URL"] = f"hubbench_{tag}_audit"
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        for name in names.values():
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return Databases(names)


async def drop_databases(databases: Databases) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        for name in databases.names.values():
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def flush_redis() -> None:
    """Each server starts without the former one's limits and persisted queries."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def cpu_seconds(pid: int) -> float:
    """The process's user and system time so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_of(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if f"PPid:\t{pid}\n" in status.read_text():
                found.append(int(status.parent.name))
        except OSError:
            continue
    return found


class Server:
    def __init__(self, workers: int, env: dict[str, str], log: Path, port: int) -> None:
        self.workers = workers
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*HUB, "run", "--port", str(port), "--workers", str(workers)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=out,
            )

    async def ready(self) -> None:
        deadline = time.monotonic() + 120
        while self.log.read_text().count("Application startup complete") < self.workers:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the hub with {self.workers} workers did not start; see {self.log}")
            await asyncio.sleep(0.1)

    def processes(self) -> list[int]:
        return [self.process.pid, *children_of(self.process.pid)]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)


@dataclass
class Throughput:
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    hub_cpu: float = 0.0
    load_cpu: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


@dataclass
class Mixed:
    statuses: Counter[int | str] = field(default_factory=Counter)  # "lost": no answer at all
    codes: Counter[str] = field(default_factory=Counter)
    applied: dict[str, str] = field(default_factory=dict)  # passport -> permit number
    refused: dict[str, str] = field(default_factory=dict)  # passport -> user error code
    twins_differ: int = 0
    checks: list[tuple[str, bool, str]] = field(default_factory=list)


def headers(data_dir: Path, role: CallerRole, purpose: str) -> dict[str, str]:
    authority = TokenAuthority(load_or_create_key(data_dir, TOKEN_KEY))
    token = authority.issue(subject=f"bench-{role.value.lower()}", role=role, purposes=(purpose,))
    return {"Authorization": f"Bearer {token}", "X-Purpose": purpose}


async def throughput(
    server: Server, query: str, persons: list[str], auth: dict[str, str], seconds: float, concurrency: int
) -> Throughput:
    measured = Throughput()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:
        for i in range(concurrency * 4):  # warm every worker's connections and caches
            await http.post(
                "/graphql", json={"query": query, "variables": {"lookup": {"id": persons[i]}}}, headers=auth
            )
        pids = server.processes()
        hub_before = sum(cpu_seconds(pid) for pid in pids)
        load_before = time.process_time()
        counter = 0
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal counter
            while time.perf_counter() < deadline:
                i = counter
                counter += 1
                sent = time.perf_counter()
                answer = await http.post(
                    "/graphql",
                    json={"query": query, "variables": {"lookup": {"id": persons[i % len(persons)]}}},
                    headers=auth,
                )
                if answer.status_code != 200 or "errors" in answer.json():
                    raise BenchError(f"a read failed: {answer.status_code} {answer.text[:300]}")
                measured.latencies.append(time.perf_counter() - sent)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        measured.seconds = time.perf_counter() - started
        measured.requests = len(measured.latencies)
        measured.hub_cpu = sum(cpu_seconds(pid) for pid in pids) - hub_before
        measured.load_cpu = time.process_time() - load_before
    return measured


def application(n: int, employer: str, run: str) -> dict[str, Any]:
    return {
        "applicant": {
            "name": {"surname": "Scale", "givenNames": f"Tester {n}"},
            "sex": "FEMALE" if n % 2 else "MALE",
            "birthDate": f"19{60 + n % 40}-0{1 + n % 9}-1{n % 10}",
            "nationality": ["DEU", "FRA", "USA", "JPN", "BRA"][n % 5],
            "passportNumber": f"W{run}{n:05d}",
        },
        "employerCreditCode": employer,
        "category": "B",
        "position": "Engineer",
        "workDistrict": "110105",
        "validTo": "2027-06-01",
        "idempotencyKey": f"bench-{run}-{n}",
    }


async def mixed(
    server: Server, query: str, persons: list[str], data_dir: Path, employer: str, total: int, run: str
) -> Mixed:
    figures = Mixed()
    reader = headers(data_dir, ROLE, PURPOSE)
    writer = headers(data_dir, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    writes = total // 10
    twins = writes // 5
    distinct = writes - twins
    # (kind, argument): reads, one application per distinct key, and a second send of the first keys
    plan = [("read", i) for i in range(total - writes)]
    plan += [("apply", n) for n in range(distinct)] + [("apply", n) for n in range(twins)]
    plan.sort(key=lambda item: (item[1] * 7919 + (item[0] == "apply")) % total)  # spread, deterministic
    answers: dict[int, list[str | None]] = {}
    gate = asyncio.Semaphore(IN_FLIGHT)
    limits = httpx.Limits(max_connections=IN_FLIGHT)
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as http:

        async def send(kind: str, n: int) -> None:
            async with gate:
                try:
                    if kind == "read":
                        body = {"query": query, "variables": {"lookup": {"id": persons[n % len(persons)]}}}
                        answer = await http.post("/graphql", json=body, headers=reader)
                    else:
                        body = {"query": APPLY, "variables": {"i": application(n, employer, run)}}
                        answer = await http.post("/graphql", json=body, headers=writer)
                except httpx.TransportError:  # the connection broke: counted, the burst goes on
                    figures.statuses["lost"] += 1
                    return
            figures.statuses[answer.status_code] += 1
            if answer.status_code != 200:
                return
            data = answer.json()
            for error in data.get("errors", []):
                figures.codes[error.get("extensions", {}).get("code", "?")] += 1
            if kind == "apply" and "errors" not in data:
                payload = data["data"]["applyForWorkPermit"]
                passport = application(n, employer, run)["applicant"]["passportNumber"]
                if payload["userErrors"]:
                    figures.refused[passport] = payload["userErrors"][0]["code"]
                    answers.setdefault(n, []).append(None)
                else:
                    figures.applied[passport] = payload["workPermit"]["number"]
                    answers.setdefault(n, []).append(payload["workPermit"]["number"])

        await asyncio.gather(*(send(kind, n) for kind, n in plan))
    figures.twins_differ = sum(1 for numbers in answers.values() if len(set(numbers)) > 1)
    return figures


async def check(figures: Mixed, databases: Databases, run: str, env: dict[str, str]) -> None:
    conn = await asyncpg.connect(databases.dsn("HUB_WORK_PERMIT_URL"))
    try:
        present = {
            row[0]: row[1]
            for row in await conn.fetch(
                'SELECT "XKZH", count(*) FROM "WP_XKZ" WHERE "XKZH" = ANY($1::text[]) GROUP BY "XKZH"',
                list(figures.applied.values()),
            )
        }
        applicants = await conn.fetchval('SELECT count(*) FROM "WP_SQR" WHERE "HZHM" LIKE $1', f"W{run}%")
    finally:
        await conn.close()
    lost = sum(n for status, n in figures.statuses.items() if status != 200) + sum(figures.codes.values())
    figures.checks += [
        (
            "no lost answer (every answer 200, without errors)",
            lost == 0,
            f"{dict(figures.statuses)} {dict(figures.codes)}",
        ),
        (
            "no AUDIT_UNAVAILABLE",
            figures.codes["AUDIT_UNAVAILABLE"] == 0,
            str(figures.codes["AUDIT_UNAVAILABLE"]),
        ),
        (
            "one key sent twice at once answers one permit",
            figures.twins_differ == 0,
            str(figures.twins_differ),
        ),
        (
            "no permit number given twice",
            len(set(figures.applied.values())) == len(figures.applied),
            f"{len(set(figures.applied.values()))} numbers for {len(figures.applied)} applicants",
        ),
        (
            "every acknowledged permit in WP_XKZ exactly once (none reused an existing number)",
            all(present.get(number) == 1 for number in figures.applied.values()),
            f"{len(present)} of {len(figures.applied)}",
        ),
        (
            "no applicant beyond the acknowledged ones",
            applicants == len(figures.applied),
            f"{applicants} applicants, {len(figures.applied)} acknowledged, {len(figures.refused)} refused"
            f" {dict(Counter(figures.refused.values()))}",
        ),
    ]
    command = [*HUB, "audit", "verify"]
    verified = await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, env=env, capture_output=True, text=True
    )
    figures.checks.append(("hub audit verify", verified.returncode == 0, verified.stdout.strip()[:120]))


def sample_facts(data_dir: Path, databases: Databases) -> tuple[list[str], str]:
    async def read() -> tuple[list[int], str]:
        store = await asyncpg.connect(databases.dsn("HUB_STORE_URL"))
        wp = await asyncpg.connect(databases.dsn("HUB_WORK_PERMIT_URL"))
        try:
            ids = [row[0] for row in await store.fetch("SELECT id FROM person ORDER BY id")]
            employer = await wp.fetchval(
                'SELECT "TYSHXYDM" FROM "WP_XKZ" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1'
            )
        finally:
            await store.close()
            await wp.close()
        return ids, str(employer)

    ids, employer = asyncio.run(read())
    global_ids = GlobalIds(sealer(data_dir))
    return [global_ids.encode("Person", i) for i in ids], employer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--workers", type=lambda s: [int(w) for w in s.split(",")], default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--mixed", type=int, default=5000)
    parser.add_argument(
        "--connections",
        type=int,
        default=84,
        help="PostgreSQL connections all workers may open together (HUB_DB_POOL is set from it)",
    )
    parser.add_argument(
        "--keep-logs", type=Path, default=None, help="copy each server's log into this directory"
    )
    args = parser.parse_args()
    query = load_queries().person
    rows: list[tuple[int, Throughput, Mixed]] = []
    databases = asyncio.run(create_databases())
    try:
        with tempfile.TemporaryDirectory(prefix="hub-workers-") as tmp:
            data_dir = Path(tmp) / "data"
            env = databases.environment(data_dir)
            started = time.perf_counter()
            seed = [
                *HUB,
                "seed",
                "--persons",
                str(args.persons),
                "--seed",
                str(SEED),
                "--as-of",
                AS_OF.isoformat(),
            ]
            subprocess.run(
                seed, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            print(f"seeded {args.persons} persons into PostgreSQL in {time.perf_counter() - started:.1f} s")
            persons, employer = sample_facts(data_dir, databases)
            auth = headers(data_dir, ROLE, PURPOSE)
            for workers in args.workers:
                flush_redis()
                # Every worker pools each of the 7 databases: all of them together stay within
                # --connections, so connecting waits, never fails.
                pool = max(1, args.connections // (workers * len(databases.names)))
                server = Server(
                    workers, {**env, "HUB_DB_POOL": str(pool)}, Path(tmp) / f"hub-{workers}.log", free_port()
                )
                try:
                    asyncio.run(server.ready())
                    measured = asyncio.run(
                        throughput(server, query, persons, auth, args.seconds, args.concurrency)
                    )
                    run = f"{workers}{uuid.uuid4().hex[:3]}".upper()
                    figures = asyncio.run(mixed(server, query, persons, data_dir, employer, args.mixed, run))
                finally:
                    code = server.stop()
                    if args.keep_logs is not None:
                        args.keep_logs.mkdir(parents=True, exist_ok=True)
                        shutil.copy(server.log, args.keep_logs / server.log.name)
                figures.checks.append(("SIGTERM stops every worker and exits 0", code == 0, f"exit {code}"))
                asyncio.run(check(figures, databases, run, env))
                rows.append((workers, measured, figures))
                print(f"  {workers} worker(s): {measured.rps:.1f} req/s")
    finally:
        asyncio.run(drop_databases(databases))
    cores = os.cpu_count() or 1
    print(
        f"\nmachine: {cores} CPUs; PostgreSQL and Redis on the same machine; load from httpx in this process"
    )
    print(
        f"throughput: {args.concurrency} clients reading one person each "
        f"(bench/every_agency.graphql), {args.seconds:g} s"
    )
    print(
        f"mixed: {args.mixed} requests, at most {IN_FLIGHT} in flight, a tenth of them applyForWorkPermit\n"
    )
    print("workers |  req/s   p50 ms   p99 ms | hub CPU s  req per hub CPU-s | load generator CPU share")
    base = rows[0][1].requests / rows[0][1].hub_cpu if rows and rows[0][1].hub_cpu else None
    for workers, measured, _ in rows:
        per_cpu = measured.requests / measured.hub_cpu if measured.hub_cpu else float("nan")
        against = f" ({per_cpu / base:.2f}x of 1)" if base else ""
        share = measured.load_cpu / (measured.seconds * cores)
        print(
            f"{workers:7d} | {measured.rps:6.1f} {measured.percentile(50):8.1f} "
            f"{measured.percentile(99):8.1f} | {measured.hub_cpu:9.1f} {per_cpu:10.2f}{against} "
            f"| {share:6.1%} of {cores} cores"
        )
    failed = False
    for workers, _, figures in rows:
        print(f"\nchecks with {workers} worker(s):")
        for name, ok, detail in figures.checks:
            failed |= not ok
            print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
