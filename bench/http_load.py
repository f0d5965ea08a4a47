"""HTTP load benchmark: the hub (`hub run`) beside a graphql-yoga peer and the floor, on loopback.

Usage::

    .venv/bin/python bench/http_load.py [--persons 10000] [--seconds 4] [--rounds 2]
        [--concurrency 1,16] [--data-dir DIR]

What it does

1. Seeds an estate of ``--persons`` persons with ``hub seed`` (as of 2026-06-15, seed 7) into
   ``--data-dir`` (default ``var/bench-http-<persons>``) unless that directory already holds
   it, and exports what the peer needs from the hub (``bench/peer_config.py``).
2. Starts, each on a free loopback port:

   - the HUB: ``hub run`` as a real server (one uvicorn process, auditing on, the default
     ``policy.toml``, the rate limit lifted: the benchmark is one client asking hard);
   - the PEER: ``node bench/peer/server.js`` (graphql-yoga, DataLoaders, better-sqlite3), with
     the same token, grants and audit;
   - the BARE peer: the same server with ``--bare`` (no token, no grants, no audit);
   - the FLOOR: bench/read_graph.py's hand-written SQL + orjson floor on the hub's own
     aiosqlite engines, behind a minimal Starlette app served by uvicorn (no token, no audit);
   - the HUB WITHOUT AUDIT: the same app as ``hub run`` with the audit off, so that the audit's
     cost is measured in the same run (audit on vs off, at each concurrency).

3. The query is ``bench/every_agency.graphql`` as WORK_PERMIT_AUTHORITY (purpose
   ``permit-administration``) may read it: the selection with every field the grant denies
   left out, so that every answer is complete. Scenarios: ``person`` (one person by id,
   cycling over persons with records in all five agencies) and ``page of 50`` (the same
   selection under ``persons(first: 50, after: ...)``, cycling over every page).
4. First it sends ``--verify`` persons (and a tenth as many pages) to all five and requires
   the same ``data``, byte for byte (the ids and cursors included: the peer seals them with
   the hub's key), and the same audited field paths in the hub's and the peer's trails; and
   the whole document, the fields the grant denies included, must give the same data and the
   same FORBIDDEN paths from the hub and the peer. Before each measured block ``--check``
   more requests are compared the same way. After the run the peer's trail is verified with
   the hub's own chain verifier (audit/chain.py).
5. Drives each server at each concurrency with httpx, interleaved (hub, peer, bare peer,
   floor, hub without audit, hub, ...), ``--rounds`` times ``--seconds`` each, and prints
   req/s, p50 and p99 latency, the ratios hub / peer, hub / bare peer and hub / floor (req/s: above 1 the hub
   is faster), and the audit's cost (1 - hub / hub without audit).

The load generator runs on the same cores as the servers (2 on this machine kind): a server
that answers in well under a millisecond is partly measured by the client's own speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLObjectType,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    parse,
    print_ast,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_config import export as export_peer_config
from read_graph import (
    AS_OF,
    ECARDS,
    INSURED,
    PAGE_SIZE,
    PERSONS_AFTER,
    PERSONS_BY_ID,
    SEED,
    Floor,
    estate_marker,
    page_document,
)

from access.policy import DEFAULT_POLICY, Grant, Policy, load_policy
from access.tokens import TOKEN_KEY, TokenAuthority
from app import create_app
from audit.chain import ChainedEntry, Checkpoint, verify_chain
from audit.log import entry_of
from domain.records import CallerRole
from keys.files import load_or_create_key
from opaque.cursors import Cursors
from opaque.ids import GlobalIds
from opaque.sealing import sealer
from resolvers.hub import HubState
from schema import build_schema
from settings import Settings
from tracing import HUB_STORE

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = ROOT / "bench" / "peer"
DESK_QUERY = ROOT / "bench" / "every_agency.graphql"
ROLE = CallerRole.WORK_PERMIT_AUTHORITY
PURPOSE = "permit-administration"
MARKER = "bench-estate.json"
PERSONS_CYCLED = 2_000
TARGETS = ("hub", "peer", "bare peer", "floor", "hub no audit")
# The servers that verify the benchmark's token (the others take none).
WITH_TOKEN = ("hub", "peer", "hub no audit")
Json = dict[str, Any]
Tree = dict[str, "Tree"]


class BenchError(Exception):
    """A server failed to start, failed a request, or answered other data than the hub."""


# ---------------------------------------------------------------- the estate


def prepare_estate(data_dir: Path, persons: int) -> None:
    """`hub seed` into `data_dir` unless it already holds this estate; refuses foreign data."""
    marker = data_dir / MARKER
    if marker.exists():
        found = json.loads(marker.read_text())
        if found != estate_marker(persons):
            raise BenchError(f"{data_dir} holds another estate ({found}); pass another --data-dir")
        print(f"estate: reusing {persons} persons seeded earlier in {data_dir}")
        return
    if any(data_dir.glob("*.sqlite")):
        raise BenchError(f"{data_dir} holds databases this benchmark did not seed; pass another --data-dir")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = time.perf_counter()
    command = [str(ROOT / ".venv" / "bin" / "hub"), "seed", "--persons", str(persons), "--seed", str(SEED)]
    command += ["--as-of", AS_OF.isoformat()]
    subprocess.run(command, env=hub_env(data_dir), check=True, stdout=subprocess.DEVNULL)
    marker.write_text(json.dumps(estate_marker(persons)))
    print(f"estate: seeded {persons} persons in {time.perf_counter() - started:.1f} s into {data_dir}")


def hub_env(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HUB_DATA_DIR": str(data_dir),
        "HUB_TODAY": AS_OF.isoformat(),
        "HUB_RATE_LIMIT": "1000000/minute",
        "HUB_NOTIFY_INTERVAL": "0",
        "HUB_LOG_LEVEL": "WARNING",
    }


# ---------------------------------------------------------------- the query, as the grant reads it


def prune(
    selection: SelectionSetNode, parent: GraphQLObjectType, policy: Policy, grant: Grant
) -> SelectionSetNode:
    """`selection` without the fields the grant does not read (graphql-core's nodes are frozen:
    the kept ones are copied)."""
    kept: list[Any] = []
    for node in selection.selections:
        if not isinstance(node, FieldNode):
            kept.append(node)
            continue
        name = node.name.value
        target = get_named_type(parent.fields[name].type)
        if (parent.name, name) in policy.guarded and (parent.name, name) not in grant.readable:
            continue
        if isinstance(target, GraphQLObjectType):
            if not policy.reaches(grant, target.name):
                continue
            if node.selection_set is not None:
                below = prune(node.selection_set, target, policy, grant)
                node = FieldNode(**{**{k: getattr(node, k) for k in node.keys}, "selection_set": below})
        kept.append(node)
    return SelectionSetNode(selections=tuple(kept))


@dataclass(frozen=True)
class Queries:
    person: str
    page: str
    tree: Tree  # the person's selection, field by field (for the floor's JSON)


def tree_of(selection: SelectionSetNode | None) -> Tree:
    if selection is None:
        return {}
    return {n.name.value: tree_of(n.selection_set) for n in selection.selections if isinstance(n, FieldNode)}


def load_queries() -> Queries:
    schema = build_schema()._schema
    policy = load_policy(schema, DEFAULT_POLICY)
    grant = policy.grant(ROLE, PURPOSE)
    document: DocumentNode = parse(DESK_QUERY.read_text(), no_location=True)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    query_type = schema.query_type
    assert query_type is not None
    pruned = prune(operation.selection_set, query_type, policy, grant)
    operation = OperationDefinitionNode(
        **{**{k: getattr(operation, k) for k in operation.keys}, "selection_set": pruned}
    )
    person = pruned.selections[0]
    assert isinstance(person, FieldNode)
    assert person.selection_set is not None
    page = page_document(print_ast(person.selection_set))
    return Queries(person=print_ast(operation), page=page, tree=tree_of(person.selection_set))


# ---------------------------------------------------------------- the floor, over HTTP


def shaped(value: Any, tree: Tree) -> Any:
    """`value` with the selection's fields only, in the selection's order (as GraphQL answers)."""
    if isinstance(value, list):
        return [shaped(item, tree) for item in value]
    if isinstance(value, dict) and tree:
        return {name: shaped(value[name], below) for name, below in tree.items()}
    return value


class GrantedFloor(Floor):
    """read_graph.py's floor, answering the selection the grant reads: the statements for
    what it leaves out (social security numbers, e-cards, exit-entry, BEIJING PASS) are not
    run, and the JSON holds the selected fields only."""

    def __init__(self, hub: HubState, tree: Tree) -> None:
        super().__init__(hub)
        self.tree = tree

    async def _rows(self, conn: Any, source: str, sql: Any, **params: Any) -> list[Any]:
        if sql is INSURED or sql is ECARDS:
            return []
        return await super()._rows(conn, source, sql, **params)

    async def _exit_entry(self, nodes: list[Json], owners: Any) -> None:
        return None

    async def _beijing_pass(self, nodes: list[Json], owners: Any) -> None:
        return None

    async def granted_person(self, global_id: str) -> bytes:
        rows = await self._person_rows(global_id)
        nodes = await self._nodes(rows)
        return orjson.dumps({"data": {"person": shaped(nodes[0], self.tree) if nodes else None}})

    async def _person_rows(self, global_id: str) -> list[Any]:
        person_id = int(self.ids.key_of(global_id, "Person", "id"))
        async with self.store.connect() as conn:
            return await self._rows(conn, HUB_STORE, PERSONS_BY_ID, ids=[person_id])

    async def granted_page(self, after: int | None, first: int) -> bytes:
        async with self.store.connect() as conn:
            rows = await self._rows(conn, HUB_STORE, PERSONS_AFTER, after=after or 0, limit=first + 1)
        kept = rows[:first]
        nodes = await self._nodes(kept)
        end = self.cursors.encode("persons", (kept[-1][0],)) if kept else None
        edges = [{"node": shaped(n, self.tree)} for n in nodes]
        page = {"edges": edges, "pageInfo": {"hasNextPage": len(rows) > first, "endCursor": end}}
        return orjson.dumps({"data": {"persons": page}})


def floor_app(data_dir: Path) -> Starlette:
    """A minimal Starlette app answering the two benchmark documents with the floor."""
    settings = replace(Settings.for_directory(data_dir, fixed_today=AS_OF), audit=False)
    hub_app = create_app(settings)
    tree = load_queries().tree
    floors: list[GrantedFloor] = []

    async def graphql(request: Request) -> Response:
        floor = floors[0]
        variables = orjson.loads(await request.body()).get("variables") or {}
        if "lookup" in variables:
            body = await floor.granted_person(variables["lookup"]["id"])
        else:
            position = floor.cursors.decode("persons", variables.get("after"))
            body = await floor.granted_page(position[0] if position else None, int(variables["first"]))
        return Response(body, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with hub_app.router.lifespan_context(hub_app):
            floors.append(GrantedFloor(hub_app.state.hub, tree))
            yield

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)


def serve_floor(data_dir: Path, port: int) -> None:
    uvicorn.run(floor_app(data_dir), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_unaudited_hub(port: int) -> None:
    """The hub as `hub run` serves it (HUB_* variables), with the audit off: what the audit
    costs, measured beside the hub in the same run."""
    app = create_app(replace(Settings.from_environment(), audit=False))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---------------------------------------------------------------- the servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"


def wait_listening(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited with {server.process.returncode}; see {server.log}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        time.sleep(0.1)
    raise BenchError(f"{server.name} did not listen within {timeout:g} s; see {server.log}")


@contextlib.contextmanager
def servers(data_dir: Path, config: Path, logs: Path, trail: Path) -> Iterator[dict[str, Server]]:
    node = shutil.which("node")
    if node is None:
        raise BenchError("node is not installed: the peer needs Node.js 20+")
    if not (PEER_DIR / "node_modules" / "better-sqlite3").exists():
        raise BenchError("the peer's packages are missing: `npm ci --prefix bench/peer` (make bench runs it)")
    peer = [node, str(PEER_DIR / "server.js"), "--data-dir", str(data_dir), "--config", str(config)]
    peer += ["--today", AS_OF.isoformat()]
    commands: dict[str, tuple[list[str], dict[str, str]]] = {}
    ports = {name: free_port() for name in TARGETS}
    hub = [str(ROOT / ".venv" / "bin" / "hub"), "run", "--host", "127.0.0.1", "--port", str(ports["hub"])]
    commands["hub"] = (hub, hub_env(data_dir))
    commands["peer"] = ([*peer, "--port", str(ports["peer"]), "--trail-dir", str(trail)], dict(os.environ))
    commands["bare peer"] = ([*peer, "--port", str(ports["bare peer"]), "--bare"], dict(os.environ))
    floor = [sys.executable, __file__, "--serve-floor", str(ports["floor"]), "--data-dir", str(data_dir)]
    commands["floor"] = (floor, hub_env(data_dir))
    unaudited = [sys.executable, __file__, "--serve-unaudited-hub", str(ports["hub no audit"])]
    commands["hub no audit"] = (unaudited, hub_env(data_dir))
    started: dict[str, Server] = {}
    try:
        for name, (command, env) in commands.items():
            log = logs / f"{name.replace(' ', '-')}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
            started[name] = Server(name, ports[name], process, log)
        for server in started.values():
            wait_listening(server)
        yield started
    finally:
        for server in started.values():
            if server.process.poll() is None:
                server.process.terminate()
        for server in started.values():
            try:
                server.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


# ---------------------------------------------------------------- requests and checks


@dataclass(frozen=True)
class Scenario:
    name: str
    query: str
    variables: list[Json]


def scenarios(data_dir: Path, queries: Queries) -> list[Scenario]:
    seal = sealer(data_dir)
    ids, cursors = GlobalIds(seal), Cursors(seal)
    with contextlib.closing(sqlite3.connect(data_dir / "hub_store.sqlite")) as conn:
        complete = [
            r[0]
            for r in conn.execute(
                "SELECT person_id FROM identity_link WHERE confidence = 'CONFIRMED'"
                " GROUP BY person_id HAVING COUNT(DISTINCT agency) = 5 ORDER BY person_id"
            )
        ]
        person_ids = [r[0] for r in conn.execute("SELECT id FROM person ORDER BY id")]
    if not complete:
        raise BenchError("no person has records in all five agencies; seed more persons")
    random.Random(SEED).shuffle(complete)
    persons = [{"lookup": {"id": ids.encode("Person", i)}} for i in complete[:PERSONS_CYCLED]]
    afters = [None] + [
        cursors.encode("persons", (person_ids[i - 1],)) for i in range(PAGE_SIZE, len(person_ids), PAGE_SIZE)
    ]
    pages = [{"first": PAGE_SIZE, "after": after} for after in afters]
    return [
        Scenario("person", queries.person, persons),
        Scenario(f"page of {PAGE_SIZE}", queries.page, pages),
    ]


class Client:
    """One server's httpx client; the hub and the peer get the token and the purpose."""

    def __init__(self, server: Server, headers: dict[str, str], connections: int) -> None:
        self.server = server
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx.AsyncClient(headers=headers, limits=limits, timeout=120.0)

    async def post(self, query: str, variables: Json) -> bytes:
        payload = orjson.dumps({"query": query, "variables": variables})
        response = await self.http.post(self.server.url, content=payload)
        body = response.content
        if response.status_code != 200 or b'"errors"' in body:
            raise BenchError(
                f"{self.server.name} answered HTTP {response.status_code} with errors: "
                f"{body[:600].decode(errors='replace')}"
            )
        return body

    async def close(self) -> None:
        await self.http.aclose()


def last_audit(path: Path) -> tuple[int, str] | None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        row = conn.execute("SELECT person_id, fields FROM audit_record ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else None


async def check(
    scenario: Scenario, clients: dict[str, Client], start: int, count: int, trails: tuple[Path, Path]
) -> None:
    """The same `data`, byte for byte, from every server for `count` requests from `start`,
    and, for a person, the same audited field paths in the hub's trail and the peer's."""
    for i in range(start, start + count):
        variables = scenario.variables[i % len(scenario.variables)]
        answers = {name: await client.post(scenario.query, variables) for name, client in clients.items()}
        data = {name: orjson.dumps(orjson.loads(body)["data"]) for name, body in answers.items()}
        for name in TARGETS[1:]:
            if data[name] != data["hub"]:
                raise BenchError(
                    f"{scenario.name}: {name}'s data differs from the hub's for "
                    f"{orjson.dumps(variables).decode()}"
                    f" ({len(data[name])} bytes against {len(data['hub'])}; the values are not printed)"
                )
        if scenario.name == "person":
            hub_row, peer_row = last_audit(trails[0]), last_audit(trails[1])
            if hub_row != peer_row:
                raise BenchError("person: the peer's audit record names other fields than the hub's")


async def denials(client: Client, variables: Json) -> tuple[bytes, list[tuple[tuple[Any, ...], str]]]:
    """The whole every-agency document (fields the grant denies included): data, and the
    path and code of every error, in path order."""
    payload = orjson.dumps({"query": DESK_QUERY.read_text(), "variables": variables})
    response = await client.http.post(client.server.url, content=payload)
    answer = orjson.loads(response.content)
    errors = sorted((tuple(e.get("path") or ()), e["extensions"]["code"]) for e in answer.get("errors", []))
    return orjson.dumps(answer.get("data")), errors


async def verify_first(
    count: int,
    every: Sequence[Scenario],
    started: dict[str, Server],
    authorized: dict[str, str],
    plain: dict[str, str],
    trails: tuple[Path, Path],
) -> None:
    """Before any measurement: `count` persons and a tenth as many pages agree across all four
    servers, and the whole document, denied fields included, answers the hub's and the peer's
    same data and the same FORBIDDEN paths."""
    clients = {
        name: Client(started[name], authorized if name in WITH_TOKEN else plain, 1) for name in TARGETS
    }
    try:
        person, page = every
        await check(person, clients, 0, count, trails)
        await check(page, clients, 0, max(1, count // 10), trails)
        hub = await denials(clients["hub"], person.variables[0])
        peer = await denials(clients["peer"], person.variables[0])
        if hub != peer:
            raise BenchError("the whole document: the peer's data or FORBIDDEN paths differ from the hub's")
        forbidden = sum(1 for _, code in hub[1] if code == "FORBIDDEN")
        print(
            f"verified: {count} persons and {max(1, count // 10)} pages give the same data from all five; "
            f"the whole document gives the hub's data and {forbidden} FORBIDDEN paths from the peer too"
        )
    finally:
        for client in clients.values():
            await client.close()


@dataclass
class Measured:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(p) - 1]


async def drive(
    client: Client, scenario: Scenario, concurrency: int, seconds: float, offset: int, into: Measured
) -> int:
    """`concurrency` requests in flight for `seconds` (then the ones in flight finish);
    returns how many requests were sent."""
    counter = offset
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal counter
        while time.perf_counter() < deadline:
            i = counter
            counter += 1
            sent = time.perf_counter()
            await client.post(scenario.query, scenario.variables[i % len(scenario.variables)])
            into.latencies.append(time.perf_counter() - sent)

    gc.collect()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    into.seconds += time.perf_counter() - started
    return counter - offset


# ---------------------------------------------------------------- the run


@dataclass(frozen=True)
class Row:
    scenario: str
    concurrency: int
    measured: dict[str, Measured]


async def measure_all(
    args: argparse.Namespace, started: dict[str, Server], data_dir: Path, trail: Path, queries: Queries
) -> list[Row]:
    key = load_or_create_key(data_dir, TOKEN_KEY)
    token = TokenAuthority(key).issue(subject="http-load-bench", role=ROLE, purposes=(PURPOSE,))
    authorized = {
        "authorization": f"Bearer {token}",
        "x-purpose": PURPOSE,
        "content-type": "application/json",
    }
    plain = {"content-type": "application/json"}
    rows: list[Row] = []
    trails = (data_dir / "audit.sqlite", trail / "peer-audit.sqlite")
    every = scenarios(data_dir, queries)
    await verify_first(args.verify, every, started, authorized, plain, trails)
    for scenario in every:
        for concurrency in args.concurrency:
            clients = {
                name: Client(started[name], authorized if name in WITH_TOKEN else plain, concurrency)
                for name in TARGETS
            }
            try:
                measured = {name: Measured() for name in TARGETS}
                offsets = dict.fromkeys(TARGETS, 0)
                await check(scenario, clients, 0, args.check, trails)
                for name in TARGETS:
                    if args.warmup > 0:
                        offsets[name] += await drive(
                            clients[name], scenario, concurrency, args.warmup, offsets[name], Measured()
                        )
                for round_ in range(args.rounds):
                    if round_:
                        await check(scenario, clients, round_ * 7919, args.check, trails)
                    for name in TARGETS:
                        offsets[name] += await drive(
                            clients[name], scenario, concurrency, args.seconds, offsets[name], measured[name]
                        )
                cells = ", ".join(f"{n} {m.rps:.1f}" for n, m in measured.items())
                print(f"  {scenario.name}, concurrency {concurrency}: req/s {cells}", flush=True)
                rows.append(Row(scenario.name, concurrency, measured))
            finally:
                for client in clients.values():
                    await client.close()
    return rows


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds < 10 else f"{seconds:.0f} s"


def print_rows(rows: Sequence[Row], args: argparse.Namespace, peer_line: str) -> None:
    print()
    print(
        f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
        f"node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}; "
        f"load from httpx in one process on the same cores"
    )
    print(
        f"each server driven {args.rounds} x {args.seconds:g} s per row, interleaved "
        f"({', '.join(TARGETS)}), after {args.warmup:g} s of warm-up each"
    )
    print(
        f"query: bench/every_agency.graphql as {ROLE.value} ({PURPOSE}) reads it; data checked byte-identical"
    )
    print(
        "audit durability: hub = SQLite WAL (adapters/base.py) with synchronous=FULL (SQLite's default, "
        "not changed by the hub), group commit, witness file fsync'd"
    )
    print(f"                  peer = {peer_line}")
    print("floor: read_graph.py's SQL + orjson on the hub's aiosqlite engines, no token, no audit")
    print()
    header = (
        f"{'scenario':<12} {'conc':>4} | {'hub':>7} {'peer':>7} {'bare':>7} {'floor':>7} req/s | "
        f"{'hub p50/p99':>15} {'peer p50/p99':>13} {'bare p50/p99':>13} {'floor p50/p99':>13} ms | "
        f"{'hub/peer':>8} {'hub/bare':>8} {'hub/floor':>9} | {'no audit':>8} {'audit cost':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        m = row.measured

        def lat(name: str, m: dict[str, Measured] = m) -> str:
            return f"{ms(m[name].percentile(50))}/{ms(m[name].percentile(99))}"

        def ratio(name: str, m: dict[str, Measured] = m) -> str:
            return f"{m['hub'].rps / m[name].rps:.3f}" if m[name].rps else "-"

        print(
            f"{row.scenario:<12} {row.concurrency:>4} | {m['hub'].rps:>7.1f} {m['peer'].rps:>7.1f} "
            f"{m['bare peer'].rps:>7.1f} {m['floor'].rps:>7.1f}       | {lat('hub'):>15} {lat('peer'):>13} "
            f"{lat('bare peer'):>13} {lat('floor'):>13}    | {ratio('peer'):>8} {ratio('bare peer'):>8} "
            f"{ratio('floor'):>9} | {m['hub no audit'].rps:>8.1f} {1 - float(ratio('hub no audit')):>10.1%}"
        )
    print()
    print("no audit: the same hub with the audit off (req/s); audit cost: 1 - hub req/s / that")
    print("ratios are hub req/s / other req/s: above 1 the hub answers more requests per second")


def verify_peer_trail(trail: Path) -> str:
    """The peer's trail walked by the hub's own verifier (audit/chain.py): same chain, same rows."""
    public = serialization.load_pem_public_key((trail / "peer-audit-key.pub.pem").read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    with contextlib.closing(sqlite3.connect(trail / "peer-audit.sqlite")) as conn:
        conn.row_factory = sqlite3.Row
        records = [
            ChainedEntry(
                r["seq"],
                entry_of(dict(r)),
                r["prev_hash"],
                r["hash"],
            )
            for r in conn.execute("SELECT * FROM audit_record ORDER BY seq")
        ]
        checkpoints = [
            Checkpoint(r["seq"], r["hash"], r["signature"])
            for r in conn.execute("SELECT * FROM audit_checkpoint")
        ]
    findings = verify_chain(records, checkpoints, public)
    if findings:
        raise BenchError(f"the peer's audit trail does not verify: {findings[0]}")
    return (
        f"peer trail: {len(records)} records in {len(checkpoints)} commits, "
        "chain and checkpoints verified by audit/chain.py"
    )


def run(args: argparse.Namespace) -> None:
    data_dir: Path = (args.data_dir or ROOT / "var" / f"bench-http-{args.persons}").resolve()
    prepare_estate(data_dir, args.persons)
    sealer(data_dir)  # the sealing secret exists before the peer reads it
    queries = load_queries()
    with tempfile.TemporaryDirectory(prefix="hub-http-load-") as tmp:
        work = Path(tmp)
        config = work / "peer-config.json"
        config.write_text(json.dumps(export_peer_config(data_dir, DEFAULT_POLICY)))
        trail = work / "peer-trail"
        with servers(data_dir, config, work, trail) as started:
            peer_line = started["peer"].log.read_text().strip().splitlines()[0]
            print(peer_line)
            peer_line = peer_line.partition("audit durability: ")[2] or peer_line
            rows = asyncio.run(measure_all(args, started, data_dir, trail, queries))
            print(verify_peer_trail(trail))
        print_rows(rows, args, peer_line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--persons", type=int, default=10_000, help="persons in the estate (default 10000)")
    add("--seconds", type=float, default=4.0, help="seconds per server per round (default 4)")
    add("--rounds", type=int, default=2, help="interleaved rounds per scenario and concurrency (default 2)")
    add("--warmup", type=float, default=1.0, help="warm-up seconds per server before each row (default 1)")
    add("--concurrency", type=lambda s: [int(c) for c in s.split(",")], default=[1, 16], help="default 1,16")
    add("--check", type=int, default=3, help="requests compared across the servers before each round")
    add("--verify", type=int, default=50, help="persons compared across the servers before the first round")
    add("--data-dir", type=Path, default=None, help="the estate's directory (default var/bench-http-N)")
    add("--serve-floor", type=int, default=None, metavar="PORT", help=argparse.SUPPRESS)
    add("--serve-unaudited-hub", type=int, default=None, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_unaudited_hub is not None:
        serve_unaudited_hub(args.serve_unaudited_hub)
        return
    if args.serve_floor is not None:
        serve_floor(args.data_dir.resolve(), args.serve_floor)
        return
    print(f"HTTP load benchmark: {args.persons} persons, as of {AS_OF.isoformat()}")
    try:
        run(args)
    except BenchError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
