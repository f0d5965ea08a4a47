"""`hub run --workers N`: several processes on one port, one audit chain, one set of metrics,
JSON logs from every worker and a graceful stop; refused where the processes could not share
what they must."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from domain.records import CallerRole
from settings import Settings
from tests.clock import SAFETY_NET
from tests.conftest import AS_OF, BACKENDS, UNHURRIED_ENV, Estate, fresh_estate, global_ids
from tests.servers import free_port
from tests.test_operations import metric_samples, value

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
REDIS_URL = os.environ.get("HUB_TEST_REDIS", "redis://127.0.0.1:6379/15")
READ = "query($id: ID!) { person(lookup: {id: $id}) { id name { full } visas { number validTo } } }"


def redis_unavailable(url: str = REDIS_URL) -> str | None:
    """Why Redis (at `url`) cannot be used here, or None when a server answers PING."""
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=SAFETY_NET) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return None
    except OSError as error:
        return f"no Redis server answers at {host_port} ({type(error).__name__})"
    return f"the server at {host_port} does not answer PING as Redis does"


def hub_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment under which `hub run` serves exactly these settings' databases."""
    env = {
        **os.environ,
        **UNHURRIED_ENV,
        "HUB_DATA_DIR": str(settings.data_dir),
        "HUB_TODAY": AS_OF.isoformat(),
        "HUB_STORE_URL": settings.store_url,
        "HUB_AUDIT_URL": settings.audit_url,
        "HUB_NOTIFY_INTERVAL": "0",
        "HUB_RATE_LIMIT": "100000/minute",  # one test client asks hard; the limits have their tests
        **{spec.url_variable: settings.source_urls[spec.id] for spec in settings.agencies},
        **extra,
    }
    for name in ("HUB_CRASH_DRILL", "HUB_FAULTS", "HUB_FAULTS_FILE", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    return env


class Workers:
    """`hub run --workers N` in its own process group, its stderr in a log file."""

    def __init__(self, settings: Settings, workers: int, log: Path, **extra: str) -> None:
        self.port = free_port()
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*HUB, "run", "--port", str(self.port), "--workers", str(workers)],
                cwd=ROOT,
                env=hub_environment(settings, **extra),
                stdout=out,
                stderr=out,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self, workers: int) -> None:
        """Once every worker has started serving (each logs uvicorn's start-up line)."""
        async with asyncio.timeout(SAFETY_NET):
            while self.log.read_text().count("Application startup complete") < workers:
                assert self.process.poll() is None, self.log.read_text()[-3000:]
                await asyncio.sleep(0.05)

    def children(self) -> list[int]:
        """The supervisor's worker processes (from /proc)."""
        found = []
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(
                    line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
                )
                command = (status.parent / "cmdline").read_bytes()
            except OSError:
                continue
            # The workers, not multiprocessing's resource tracker beside them.
            if fields.get("PPid", "").strip() == str(self.process.pid) and b"spawn_main" in command:
                found.append(int(status.parent.name))
        return found

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=SAFETY_NET)


@contextmanager
def serving(settings: Settings, workers: int, log: Path, **extra: str) -> Iterator[Workers]:
    server = Workers(settings, workers, log, **extra)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="module", params=BACKENDS)
async def workers_estate(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Estate]:
    """An estate of its own: the processes below write its audit trail and its hub store."""
    async with fresh_estate(request.param, tmp_path_factory.mktemp(f"workers-{request.param}")) as seeded:
        yield seeded


def run_hub(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HUB, *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=SAFETY_NET, check=False
    )


def test_more_than_one_worker_needs_redis_and_says_so(tmp_path: Path) -> None:
    settings = Settings.for_directory(tmp_path)
    env = hub_environment(settings)
    env.pop("HUB_REDIS_URL", None)
    refused = run_hub("run", "--port", str(free_port()), "--workers", "2", env=env)
    assert refused.returncode == 2
    assert "--workers 2" in refused.stderr and "HUB_REDIS_URL" in refused.stderr
    assert "Traceback" not in refused.stderr
    nonsense = run_hub("run", "--workers", "0", env=env)
    assert nonsense.returncode == 2 and "--workers must be at least 1" in nonsense.stderr


async def test_workers_answer_on_one_port_into_one_chain_with_summed_metrics(
    workers_estate: Estate, tmp_path: Path
) -> None:
    reason = redis_unavailable()
    if reason is not None:
        pytest.skip(reason)
    settings = workers_estate.settings
    ids = global_ids(settings)
    persons = [ids.encode("Person", person_id) for person_id in range(1, 41)]
    headers = workers_estate.headers(CallerRole.EXIT_ENTRY, "entry-control")
    requests = 400
    with serving(settings, 2, tmp_path / "server.log", HUB_REDIS_URL=REDIS_URL) as server:
        await server.ready(2)
        assert len(server.children()) == 2
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=server.url, timeout=SAFETY_NET, limits=limits) as http:
            before = metric_samples((await http.get("/metrics")).text)
            answers = await asyncio.gather(
                *(
                    http.post(
                        "/graphql",
                        json={"query": READ, "variables": {"id": persons[i % len(persons)]}},
                        headers=headers,
                    )
                    for i in range(requests)
                )
            )
            after = metric_samples((await http.get("/metrics")).text)
        assert server.stop() == 0  # SIGTERM: every worker drains and stops, and so does the supervisor
    bodies: list[dict[str, Any]] = [answer.json() for answer in answers]
    assert [answer.status_code for answer in answers] == [200] * requests
    assert [body for body in bodies if "errors" in body] == []
    assert all(body["data"]["person"]["id"] == persons[i % len(persons)] for i, body in enumerate(bodies))
    # Every worker's requests are in the sum, whichever worker answered the scrape.
    answered = value(after, "hub_requests_total", route="/graphql") - value(
        before, "hub_requests_total", route="/graphql"
    )
    assert answered == requests
    assert value(after, "hub_audit_records_total") - value(before, "hub_audit_records_total") == requests
    # Every worker logs JSON lines; only `hub run`'s own banner is text.
    text = (tmp_path / "server.log").read_text().splitlines()
    lines = [line for line in text if line and not line.startswith("GraphiQL at ")]
    assert lines and all(isinstance(orjson.loads(line), dict) for line in lines)
    assert sum(1 for line in lines if orjson.loads(line).get("message") == "request") >= requests
    verified = run_hub("audit", "verify", env=hub_environment(settings))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("audit trail intact: ")
