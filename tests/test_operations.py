"""Operations: `/readyz` and `/metrics` read through HTTP, the JSON log line of a request (its
fields, and no personal data), OpenTelemetry spans caught by an in-memory exporter, the drains
of workflow runs and of the audit queue, and a graceful shutdown of a real uvicorn server on
SIGTERM while a write is in flight."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from access.caller import Caller
from adapters.base import open_engine
from adapters.registry import DEFAULT_AGENCIES
from app import create_app
from audit.chain import AuditEntry
from audit.log import AUDIT_KEY, AuditLog
from audit.witness import FileWitness
from domain.records import Agency, CallerRole
from identity.store import HubStore
from keys.files import load_or_create_key
from operations.logs import LIBRARIES, UVICORN_LOGGERS, JsonLines, client_of, configure_logging
from operations.readiness import check, probe
from operations.telemetry import Telemetry, TelemetryConfigError, exporters_from_environment
from settings import Settings, sqlite_url
from tests.clock import SAFETY_NET, ManualClock
from tests.conftest import AS_OF, Estate, caller_headers, graphql, read_everything, seed_estate, unhurried
from tests.servers import uvicorn_serving
from workflows.engine import WorkflowRunner

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
AGENCIES = {spec.id for spec in DEFAULT_AGENCIES}
UNREACHABLE = "sqlite+aiosqlite:////nonexistent-directory/for-readiness-tests/down.sqlite"
EXIT_DESK = (CallerRole.EXIT_ENTRY, "entry-control")


@asynccontextmanager
async def serving(
    settings: Settings, span_exporter: InMemorySpanExporter | None = None
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """The app with its lifespan, and an HTTP client sending no token unless told."""
    app = create_app(settings, span_exporter=span_exporter)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
            yield app, http


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def scrape(http: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return metric_samples(answer.text)


async def some_persons(estate: Estate, n: int = 5) -> list[dict[str, Any]]:
    """Persons with a permit, read by a caller allowed everything."""
    settings, headers = read_everything(estate.settings)
    async with serving(settings) as (_app, http):
        body = await graphql(
            http,
            "{ persons(first: 40) { edges { node { id name { surname givenNames full } workPermit { number } } } } }",
            headers=headers,
        )
    persons = [e["node"] for e in body["data"]["persons"]["edges"] if e["node"]["workPermit"]]
    assert len(persons) >= n
    return persons[:n]


# ---------------------------------------------------------------- /healthz and /readyz


async def test_readyz_reports_every_database_without_a_token(policy_client: httpx.AsyncClient) -> None:
    assert (await policy_client.get("/healthz")).json() == {"status": "ok"}
    answer = await policy_client.get("/readyz")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["status"] == "ready"
    assert body["store"]["status"] == "up" and body["audit"]["status"] == "up"
    assert set(body["sources"]) == AGENCIES
    for agency, source in body["sources"].items():
        assert source["status"] == "up", agency
        assert source["breaker"] == "closed"
        assert source["consecutiveFailures"] == 0
        assert isinstance(source["ms"], float)


async def test_a_down_source_is_marked_and_the_hub_stays_ready(estate: Estate) -> None:
    urls = {**estate.settings.source_urls, Agency.BEIJING_PASS: UNREACHABLE}
    settings, headers = read_everything(replace(estate.settings, source_urls=urls))
    async with serving(settings) as (_app, http):
        answer = await http.get("/readyz")
        assert answer.status_code == 200
        body = answer.json()
        assert body["status"] == "degraded"
        down = body["sources"].pop(Agency.BEIJING_PASS.value)
        assert down["status"] == "down" and down["reason"] == "OperationalError"
        assert all(source["status"] == "up" for source in body["sources"].values())
        # ... and the hub still answers what the other agencies hold.
        listed = await graphql(
            http, "{ persons(first: 3) { edges { node { workPermit { number } } } } }", headers=headers
        )
        assert "errors" not in listed and len(listed["data"]["persons"]["edges"]) == 3


@pytest.mark.parametrize("database", ["store", "audit"])
async def test_readyz_is_503_when_the_hub_store_or_the_audit_store_is_down(
    estate: Estate, database: str
) -> None:
    async with serving(estate.settings) as (app, http):
        owner = app.state.hub.store if database == "store" else app.state.hub.audit
        working, owner.engine = owner.engine, open_engine(UNREACHABLE)
        try:
            answer = await http.get("/readyz")
        finally:
            broken, owner.engine = owner.engine, working
            await broken.dispose()
        assert answer.status_code == 503
        body = answer.json()
        assert body["status"] == "unavailable"
        assert body[database]["status"] == "down"
        assert all(source["status"] == "up" for source in body["sources"].values())
        assert (await http.get("/healthz")).status_code == 200  # the process itself is up
        assert (await http.get("/readyz")).status_code == 200


async def test_a_hanging_database_is_down_once_the_probe_times_out() -> None:
    class Hanging:
        async def __aenter__(self) -> None:
            await asyncio.sleep(3600)

        async def __aexit__(self, *_: object) -> None:
            return None

    async with asyncio.timeout(SAFETY_NET):  # the hour-long hang is not waited for
        answer = await probe(Hanging, 0.2)
    assert answer["status"] == "down" and answer["reason"] == "timeout"


async def test_readiness_shows_each_breaker_as_the_sources_report_it(estate: Estate) -> None:
    async with serving(estate.settings) as (app, _http):
        hub = app.state.hub

        class Reporting:
            """The hub's sources, with the exit-entry breaker reported open."""

            def all(self) -> Any:
                return hub.sources.all()

            def sources_status(self) -> dict[str, dict[str, Any]]:
                return {Agency.EXIT_ENTRY.value: {"breaker": "open", "failures": 5}}

        status, body = await check(replace(hub, sources=Reporting()), SAFETY_NET)
    assert status == 200 and body["status"] == "degraded"
    assert body["sources"][Agency.EXIT_ENTRY.value]["breaker"] == "open"
    assert body["sources"][Agency.EXIT_ENTRY.value]["consecutiveFailures"] == 5
    assert body["sources"][Agency.CARD_SERVICE.value]["breaker"] == "closed"


# ---------------------------------------------------------------- /metrics


async def test_metrics_count_requests_errors_sources_and_the_audit(
    estate: Estate, policy_client: httpx.AsyncClient
) -> None:
    before = await scrape(policy_client)
    for name in (
        "hub_requests_total",
        "hub_request_duration_seconds_bucket",
        "hub_source_statements_total",
        "hub_source_statement_duration_seconds_bucket",
        "hub_source_breaker_state",
        "hub_requests_in_flight",
        "hub_workflow_runs_in_flight",
        "process_resident_memory_bytes",
    ):
        assert any(n == name for n, _ in before), name
    for agency in AGENCIES:
        states = {
            dict(ls)["hub_source_breaker_state"]: v
            for (n, ls), v in before.items()
            if n == "hub_source_breaker_state" and ("agency", agency) in ls
        }
        assert states["closed"] == 1 and states["open"] == 0, agency

    refused = await policy_client.post("/graphql", json={"query": "{ accessGrants { role } }"})
    assert refused.status_code == 401
    headers = caller_headers(estate.settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    read = await graphql(
        policy_client,
        "{ persons(first: 2) { edges { node { name { full } workPermit { number } } } } }",
        headers=headers,
    )
    assert "errors" not in read
    invalid = await policy_client.post("/graphql", json={"query": "{ noSuchField }"}, headers=headers)
    assert invalid.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

    after = await scrape(policy_client)

    def grew(name: str, by: float = 1, **labels: str) -> bool:
        return value(after, name, **labels) - value(before, name, **labels) >= by

    assert grew("hub_requests_total", route="/graphql", operation="query", status="200")
    assert grew("hub_requests_total", route="/graphql", operation="none", status="401")
    assert grew("hub_request_duration_seconds_count", 3, route="/graphql")
    assert grew("hub_requests_total", route="/metrics", status="200")
    assert grew("hub_graphql_errors_total", code="UNAUTHENTICATED")
    assert grew("hub_graphql_errors_total", code="GRAPHQL_VALIDATION_FAILED")
    assert grew("hub_source_statements_total", source="HUB_STORE")
    assert grew("hub_source_statements_total", source="WORK_PERMIT_SYSTEM")
    assert grew("hub_source_statement_duration_seconds_count", source="HUB_STORE")
    assert grew("hub_audit_records_total", 2) and grew("hub_audit_commits_total")
    assert grew("hub_audit_batch_records_count")
    # Bounded labels: no client, request id or person anywhere.
    for (_name, labels), _v in after.items():
        for key, label in labels:
            assert key not in {"client", "subject", "request_id", "person"}
            assert "test-" not in label


# ---------------------------------------------------------------- the request's log line


async def test_a_request_is_logged_as_one_json_line_without_personal_data(
    estate: Estate, policy_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    person = (await some_persons(estate, 1))[0]
    number = person["workPermit"]["number"]
    query = (
        "query Desk($n: String!) { person(lookup: {workPermitNumber: $n}) { id name { full } nationality } }"
    )
    with caplog.at_level(logging.INFO):
        answer = await policy_client.post(
            "/graphql",
            json={"query": query, "variables": {"n": number}},
            headers=caller_headers(estate.settings, *EXIT_DESK),
        )
    assert answer.status_code == 200
    body = answer.json()
    assert body["data"]["person"]["name"]["full"] == person["name"]["full"]
    assert "extensions" not in body, "statement counts are answered only when asked"
    request_id = answer.headers["x-request-id"]
    lines = [
        r for r in caplog.records if r.name == "hub.request" and getattr(r, "request_id", None) == request_id
    ]
    assert len(lines) == 1
    line = json.loads(JsonLines().format(lines[0]))
    assert line["level"] == "INFO" and line["logger"] == "hub.request" and line["message"] == "request"
    assert line["time"].endswith("+00:00")
    assert line["request_id"] == request_id
    assert line["client"] == "test-exit_entry"
    assert line["role"] == "EXIT_ENTRY" and line["purpose"] == "entry-control"
    assert line["method"] == "POST" and line["route"] == "/graphql" and line["operation"] == "query"
    assert line["status"] == 200 and line["duration_ms"] > 0
    assert line["sources"]["HUB_STORE"]["statements"] >= 1
    assert set(line["sources"]["HUB_STORE"]) == {"statements", "ms"}
    # Nothing of the person, the document or its variables, in this line or any other.
    secrets = {
        number,
        person["id"],
        person["name"]["full"],
        person["name"]["surname"],
        "workPermitNumber",
        "Desk",
    }
    everything = "\n".join(JsonLines().format(r) for r in caplog.records)
    for secret in secrets:
        assert secret not in everything, secret


async def test_the_log_line_and_the_trace_extension_count_the_same_statements(
    estate: Estate, policy_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {
        **caller_headers(estate.settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration"),
        "X-Hub-Trace": "1",
    }
    with caplog.at_level(logging.INFO, logger="hub.request"):
        answer = await policy_client.post(
            "/graphql",
            json={"query": "{ persons(first: 3) { edges { node { workPermit { number } } } } }"},
            headers=headers,
        )
    reported = answer.json()["extensions"]["sources"]
    line = next(r for r in caplog.records if getattr(r, "request_id", None) == answer.headers["x-request-id"])
    logged: dict[str, dict[str, float]] = line.sources  # type: ignore[attr-defined]  # a log extra
    assert {k: v["statements"] for k, v in logged.items()} == {
        k: v["statements"] for k, v in reported.items()
    }
    assert reported["WORK_PERMIT_SYSTEM"]["statements"] >= 1


def test_a_cardholder_token_names_its_client_not_its_person() -> None:
    registered = Caller(subject="card-desk/cardholder/1234", role=CallerRole.CARDHOLDER, person_id=1234)
    assert client_of(registered) == "card-desk"
    assert client_of(Caller(subject="e-card-app", role=CallerRole.CARDHOLDER, person_id=7)) == "e-card-app"
    assert client_of(Caller(subject="exit-entry-desk", role=CallerRole.EXIT_ENTRY)) == "exit-entry-desk"
    assert client_of(None) is None


async def test_probes_are_logged_at_debug_and_errors_of_the_gate_are_counted(
    policy_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="hub.request"):
        probe_answer = await policy_client.get("/readyz")
        refused = await policy_client.post("/graphql", json={"query": "{ me { id } }"})
    by_id = {getattr(r, "request_id", None): r for r in caplog.records if r.name == "hub.request"}
    assert by_id[probe_answer.headers["x-request-id"]].levelno == logging.DEBUG
    gate = by_id[refused.headers["x-request-id"]]
    assert gate.levelno == logging.INFO
    assert gate.status == 401 and gate.errors == {"UNAUTHENTICATED": 1}  # type: ignore[attr-defined]  # log extras
    assert gate.client is None and gate.role is None  # type: ignore[attr-defined]  # log extras


# ---------------------------------------------------------------- OpenTelemetry


async def test_requests_and_their_statements_are_traced_into_the_configured_exporter(estate: Estate) -> None:
    exporter = InMemorySpanExporter()
    settings, headers = read_everything(estate.settings)
    person = (await some_persons(estate, 1))[0]
    number = person["workPermit"]["number"]
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{caller_trace}-00f067aa0ba902b7-01"
    async with serving(settings, span_exporter=exporter) as (_app, http):
        answer = await http.post(
            "/graphql",
            json={
                "query": "query($n: String!) { person(lookup: {workPermitNumber: $n}) { name { full } workPermit { number } socialSecurityNumber } }",
                "variables": {"n": number},
            },
            headers={**headers, "traceparent": traceparent},
        )
        assert answer.status_code == 200 and "errors" not in answer.json()
    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    assert len(servers) == 1
    server = servers[0]
    assert server.name == "POST /graphql"
    assert format(server.context.trace_id, "032x") == caller_trace  # the caller's trace goes on
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/graphql"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["graphql.operation.type"] == "query"
    assert server.attributes["hub.request_id"] == answer.headers["x-request-id"]
    # The request's statements (background work, the expiry check at start, has traces of its own).
    statements = [
        s for s in spans if s.kind is SpanKind.CLIENT and s.context.trace_id == server.context.trace_id
    ]
    sources = {s.attributes["hub.source"] for s in statements if s.attributes}
    assert {"HUB_STORE", "WORK_PERMIT_SYSTEM"} <= sources
    for span in statements:
        assert span.parent is not None and span.parent.span_id == server.context.span_id
        assert span.context.trace_id == server.context.trace_id
        assert span.end_time is not None and span.start_time is not None and span.end_time >= span.start_time
    for span in spans:
        for attribute in (span.attributes or {}).values():
            assert number not in str(attribute) and person["name"]["full"] not in str(attribute)


def test_tracing_is_off_unless_an_exporter_is_configured() -> None:
    assert exporters_from_environment({}) == []
    assert exporters_from_environment({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert exporters_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) == ["otlp"]
    assert exporters_from_environment({"OTEL_TRACES_EXPORTER": "console, otlp"}) == ["console", "otlp"]
    with pytest.raises(TelemetryConfigError, match="zipkin"):
        exporters_from_environment({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(TelemetryConfigError, match="grpc"):
        exporters_from_environment({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    off = Telemetry.configure({})
    assert not off.enabled and off.provider is None
    console = Telemetry.configure({"OTEL_TRACES_EXPORTER": "console"})
    assert console.enabled
    console.shutdown()


# ---------------------------------------------------------------- drains


async def test_drain_waits_for_workflow_runs_in_flight(tmp_path: Path) -> None:
    store = HubStore.open(sqlite_url(tmp_path / "hub_store.sqlite"))
    await store.create_tables()
    runner = WorkflowRunner(store, {}, {})
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_body(_journal: Any) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"done": True}

    try:
        assert await runner.drain(0.01)  # nothing in flight
        task = asyncio.create_task(runner.run("drill", "test", None, {}, slow_body))
        await started.wait()
        assert runner.in_flight == 1
        assert not await runner.drain(0.05)  # the run cannot end before it is released
        release.set()
        assert await runner.drain(SAFETY_NET)
        assert runner.in_flight == 0
        assert (await task).result == {"done": True}
    finally:
        await store.close()


async def test_drain_waits_until_the_audit_queue_is_committed(tmp_path: Path) -> None:
    audit = AuditLog.open(
        sqlite_url(tmp_path / "audit.sqlite"),
        load_or_create_key(tmp_path, AUDIT_KEY),
        FileWitness(tmp_path / "audit-witness.jsonl"),
    )
    await audit.create_tables()
    entry = AuditEntry(
        at=datetime(2026, 6, 15, tzinfo=UTC),
        request_id="r",
        client="c",
        role="EXIT_ENTRY",
        purpose="entry-control",
        case_reference=None,
        person_id=1,
        fields=("Person.name.full",),
    )
    try:
        waiters = [asyncio.create_task(audit.append([entry])) for _ in range(30)]
        await asyncio.sleep(0)
        assert await audit.drain(SAFETY_NET)
        assert all(w.done() for w in waiters)
        assert (await audit.counts())[0] == 30
        assert await audit.drain(0.01)  # nothing queued
    finally:
        await audit.close()


def test_shutdown_settings_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_SHUTDOWN_GRACE": "2.5",
        "HUB_READY_TIMEOUT": "0.3",
        "HUB_LOG_LEVEL": "debug",
    }
    settings = Settings.from_environment(env)
    assert (settings.shutdown_grace, settings.ready_timeout, settings.log_level) == (2.5, 0.3, "DEBUG")
    assert Settings.from_environment({"HUB_DATA_DIR": str(tmp_path)}).shutdown_grace == 10.0
    with pytest.raises(ValueError, match="HUB_SHUTDOWN_GRACE"):
        Settings.from_environment({**env, "HUB_SHUTDOWN_GRACE": "soon"})
    with pytest.raises(ValueError, match="HUB_LOG_LEVEL"):
        Settings.from_environment({**env, "HUB_LOG_LEVEL": "loud"})


# ---------------------------------------------------------------- graceful shutdown, for real

PASSPORT = "C0900077"
CREDIT_CODE = "91110000600037341L"
APPLY = """mutation($i: ApplyForWorkPermitInput!) {
  applyForWorkPermit(input: $i) { workPermit { number status } userErrors { code message } }
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _count(database: Path, sql: str, *parameters: object) -> int:
    with sqlite3.connect(database) as conn:
        return int(conn.execute(sql, parameters).fetchone()[0])


@pytest.fixture(scope="module")
async def shutdown_estate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("graceful")
    await seed_estate(Settings.for_directory(data_dir, fixed_today=AS_OF), persons=60, seed=9)
    return data_dir


def test_sigterm_lets_the_write_in_flight_finish_and_exits_0(shutdown_estate: Path) -> None:
    data_dir = shutdown_estate
    settings = Settings.for_directory(data_dir, fixed_today=AS_OF)
    port = _free_port()
    env = {
        **os.environ,
        "HUB_DATA_DIR": str(data_dir),
        "HUB_TODAY": AS_OF.isoformat(),
        "HUB_SHUTDOWN_GRACE": "120",  # a safety net: the request in flight is released at once
        "HUB_NOTIFY_INTERVAL": "0",
        "HUB_SOURCE_TIMEOUT": "120",  # the held lock below must not look like a slow source
    }
    for name in (
        "HUB_CRASH_DRILL",
        "HUB_FAULTS",
        "HUB_FAULTS_FILE",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ):
        env.pop(name, None)
    log_path = data_dir / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [*HUB, "run", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    blocker: sqlite3.Connection | None = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not start: " + log_path.read_text()[-2000:])

        # Another writer holds the work-permit database: the run's write there waits for it.
        blocker = sqlite3.connect(data_dir / "work_permit.sqlite", isolation_level=None, timeout=30)
        blocker.execute("BEGIN IMMEDIATE")
        answers: list[httpx.Response | BaseException] = []

        def apply() -> None:
            try:
                answers.append(
                    httpx.post(
                        f"{base}/graphql",
                        json={
                            "query": APPLY,
                            "variables": {
                                "i": {
                                    "applicant": {
                                        "name": {"surname": "Graceful", "givenNames": "Shutdown"},
                                        "sex": "FEMALE",
                                        "birthDate": "1988-08-08",
                                        "nationality": "FRA",
                                        "passportNumber": PASSPORT,
                                    },
                                    "employerCreditCode": CREDIT_CODE,
                                    "category": "B",
                                    "position": "Engineer",
                                    "workDistrict": "110105",
                                    "validTo": "2027-06-01",
                                    "idempotencyKey": "graceful-1",
                                }
                            },
                        },
                        headers=caller_headers(
                            settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration"
                        ),
                        timeout=SAFETY_NET,
                    )
                )
            except BaseException as error:  # the assertion below shows it
                answers.append(error)

        client = threading.Thread(target=apply)
        client.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the run has started and waits on the lock
            gauge = value(
                metric_samples(httpx.get(f"{base}/metrics", timeout=SAFETY_NET).text),
                "hub_workflow_runs_in_flight",
            )
            if gauge >= 1:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the workflow run did not start")

        server.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + SAFETY_NET
        while True:  # until the server no longer accepts, as it does once it takes the signal
            assert time.monotonic() < deadline, "the server went on accepting after SIGTERM"
            try:
                httpx.get(f"{base}/healthz", timeout=SAFETY_NET)
            except httpx.TransportError:
                break
            time.sleep(0.05)
        assert server.poll() is None, "the server waits for the request in flight"
        blocker.execute("ROLLBACK")
        blocker.close()
        blocker = None

        client.join(timeout=60)
        assert answers, "no answer"
        answer = answers[0]
        assert isinstance(answer, httpx.Response), answer
        assert answer.status_code == 200
        applied = answer.json()["data"]["applyForWorkPermit"]
        assert applied["userErrors"] == [] and applied["workPermit"]["number"]
        assert server.wait(timeout=60) == 0
    finally:
        if blocker is not None:
            blocker.close()
        if server.poll() is None:
            server.kill()
            server.wait()
    # The write is in every database it touched, once; the run is finished.
    permit = applied["workPermit"]["number"]
    assert (
        _count(data_dir / "work_permit.sqlite", 'SELECT count(*) FROM "WP_SQR" WHERE "HZHM" = ?', PASSPORT)
        == 1
    )
    assert (
        _count(data_dir / "work_permit.sqlite", 'SELECT count(*) FROM "WP_XKZ" WHERE "XKZH" = ?', permit) == 1
    )
    assert (
        _count(data_dir / "hub_store.sqlite", "SELECT count(*) FROM workflow_run WHERE status != 'DONE'") == 0
    )
    assert (
        _count(
            data_dir / "hub_store.sqlite",
            "SELECT count(*) FROM workflow_run WHERE idempotency_key = 'graceful-1'",
        )
        == 1
    )
    # Its log: JSON lines, the mutation's among them, and the drain.
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    requests = [
        line for line in lines if line["message"] == "request" and line.get("operation") == "mutation"
    ]
    assert [(r["status"], r["role"]) for r in requests] == [(200, "WORK_PERMIT_AUTHORITY")]
    assert any(line["message"] == "drained" and line["complete"] for line in lines)
    assert "Traceback" not in log_path.read_text()
    assert PASSPORT not in log_path.read_text() and "Graceful" not in log_path.read_text()


@contextmanager
def json_logs(level: str = "DEBUG") -> Iterator[io.StringIO]:
    """Every logger's lines, as the hub's JSON handler writes them, for the duration."""
    root = logging.getLogger()
    names = (*LIBRARIES, *UVICORN_LOGGERS)
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in names})
    stream = io.StringIO()
    try:
        configure_logging(level, stream)
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        for name, level_before in saved[2].items():
            logging.getLogger(name).setLevel(level_before)


def test_json_logs_name_the_request_and_keep_drivers_quiet() -> None:
    from tracing.request import RequestRecord, current_request

    with json_logs() as stream:
        assert logging.getLogger("aiosqlite").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("sqlalchemy.engine").getEffectiveLevel() == logging.WARNING
        token = current_request.set(RequestRecord("abc123", "POST", "/graphql", 0.0))
        try:
            logging.getLogger("hub.test").warning("something %s", "happened")
            logging.getLogger("aiosqlite").debug("executing SELECT with parameters")
        finally:
            current_request.reset(token)
        logging.getLogger("uvicorn.error").info("Started", extra={"color_message": "\x1b[1mStarted\x1b[0m"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("hub.test", "something happened"),
        ("uvicorn.error", "Started"),
    ]
    assert lines[0]["request_id"] == "abc123" and lines[0]["level"] == "WARNING"
    assert "color_message" not in lines[1] and "request_id" not in lines[1]


# What a log line must never hold: a foreigner's social security number, name and permit number.
SSN = "DEU110105900101017"
NAME = ("Johanna", "Müller-Lüdenscheidt")
PERMIT = "110000202400012345"
PERSONAL = (SSN, *NAME, PERMIT)


def _look_up(permit: str) -> None:
    raise KeyError(f"no permit {permit}")


def _fail_for(ssn: str, name: str) -> None:
    try:
        _look_up(PERMIT)
    except KeyError as error:
        raise ValueError(f"could not read {ssn} ({name})") from error


def test_an_exception_is_logged_by_its_type_and_frames_never_its_message() -> None:
    with json_logs() as stream:
        try:
            _fail_for(SSN, " ".join(NAME))
        except ValueError as error:
            logging.getLogger("hub.test").error("unexpected %s", type(error).__name__, exc_info=error)
            # As asyncio logs a task's exception: its repr inside the message.
            logging.getLogger("asyncio").error(
                "Task exception was never retrieved\nfuture: <Task %r>", error, exc_info=error
            )
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "unexpected ValueError"
    trace: str = first["exc_info"]
    assert trace.splitlines()[-1] == "ValueError (message not logged)"
    assert "KeyError (message not logged)" in trace
    assert "The above exception was the direct cause of the following exception:" in trace
    for function in (
        "_look_up",
        "_fail_for",
        "test_an_exception_is_logged_by_its_type_and_frames_never_its_message",
    ):
        assert f", in {function}" in trace
    assert f'File "{__file__}", line ' in trace
    assert second["message"] == "Task exception was never retrieved\nfuture: <Task ValueError>"
    for value in PERSONAL:
        assert value not in stream.getvalue(), value


async def test_no_log_line_holds_a_document_variables_or_an_exception_message(
    estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error in a resolver and in the gate, and a WebSocket document that does
    not parse, each quoting a person's number and name, through a real uvicorn server."""
    import app
    import resolvers.query

    def broken_grants(_info: object) -> None:
        raise RuntimeError(f"no grants for {SSN}, {' '.join(NAME)}, permit {PERMIT}")

    monkeypatch.setattr(resolvers.query, "access_grants", broken_grants)
    quoted = f"# {SSN} {' '.join(NAME)} {PERMIT}\n"
    variables = {"ssn": SSN, "name": " ".join(NAME), "permit": PERMIT}
    reporting = caller_headers(estate.settings, CallerRole.REPORTING)
    cardholder = caller_headers(estate.settings, CallerRole.CARDHOLDER, person_id=1)
    with json_logs("DEBUG") as stream:
        async with uvicorn_serving(create_app(estate.settings), log_level="info") as address:
            async with httpx.AsyncClient(base_url=f"http://{address}", timeout=SAFETY_NET) as http:
                masked = await http.post(
                    "/graphql",
                    json={"query": quoted + "{ accessGrants { role } }", "variables": variables},
                    headers=reporting,
                )
                assert masked.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"

                async def broken_scope(*_args: object) -> None:
                    raise LookupError(f"no scope for {SSN} ({' '.join(NAME)})")

                with monkeypatch.context() as patch:
                    patch.setattr(app, "scope_of", broken_scope)
                    refused = await http.post(
                        "/graphql",
                        json={"query": quoted + "{ accessGrants { role } }", "variables": variables},
                        headers=reporting,
                    )
                assert refused.status_code == 500
            async with connect(
                f"ws://{address}/graphql?query={SSN}",
                subprotocols=[Subprotocol("graphql-transport-ws")],
                open_timeout=SAFETY_NET,
            ) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": cardholder}))
                assert json.loads(await asyncio.wait_for(ws.recv(), SAFETY_NET)) == {"type": "connection_ack"}
                unparsable = f"subscription {{ notifications {{ id }} }} }} '{SSN}' {' '.join(NAME)} {PERMIT}"
                subscribe = {"query": unparsable, "variables": variables}
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
                with contextlib.suppress(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), SAFETY_NET)  # the operation's end, however it is told
    # The test's own WebSocket client logs what it sends: its lines are not the hub's.
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    lines = [line for line in lines if line["logger"] != "websockets.client"]
    logged = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    for value in PERSONAL:
        assert value not in logged, value
    # Still told apart: each failure by its type and the frames it passed through.
    traces = "\n".join(line.get("exc_info", "") for line in lines)
    assert "RuntimeError (message not logged)" in traces and ", in broken_grants" in traces
    assert "LookupError (message not logged)" in traces and ", in broken_scope" in traces
    assert "graphql.error.syntax_error.GraphQLSyntaxError (message not logged)" in traces
    assert any(line["message"] == '- - "WebSocket /graphql" [accepted]' for line in lines)


# ---------------------------------------------------------------- nothing personal on disk


def _modes(data_dir: Path) -> dict[str, int]:
    return {
        (path.relative_to(data_dir).as_posix() if path != data_dir else "."): path.stat().st_mode & 0o777
        for path in [data_dir, *data_dir.rglob("*")]
    }


def _owner_only(data_dir: Path) -> dict[str, int]:
    """Every path of the data directory whose mode is not owner-only (0700 directories, 0600 files)."""
    return {
        name: mode
        for name, mode in _modes(data_dir).items()
        if mode != (0o700 if (data_dir / name).is_dir() else 0o600)
    }


async def test_the_data_directory_and_every_file_in_it_are_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    previous = os.umask(0o022)  # a shell's usual umask: what nobody set would be world-readable
    try:
        env = {**os.environ, "HUB_DATA_DIR": str(data_dir), "HUB_TODAY": AS_OF.isoformat()}
        seeded = await asyncio.to_thread(
            subprocess.run,
            [*HUB, "seed", "--persons", "20", "--seed", "3"],
            cwd=ROOT,
            env=env,
            umask=0o022,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert seeded.returncode == 0, seeded.stderr
        assert {"work_permit.sqlite", "hub_store.sqlite"} <= set(_modes(data_dir))
        assert _owner_only(data_dir) == {}

        # An earlier run left everything readable by others: the server tightens it at start.
        for name in _modes(data_dir):
            os.chmod(data_dir / name, 0o755 if (data_dir / name).is_dir() else 0o644)
        settings = unhurried(Settings.for_directory(data_dir, fixed_today=AS_OF))
        os.umask(0o022)
        async with serving(settings) as (_app, http):
            body = await graphql(
                http,
                "{ persons(first: 2) { edges { node { id nationality } } } }",
                headers=caller_headers(settings, *EXIT_DESK),
            )
            assert "errors" not in body, body["errors"]
            while_serving = _modes(data_dir)
            assert _owner_only(data_dir) == {}
        assert {"audit.sqlite", "audit-witness.jsonl", "keys", "keys/client-tokens.pem"} <= set(while_serving)
        assert any(name.endswith("-wal") for name in while_serving)
        assert _owner_only(data_dir) == {}
    finally:
        os.umask(previous)


async def test_an_open_breaker_shows_in_readyz_and_metrics(estate: Estate) -> None:
    from faults import Fault, faults_of

    # On a clock that stands still, the breaker's pause (10 s) never ends while this runs.
    settings, headers = read_everything(replace(estate.settings, clock=ManualClock()))
    visas = "{ persons(first: 3) { edges { node { workPermit { number } visas { number } } } } }"
    async with serving(settings) as (app, http):
        before = await scrape(http)
        plan = faults_of(app.state.hub.sources)
        plan.set(Agency.EXIT_ENTRY, Fault.down())
        try:
            for _ in range(8):  # more failed calls than the breaker takes (HUB_BREAKER_FAILURES, 5)
                body = await graphql(http, visas, headers=headers)
                codes = {e["extensions"]["code"] for e in body["errors"]}
                assert codes == {"SOURCE_UNAVAILABLE"}
                assert all(e["node"]["workPermit"] for e in body["data"]["persons"]["edges"])
            ready = await http.get("/readyz")
            after = await scrape(http)
        finally:
            plan.clear()
    assert ready.status_code == 200
    exit_entry = ready.json()["sources"][Agency.EXIT_ENTRY.value]
    assert ready.json()["status"] == "degraded"
    assert exit_entry["status"] == "down" and exit_entry["breaker"] == "open"
    assert exit_entry["consecutiveFailures"] >= 5
    assert value(after, "hub_source_breaker_state", agency="EXIT_ENTRY", hub_source_breaker_state="open") == 1
    assert (
        value(after, "hub_source_breaker_state", agency="EXIT_ENTRY", hub_source_breaker_state="closed") == 0
    )
    assert (
        value(after, "hub_source_breaker_state", agency="CARD_SERVICE", hub_source_breaker_state="closed")
        == 1
    )
    assert value(after, "hub_source_calls_rejected_total", agency="EXIT_ENTRY") >= 1
    assert value(after, "hub_source_call_failures_total", agency="EXIT_ENTRY") >= 5
    assert value(after, "hub_source_calls_total", agency="WORK_PERMIT_SYSTEM") >= 8
    grew = value(after, "hub_graphql_errors_total", code="SOURCE_UNAVAILABLE", agency="EXIT_ENTRY") - value(
        before, "hub_graphql_errors_total", code="SOURCE_UNAVAILABLE", agency="EXIT_ENTRY"
    )
    assert grew >= 8
