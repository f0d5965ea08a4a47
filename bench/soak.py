"""Soak: a bounded load test of a real server while agencies fail, then an audit of the databases.

Usage::

    .venv/bin/python bench/soak.py [--seconds 120] [--persons 400] [--workers 8] [--no-faults]

Not part of `make test`. Loopback only (127.0.0.1); it stops by itself after `--seconds`.

1. Seeds a synthetic estate (as of 2026-06-15) into SQLite files in a temporary directory and
   starts `hub run` on a free loopback port, in its own process (uvicorn, JSON logs to a file).
2. `--workers` clients send a mix of client-valid requests, each with a signed token made as
   the tests make them: an exit-entry desk looking persons up by permit number, a page of
   persons with a record from every agency, a cardholder reading their own record, and writes:
   `applyForWorkPermit` (a new applicant each time) and `issueNotificationLetter` on a permit
   applied for earlier. Every write carries an idempotency key; a write whose outcome is
   unknown (the connection failed) is sent again with the same key until it answers.
3. Meanwhile faults are switched on and off through the server's fault file
   (`HUB_FAULTS_FILE`, faults/): an agency down, slow, hanging far past its budget, returning
   corrupt rows, or failing a share of its statements, one after the other, with quiet spells
   between; the last spell is quiet.
4. The server's resident memory (`/proc/<pid>/status`) is sampled every two seconds.
5. At the end: SIGTERM (the server must drain and exit 0), then every database is checked
   against the acknowledged writes: each acknowledged application is in the work-permit
   system exactly once (applicant and permit), in the hub store as a person with its passport
   and permit number, and its run is DONE once; an application answered with a user error left
   no trace; each acknowledged letter is on its permit; no run is left RUNNING; the audit trail
   verifies (`hub audit verify`).

It prints request counts by kind and status, GraphQL error codes, latencies, the memory
figures and each check, and exits 1 when a check fails: any 5xx, a lost or duplicated write,
or memory that grew (the median of the last third of the samples more than 20 % and 40 MB
above the median of the first third after warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from access.tokens import TOKEN_KEY, TokenAuthority  # noqa: E402
from adapters import Sources  # noqa: E402
from domain.records import CallerRole  # noqa: E402
from estate import generate_estate  # noqa: E402
from identity.linking import link_estate  # noqa: E402
from identity.store import HubStore  # noqa: E402
from keys.files import load_or_create_key  # noqa: E402
from settings import Settings  # noqa: E402

AS_OF = date(2026, 6, 15)
HUB = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
CARDHOLDER_QUERY = (ROOT / "docs" / "examples" / "cardholder.graphql").read_text()
DESK_QUERY = (ROOT / "docs" / "examples" / "agency-desk.graphql").read_text()
PAGE_QUERY = """query($after: String) { persons(first: 20, after: $after) {
  edges { node { id name { full } workPermit { number status employer { name } }
    socialSecurityCard { number status } insuranceParticipations { type status } } }
  pageInfo { endCursor hasNextPage } } }"""
APPLY = """mutation($i: ApplyForWorkPermitInput!) { applyForWorkPermit(input: $i) {
  workPermit { id number } userErrors { code message field } } }"""
LETTER = """mutation($i: IssueNotificationLetterInput!) { issueNotificationLetter(input: $i) {
  workPermit { number notificationLetterNumber } userErrors { code message field } } }"""
# Fault phases (agency, fault as the fault file takes it); None is a quiet spell.
PHASES: list[tuple[str, dict[str, Any]] | None] = [
    None,
    ("EXIT_ENTRY", {"kind": "down"}),
    None,
    ("CARD_SERVICE", {"kind": "slow", "seconds": 0.3}),
    None,
    ("SOCIAL_INSURANCE", {"kind": "hang", "seconds": 60}),
    None,
    ("WORK_PERMIT_SYSTEM", {"kind": "down", "rate": 0.3}),
    None,
    ("BEIJING_PASS", {"kind": "corrupt", "column": "ZT", "value": "?"}),
    None,
    ("WORK_PERMIT_SYSTEM", {"kind": "slow", "seconds": 0.2}),
    None,
]


@dataclass
class Figures:
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    # passport -> (permit id, permit number) of applications answered without a user error
    applied: dict[str, tuple[str, str]] = field(default_factory=dict)
    # passports of applications answered with a user error (nothing may be written)
    refused: dict[str, str] = field(default_factory=dict)
    # permit number -> letter number, for letters answered without a user error
    letters: dict[str, str] = field(default_factory=dict)
    letters_refused: dict[str, str] = field(default_factory=dict)
    unresolved: list[str] = field(default_factory=list)
    rss_kib: list[tuple[float, int]] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)
    # /readyz during the soak: (HTTP status, overall status) -> count
    readiness: Counter[tuple[int, str]] = field(default_factory=Counter)


class Hub:
    def __init__(self, http: httpx.AsyncClient, figures: Figures) -> None:
        self.http = http
        self.figures = figures

    async def post(
        self, kind: str, query: str, variables: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any] | None:
        """One request; None when it got no HTTP answer (the outcome is unknown)."""
        started = time.perf_counter()
        try:
            answer = await self.http.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
        except httpx.TransportError as error:
            self.figures.transport_errors[f"{kind}:{type(error).__name__}"] += 1
            return None
        self.figures.latencies.setdefault(kind, []).append(time.perf_counter() - started)
        self.figures.requests[(kind, answer.status_code)] += 1
        if answer.status_code != 200:
            return None
        body: dict[str, Any] = answer.json()
        for graphql_error in body.get("errors") or ():
            self.figures.codes[str((graphql_error.get("extensions") or {}).get("code"))] += 1
        return body

    async def write(
        self, kind: str, query: str, name: str, arguments: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any] | None:
        """A write, sent again with the same idempotency key until its outcome is known."""
        for attempt in range(12):
            body = await self.post(kind, query, {"i": arguments}, headers)
            answer = (body or {}).get("data") or {}
            payload = answer.get(name)
            if payload is not None:
                busy = [e for e in payload["userErrors"] if "still running" in e["message"]]
                if not busy:
                    return dict(payload)
            await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        self.figures.unresolved.append(arguments["idempotencyKey"])
        return None


async def seed(data_dir: Path, persons: int) -> Settings:
    settings = Settings.for_directory(data_dir, fixed_today=AS_OF)
    sources = Sources.open(settings.source_urls)
    store = HubStore.open(settings.store_url)
    try:
        await generate_estate({s.agency: s.engine for s in sources.all()}, persons, 20240601, AS_OF)
        await store.create_tables()
        await link_estate(sources, store)
    finally:
        await sources.close()
        await store.close()
    return settings


def headers_for(
    settings: Settings, role: CallerRole, purpose: str | None = None, **bound: Any
) -> dict[str, str]:
    authority = TokenAuthority(load_or_create_key(settings.data_dir, TOKEN_KEY))
    token = authority.issue(
        subject=f"soak-{role.value.lower()}",
        role=role,
        purposes=(purpose,) if purpose else (),
        ttl=timedelta(hours=2),
        **bound,
    )
    headers = {"Authorization": f"Bearer {token}"}
    if purpose:
        headers["X-Purpose"] = purpose
    return headers


def estate_facts(data_dir: Path) -> tuple[list[str], list[int], str]:
    """Permit numbers to look up, person ids for cardholders, the busiest employer's code."""
    with sqlite3.connect(data_dir / "work_permit.sqlite") as conn:
        numbers = [r[0] for r in conn.execute('SELECT DISTINCT "XKZH" FROM "WP_XKZ" LIMIT 500')]
        employer = conn.execute(
            'SELECT "TYSHXYDM" FROM "WP_XKZ" GROUP BY "TYSHXYDM" ORDER BY count(*) DESC LIMIT 1'
        ).fetchone()[0]
    with sqlite3.connect(data_dir / "hub_store.sqlite") as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM person ORDER BY id LIMIT 300")]
    return numbers, ids, employer


def write_faults(path: Path, faults: dict[str, Any]) -> None:
    """The server rereads its fault file when it changes (faults/: HUB_FAULTS_FILE)."""
    path.write_text(json.dumps(faults))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


async def run_load(
    base: str, settings: Settings, seconds: float, workers: int, faults: Path | None, pid: int
) -> Figures:
    figures = Figures()
    numbers, person_ids, employer = estate_facts(settings.data_dir)
    desk = headers_for(settings, CallerRole.EXIT_ENTRY, "entry-control")
    authority = headers_for(settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    cardholders = [headers_for(settings, CallerRole.CARDHOLDER, person_id=p) for p in person_ids[:50]]
    deadline = time.monotonic() + seconds
    sequence = iter(range(1, 1_000_000))
    limits = httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        hub = Hub(http, figures)

        async def apply(rng: random.Random) -> None:
            n = next(sequence)
            passport = f"SOAK{n:06d}"
            payload = await hub.write(
                "apply",
                APPLY,
                "applyForWorkPermit",
                {
                    "applicant": {
                        "name": {"surname": "Soak", "givenNames": f"Tester {n}"},
                        "sex": rng.choice(["MALE", "FEMALE"]),
                        "birthDate": f"19{rng.randint(60, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                        "nationality": rng.choice(["DEU", "FRA", "USA", "JPN", "BRA"]),
                        "passportNumber": passport,
                    },
                    "employerCreditCode": employer,
                    "category": rng.choice(["A", "B"]),
                    "position": "Engineer",
                    "workDistrict": "110105",
                    "validTo": "2027-06-01",
                    "idempotencyKey": f"soak-apply-{n}",
                },
                authority,
            )
            if payload is None:
                return
            if payload["userErrors"]:
                figures.refused[passport] = payload["userErrors"][0]["code"]
            else:
                permit = payload["workPermit"]
                figures.applied[passport] = (permit["id"], permit["number"])

        async def letter(rng: random.Random) -> None:
            waiting = [v for v in figures.applied.values() if v[1] not in figures.letters]
            waiting = [v for v in waiting if v[1] not in figures.letters_refused]
            if not waiting:
                await apply(rng)
                return
            permit_id, number = rng.choice(waiting)
            payload = await hub.write(
                "letter",
                LETTER,
                "issueNotificationLetter",
                {"workPermitId": permit_id, "idempotencyKey": f"soak-letter-{number}"},
                authority,
            )
            if payload is None:
                return
            if payload["userErrors"]:
                figures.letters_refused[number] = payload["userErrors"][0]["code"]
            else:
                figures.letters[number] = payload["workPermit"]["notificationLetterNumber"]

        async def worker(index: int) -> None:
            rng = random.Random(index)
            cursor: str | None = None
            while time.monotonic() < deadline:
                roll = rng.random()
                if roll < 0.40:
                    await hub.post(
                        "desk", DESK_QUERY, {"lookup": {"workPermitNumber": rng.choice(numbers)}}, desk
                    )
                elif roll < 0.60:
                    body = await hub.post("page", PAGE_QUERY, {"after": cursor}, authority)
                    info = ((body or {}).get("data") or {}).get("persons") or {}
                    page = info.get("pageInfo") or {}
                    cursor = page.get("endCursor") if page.get("hasNextPage") else None
                elif roll < 0.80:
                    await hub.post("me", CARDHOLDER_QUERY, {}, rng.choice(cardholders))
                elif roll < 0.92:
                    await apply(rng)
                else:
                    await letter(rng)

        async def switch_faults() -> None:
            if faults is None:
                return
            spell = max(4.0, (seconds - 10) / len(PHASES))
            for phase in PHASES:
                if time.monotonic() + 2 >= deadline:
                    break
                write_faults(faults, {phase[0]: phase[1]} if phase else {})
                figures.phases.append(f"{phase[0]}={phase[1]['kind']}" if phase else "quiet")
                await asyncio.sleep(min(spell, max(0.0, deadline - time.monotonic() - 2)))
            write_faults(faults, {})

        async def sample_memory_and_readiness() -> None:
            started = time.monotonic()
            while time.monotonic() < deadline:
                kib = rss_kib(pid)
                if kib is not None:
                    figures.rss_kib.append((time.monotonic() - started, kib))
                try:
                    ready = await http.get("/readyz")
                    figures.readiness[(ready.status_code, ready.json().get("status", "?"))] += 1
                except httpx.TransportError as error:
                    figures.transport_errors[f"readyz:{type(error).__name__}"] += 1
                await asyncio.sleep(2)

        await asyncio.gather(
            *(worker(i) for i in range(workers)), switch_faults(), sample_memory_and_readiness()
        )
        if faults is not None:
            write_faults(faults, {})
    return figures


def check_databases(data_dir: Path, figures: Figures) -> list[tuple[str, bool, str]]:
    checks: list[tuple[str, bool, str]] = []

    def one(database: str, sql: str, *parameters: object) -> int:
        with sqlite3.connect(data_dir / database) as conn:
            return int(conn.execute(sql, parameters).fetchone()[0])

    def wp(sql: str, *parameters: object) -> int:
        return one("work_permit.sqlite", sql, *parameters)

    def store(sql: str, *parameters: object) -> int:
        return one("hub_store.sqlite", sql, *parameters)

    missing = [
        p
        for p, (_id, number) in figures.applied.items()
        if wp('SELECT count(*) FROM "WP_SQR" WHERE "HZHM" = ?', p) != 1
        or wp('SELECT count(*) FROM "WP_XKZ" WHERE "XKZH" = ?', number) != 1
    ]
    checks.append(
        ("every acknowledged application is in WP_SQR and WP_XKZ once", not missing, f"{missing[:5]}")
    )
    soak_rows = wp('SELECT count(*) FROM "WP_SQR" WHERE "HZHM" LIKE \'SOAK%\'')
    checks.append(
        (
            "no application beyond the acknowledged ones",
            soak_rows == len(figures.applied),
            f"{soak_rows} applicants, {len(figures.applied)} acknowledged",
        )
    )
    traces = [p for p in figures.refused if wp('SELECT count(*) FROM "WP_SQR" WHERE "HZHM" = ?', p)]
    checks.append(("an application answered with a user error left no trace", not traces, f"{traces[:5]}"))
    in_store = store("SELECT count(*) FROM person_passport WHERE number LIKE 'SOAK%'")
    checks.append(
        (
            "the hub store holds each acknowledged applicant once",
            in_store == len(figures.applied),
            f"{in_store} passports in the hub store",
        )
    )
    identifiers = sum(
        store("SELECT count(*) FROM person_identifier WHERE value = ?", number)
        for _id, number in figures.applied.values()
    )
    checks.append(
        (
            "each acknowledged permit number finds its person",
            identifiers == len(figures.applied),
            f"{identifiers} identifiers",
        )
    )
    done = store(
        "SELECT count(*) FROM workflow_run WHERE kind = 'applyForWorkPermit' AND status = 'DONE' "
        "AND idempotency_key LIKE 'soak-apply-%' AND result LIKE '%\"errors\":[]%'"
    )
    checks.append(
        ("one DONE run per acknowledged application", done == len(figures.applied), f"{done} DONE runs")
    )
    running = store("SELECT count(*) FROM workflow_run WHERE status IN ('RUNNING', 'UNDOING')")
    checks.append(("no run left unfinished", running == 0, f"{running}"))
    wrong_letters = [
        n
        for n, letter in figures.letters.items()
        if wp('SELECT count(*) FROM "WP_XKZ" WHERE "XKZH" = ? AND "TZSBH" = ?', n, letter) != 1
    ]
    checks.append(("every acknowledged letter is on its permit", not wrong_letters, f"{wrong_letters[:5]}"))
    stray_letters = [
        n
        for n in figures.letters_refused
        if n not in figures.letters
        and wp('SELECT count(*) FROM "WP_XKZ" WHERE "XKZH" = ? AND "TZSBH" != \'\'', n)
    ]
    checks.append(("a refused letter left no trace", not stray_letters, f"{stray_letters[:5]}"))
    letters_total = sum(
        wp('SELECT count(*) FROM "WP_XKZ" WHERE "XKZH" = ? AND "TZSBH" != \'\'', number)
        for _id, number in figures.applied.values()
    )
    checks.append(
        (
            "no letter beyond the acknowledged ones",
            letters_total == len(figures.letters),
            f"{letters_total} letters, {len(figures.letters)} acknowledged",
        )
    )
    checks.append(
        ("no write left with an unknown outcome", not figures.unresolved, f"{figures.unresolved[:5]}")
    )
    return checks


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def memory_verdict(samples: list[tuple[float, int]], warmup: float) -> tuple[bool, str]:
    steady = [kib for at, kib in samples if at >= warmup] or [kib for _at, kib in samples]
    if len(steady) < 6:
        return True, "too few samples to judge"
    third = len(steady) // 3
    early, late = statistics.median(steady[:third]), statistics.median(steady[-third:])
    grew = late > early * 1.2 and late - early > 40 * 1024
    return not grew, f"median early {early / 1024:.1f} MiB, late {late / 1024:.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--persons", type=int, default=400)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--no-faults", action="store_true", help="load only, no fault switching")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and server log")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 900:
        parser.error("--seconds: 1 to 900 (a bounded soak)")

    data_dir = Path(tempfile.mkdtemp(prefix="hub-soak-"))
    print(f"seeding {args.persons} persons into {data_dir}", file=sys.stderr)
    settings = asyncio.run(seed(data_dir, args.persons))
    faults: Path | None = None
    if args.no_faults:
        print("faults: off (--no-faults)")
    elif (ROOT / "faults" / "__init__.py").exists():
        faults = data_dir / "faults.json"
        faults.write_text("{}")
    else:
        print("faults: the faults/ package is not there; load only, no fault switching")
    port = free_port()
    env = {
        **os.environ,
        "HUB_DATA_DIR": str(data_dir),
        "HUB_TODAY": AS_OF.isoformat(),
        "HUB_NOTIFY_INTERVAL": "0",
        "HUB_RATE_LIMIT": "1000000/minute",
        "HUB_SHUTDOWN_GRACE": "30",
    }
    for name in (
        "HUB_FAULTS",
        "HUB_FAULTS_FILE",
        "HUB_CRASH_DRILL",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ):
        env.pop(name, None)
    if faults is not None:
        env["HUB_FAULTS_FILE"] = str(faults)
    log_path = data_dir / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [*HUB, "run", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            print(log_path.read_text()[-3000:], file=sys.stderr)
            raise SystemExit("the server did not start")
        print(f"soaking {base} for {args.seconds:.0f} s with {args.workers} workers", file=sys.stderr)
        started = time.monotonic()
        figures = asyncio.run(run_load(base, settings, args.seconds, args.workers, faults, server.pid))
        elapsed = time.monotonic() - started
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        server.send_signal(signal.SIGTERM)
        exit_code = server.wait(timeout=90)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    verify = subprocess.run(
        [*HUB, "audit", "verify"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    checks = check_databases(data_dir, figures)
    checks.append(("the server exited 0 after SIGTERM", exit_code == 0, f"exit {exit_code}"))
    checks.append(
        ("the audit trail verifies", verify.returncode == 0, verify.stdout.strip() or verify.stderr[-300:])
    )
    server_errors = sum(n for (_kind, status), n in figures.requests.items() if status >= 500)
    checks.append(
        ("zero 5xx for client-valid requests", server_errors == 0, f"{server_errors} answers >= 500")
    )
    other = sum(n for (_kind, status), n in figures.requests.items() if status not in (200,) and status < 500)
    checks.append(("no other refusal of a valid request", other == 0, f"{other} answers 4xx"))
    memory_ok, memory_note = memory_verdict(figures.rss_kib, warmup=min(20.0, args.seconds / 4))
    checks.append(("memory does not grow", memory_ok, memory_note))

    total = sum(figures.requests.values())
    phases = " -> ".join(figures.phases) or "off"
    print(f"\nsoak: {elapsed:.0f} s, {args.workers} workers, {args.persons} persons, faults: {phases}")
    transport = dict(figures.transport_errors) or 0
    print(f"requests: {total} answered ({total / elapsed:.0f}/s), transport errors: {transport}")
    for kind in sorted({k for k, _s in figures.requests}):
        statuses = {s: n for (k, s), n in sorted(figures.requests.items()) if k == kind}
        lat = figures.latencies.get(kind, [])
        print(
            f"  {kind:6} {statuses}  p50 {percentile(lat, 0.5) * 1000:.0f} ms  "
            f"p95 {percentile(lat, 0.95) * 1000:.0f} ms  p99 {percentile(lat, 0.99) * 1000:.0f} ms  "
            f"max {max(lat, default=0) * 1000:.0f} ms"
        )
    readiness = ", ".join(f"{code} {state}: {n}" for (code, state), n in sorted(figures.readiness.items()))
    print(f"/readyz during the soak: {readiness}")
    print(f"GraphQL error codes: {dict(figures.codes.most_common()) or 'none'}")
    print(
        f"writes: {len(figures.applied)} applications acknowledged, {len(figures.refused)} refused "
        f"({dict(Counter(figures.refused.values()))}), {len(figures.letters)} letters acknowledged, "
        f"{len(figures.letters_refused)} refused ({dict(Counter(figures.letters_refused.values()))})"
    )
    if figures.rss_kib:
        values = [kib for _at, kib in figures.rss_kib]
        print(
            f"server RSS: first {values[0] / 1024:.1f} MiB, last {values[-1] / 1024:.1f} MiB, "
            f"max {max(values) / 1024:.1f} MiB over {len(values)} samples ({memory_note})"
        )
    breakers = [
        line.split('agency="')[1].split('"')[0]
        + "="
        + line.split('hub_source_breaker_state="')[1].split('"')[0]
        for line in metrics.splitlines()
        if line.startswith("hub_source_breaker_state{") and line.endswith(" 1.0")
    ]
    print("breakers at the end: " + ", ".join(breakers))
    failing = 0
    for name, ok, note in checks:
        failing += not ok
        print(f"  [{'ok' if ok else 'FAIL'}] {name}: {note}")
    if args.keep or failing:
        print(f"data directory and server log kept in {data_dir}")
    else:
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
