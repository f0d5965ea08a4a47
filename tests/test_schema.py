"""The committed SDL, the public contract, and the user stories in docs/examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from schema import export_sdl
from tests.conftest import Estate
from tests.examples import CALLER, EXAMPLES, OPERATION, run_example

ROOT = Path(__file__).resolve().parent.parent
CONTRACT_CHECK = ROOT.parent / "shared" / "tools" / "check_contract.py"


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


def test_there_is_one_example_per_user_story() -> None:
    assert set(EXAMPLES) == {
        "agency-desk",
        "benefit-payment",
        "cardholder",
        "integration-developer",
        "news",
        "reporting-job",
    }
    assert all(CALLER.search(text) for text in EXAMPLES.values()), "each example names its caller"
    assert all(OPERATION.search(text) for text in EXAMPLES.values()), "each example has an operation"


@pytest.mark.parametrize("example", sorted(EXAMPLES))
async def test_each_example_answers_its_caller_without_errors(
    client: httpx.AsyncClient, policy_client: httpx.AsyncClient, estate: Estate, example: str
) -> None:
    answers = await run_example(policy_client, client, estate, EXAMPLES[example])
    for answer in answers:
        assert "errors" not in answer.body, (answer.name, answer.body["errors"])
        data = answer.body["data"]
        assert data and all(value not in (None, []) for value in data.values()), (answer.name, data)
        if answer.kind == "mutation":
            assert all(value["userErrors"] == [] for value in data.values()), (answer.name, data)
    if example == "cardholder":
        me = data["me"]
        # Records from all five agencies.
        assert me["workPermit"] and me["insuranceParticipations"] and me["socialSecurityCard"]
        assert me["visas"] and me["benefitPayments"]["edges"]
