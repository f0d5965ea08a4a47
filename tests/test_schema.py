"""The committed SDL, the public contract, and the user stories in docs/examples."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.records import CallerRole
from schema import export_sdl
from tests.conftest import Estate, graphql, person_id_of

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
def test_schema_keeps_the_whole_contract() -> None:
    result = subprocess.run(
        [sys.executable, str(CONTRACT_CHECK), str(ROOT / "schema.graphql")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


CALLER = re.compile(r"^# Caller: (\w+)(?:, purpose ([\w-]+))?$", re.MULTILINE)


def test_there_is_one_example_per_user_story() -> None:
    assert set(DOCUMENTS) == {"agency-desk", "cardholder", "integration-developer", "reporting-job"}
    assert all(CALLER.search(text) for text in DOCUMENTS.values()), "each example names its caller"


async def _known_to_all(client: httpx.AsyncClient) -> dict[str, Any]:
    listing = await graphql(
        client,
        "{ persons(first: 100) { edges { node { id workPermit { number } identityLinks { agency } } } } }",
    )
    return next(
        e["node"]
        for e in listing["data"]["persons"]["edges"]
        if len({ln["agency"] for ln in e["node"]["identityLinks"]}) == 5
    )


@pytest.mark.parametrize("example", sorted(DOCUMENTS))
async def test_each_example_answers_its_caller_without_errors(
    client: httpx.AsyncClient, policy_client: httpx.AsyncClient, estate: Estate, example: str
) -> None:
    document = DOCUMENTS[example]
    match = CALLER.search(document)
    assert match is not None
    person = await _known_to_all(client)
    role = CallerRole(match.group(1))
    bound: dict[str, Any] = {}
    if role is CallerRole.CARDHOLDER:
        bound["person_id"] = person_id_of(estate.settings, person["id"])
    variables = (
        {"lookup": {"workPermitNumber": person["workPermit"]["number"]}} if "$lookup" in document else {}
    )
    body = await graphql(
        policy_client, document, variables, headers=estate.headers(role, match.group(2), **bound)
    )
    assert "errors" not in body, body["errors"]
    data = body["data"]
    assert data and all(value not in (None, []) for value in data.values())
    if example == "cardholder":
        me = data["me"]
        # Records from all five agencies.
        assert me["workPermit"] and me["insuranceParticipations"] and me["socialSecurityCard"]
        assert me["visas"] and me["benefitPayments"]["edges"]
