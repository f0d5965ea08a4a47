"""`hub token --person` with the global id the graph hands out (`Person.id`), through the CLI
against a seeded estate's databases and keys: the token it issues reads that person, and an id
of another type or one edited by hand is refused, saying which."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import cli
from tests.conftest import Estate, graphql
from tests.examples import known_to_all

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
# The CLI does the same on either backend.
ON_SQLITE = pytest.mark.parametrize("estate", ["sqlite"], indirect=True)


async def _hub_token(estate: Estate, person: str) -> tuple[int, str, str]:
    """`hub token --role CARDHOLDER --person <person>` on the estate: (status, stdout, stderr)."""
    settings = estate.settings
    env = {
        **os.environ,
        "HUB_DATA_DIR": str(settings.data_dir),
        "HUB_STORE_URL": settings.store_url,
        "HUB_AUDIT_URL": settings.audit_url,
    }
    process = await asyncio.create_subprocess_exec(
        *HUB,
        *("token", "--role", "CARDHOLDER", "--subject", "e-card-app", "--person", person),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode().strip(), err.decode()


def _refused(run: tuple[int, str, str], rule: str) -> None:
    status, out, err = run
    assert status != 0 and out == "", "no token is printed"
    assert "Traceback" not in err, err
    assert "--person" in err and rule in err, err


@ON_SQLITE
async def test_a_persons_global_id_issues_a_token_for_that_person(
    estate: Estate, client: httpx.AsyncClient, policy_client: httpx.AsyncClient
) -> None:
    person = await known_to_all(client)
    status, token, err = await _hub_token(estate, person["id"])
    assert status == 0, err
    me = await graphql(
        policy_client, "{ me { id workPermit { number } } }", headers={"Authorization": f"Bearer {token}"}
    )
    assert "errors" not in me, me
    assert me["data"]["me"] == {"id": person["id"], "workPermit": {"number": person["workPermit"]["number"]}}


@ON_SQLITE
async def test_the_global_id_of_a_permit_is_refused_naming_its_type(
    estate: Estate, client: httpx.AsyncClient
) -> None:
    listing = await graphql(client, "{ persons(first: 10) { edges { node { workPermit { id } } } } }")
    permit = next(
        e["node"]["workPermit"]["id"] for e in listing["data"]["persons"]["edges"] if e["node"]["workPermit"]
    )
    _refused(await _hub_token(estate, permit), "is the id of a WorkPermit, not of a Person")


@ON_SQLITE
async def test_an_edited_global_id_is_refused(estate: Estate, client: httpx.AsyncClient) -> None:
    person = await known_to_all(client)
    edited = person["id"][:-2] + ("AA" if person["id"][-2:] != "AA" else "BB")
    _refused(await _hub_token(estate, edited), "is not an id this hub issued")


def test_a_global_id_that_begins_with_a_dash_stays_the_value_of_person() -> None:
    # Url-safe base64 begins with "-" for one id in 64; argparse alone would take it for an option.
    assert cli._joined_values(["token", "--person", "-Vq3x", "--ttl", "1h"], cli.VALUED_OPTIONS) == [
        "token",
        "--person=-Vq3x",
        "--ttl",
        "1h",
    ]
    parser_error = subprocess.run(
        [*HUB, "token", "--role", "CARDHOLDER", "--subject", "s", "--person"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert parser_error.returncode == 2 and "--person: expected one argument" in parser_error.stderr
