"""The `hub` command end to end: seed and link from the command line, then a real uvicorn
server answering GraphiQL and the README's example query."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.clock import SAFETY_NET
from tests.conftest import UNHURRIED_ENV

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("served")


def _hub(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HUB_DATA_DIR": str(data_dir), "HUB_TODAY": "2026-06-15"}
    return subprocess.run(
        [*HUB, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_seed_and_link_report_what_they_did(data_dir: Path) -> None:
    seeded = _hub(data_dir, "seed", "--persons", "150", "--seed", "11")
    assert seeded.returncode == 0, seeded.stderr
    assert "seeding 150 persons" in seeded.stderr
    counts = re.search(
        r"linked (\d+) records to (\d+) persons .* flagged (\d+) weak links, left (\d+) records alone",
        seeded.stdout,
    )
    assert counts, seeded.stdout
    assert int(counts.group(2)) == 150 and int(counts.group(1)) > 150
    again = _hub(data_dir, "link")
    assert again.returncode == 0, again.stderr
    assert "(0 new)" in again.stdout
    refused = _hub(data_dir, "seed", "--persons", "10", "--seed", "1")
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[str]:
    if not (data_dir / "work_permit.sqlite").exists():
        assert _hub(data_dir, "seed", "--persons", "150", "--seed", "11").returncode == 0
    port = _free_port()
    env = {**os.environ, **UNHURRIED_ENV, "HUB_DATA_DIR": str(data_dir), "HUB_TODAY": "2026-06-15"}
    process = subprocess.Popen(
        [*HUB, "run", "--demo", "--port", str(port)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not start")
        yield base
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=SAFETY_NET)
        assert "Traceback" not in stderr


def test_graphiql_loads(server: str) -> None:
    page = httpx.get(f"{server}/graphql", headers={"Accept": "text/html"}, timeout=SAFETY_NET)
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


def test_graphql_needs_a_token(server: str) -> None:
    answer = httpx.post(f"{server}/graphql", json={"query": "{ me { id } }"}, timeout=SAFETY_NET)
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_the_readme_example_returns_records_from_all_five_agencies(server: str, data_dir: Path) -> None:
    query = (ROOT / "docs" / "examples" / "cardholder.graphql").read_text()
    readme = (ROOT / "README.md").read_text()
    assert query in readme, "the README shows docs/examples/cardholder.graphql as it is"
    reader = _hub(
        data_dir,
        "token",
        "--role",
        "WORK_PERMIT_AUTHORITY",
        "--subject",
        "test",
        "--purpose",
        "permit-administration",
    )
    assert reader.returncode == 0, reader.stderr
    listing = httpx.post(
        f"{server}/graphql",
        json={
            "query": "{ persons(first: 100) { edges { node { workPermit { number } identityLinks { agency } } } } }"
        },
        headers={"Authorization": f"Bearer {reader.stdout.strip()}", "X-Purpose": "permit-administration"},
        timeout=SAFETY_NET,
    ).json()
    number = next(
        e["node"]["workPermit"]["number"]
        for e in listing["data"]["persons"]["edges"]
        if len({ln["agency"] for ln in e["node"]["identityLinks"]}) == 5
    )
    issued = _hub(
        data_dir,
        "token",
        "--role",
        "CARDHOLDER",
        "--subject",
        "e-card-app",
        "--person",
        f"workPermitNumber={number}",
    )
    assert issued.returncode == 0, issued.stderr
    answer = httpx.post(
        f"{server}/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {issued.stdout.strip()}"},
        timeout=SAFETY_NET,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert "errors" not in body, json.dumps(body["errors"])
    me = body["data"]["me"]
    assert me["workPermit"]["number"] == number
    assert me["socialSecurityNumber"] and me["socialSecurityCard"] and me["visas"]
    assert me["benefitPayments"]["edges"]
