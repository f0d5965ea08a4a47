"""The committed SDL, the public contract, and the user stories in docs/examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from schema import export_sdl
from tests.conftest import graphql

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_CHECK = ROOT.parent / "shared" / "tools" / "check_contract.py"
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.graphql"))
DOCUMENTS = {p.stem: p.read_text() for p in EXAMPLES}


def test_committed_schema_is_current() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == export_sdl(), "schema.graphql is stale: run `make schema`"


@pytest.mark.skipif(
    not CONTRACT_CHECK.exists(), reason="the shared contract checker is not beside the project"
)
def test_schema_keeps_the_contract_on_the_query_root() -> None:
    result = subprocess.run(
        [sys.executable, str(CONTRACT_CHECK), str(ROOT / "schema.graphql"), "--roots", "Query"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_there_is_one_example_per_user_story() -> None:
    assert {p.stem for p in EXAMPLES} == {"agency-desk", "integration-developer", "reporting-job"}


async def _variables_for(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    if name != "agency-desk":
        return {}
    listing = await graphql(
        client, "{ persons(first: 100) { edges { node { id identityLinks { agency } } } } }"
    )
    person = next(
        e["node"]
        for e in listing["data"]["persons"]["edges"]
        if len({ln["agency"] for ln in e["node"]["identityLinks"]}) == 5
    )
    return {"lookup": {"id": person["id"]}}


@pytest.mark.parametrize("example", sorted(DOCUMENTS))
async def test_each_example_answers_without_errors(client: httpx.AsyncClient, example: str) -> None:
    body = await graphql(client, DOCUMENTS[example], await _variables_for(client, example))
    assert "errors" not in body, body["errors"]
    data = body["data"]
    assert data and all(value not in (None, []) for value in data.values())
    if example == "agency-desk":
        person = data["person"]
        # Records from all five agencies.
        assert person["workPermit"] and person["insuranceParticipations"] and person["socialSecurityCard"]
        assert person["visas"] and person["benefitPayments"]["edges"]
