"""A crash at each step of the enrollment workflow: the server process is killed (SIGKILL)
after the run's n-th change, restarted, and every agency database shows no trace of the
half-done run; the retry then enrolls exactly once."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.records import CallerRole
from settings import Settings
from tests.clock import SAFETY_NET
from tests.conftest import AS_OF, UNHURRIED_ENV, caller_headers, seed_estate

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
PASSPORT = {"number": "C0900001", "nationality": "DEU"}
CREDIT_CODE = "91110000600037341L"
# The enrollment run's changes: insured person, five participations, the card, two links, two
# identifiers, the person index. Crash after the first, inside each agency, and after the last.
CRASH_POINTS = [1, 4, 6, 7, 8, 10, 12]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """`hub run` in its own process, on the given data directory."""

    def __init__(self, data_dir: Path, drill: str | None = None) -> None:
        self.port = _free_port()
        env = {**os.environ, **UNHURRIED_ENV, "HUB_DATA_DIR": str(data_dir), "HUB_TODAY": AS_OF.isoformat()}
        env.pop("HUB_CRASH_DRILL", None)
        if drill:
            env["HUB_CRASH_DRILL"] = drill
        self.log = (data_dir / "server.log").open("a")
        self.process = subprocess.Popen(
            [*HUB, "run", "--port", str(self.port)], cwd=ROOT, env=env, stdout=self.log, stderr=self.log
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        pytest.fail("the server did not start")

    def post(self, query: str, variables: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
            timeout=SAFETY_NET,
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=SAFETY_NET)
        self.log.close()


def _mutation(
    server: Server,
    settings: Settings,
    role: CallerRole,
    purpose: str,
    name: str,
    selection: str,
    arguments: dict[str, Any],
) -> dict[str, Any]:
    type_name = name[0].upper() + name[1:]
    body = server.post(
        f"mutation($i: {type_name}Input!) {{ {name}(input: $i) {{ {selection} userErrors {{ code message field }} }} }}",
        {"i": arguments},
        caller_headers(settings, role, purpose),
    )
    assert "errors" not in body, body
    answer: dict[str, Any] = body["data"][name]
    assert answer["userErrors"] == [], answer
    return answer


@pytest.fixture(scope="module")
async def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An estate with one foreigner whose permit is valid and who is not enrolled yet."""
    data_dir = tmp_path_factory.mktemp("crash-template")
    settings = Settings.for_directory(data_dir, fixed_today=AS_OF)
    await seed_estate(settings, persons=60, seed=9)
    server = Server(data_dir)
    try:
        authority = (CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
        applied = _mutation(
            server,
            settings,
            *authority,
            "applyForWorkPermit",
            "workPermit { id number }",
            {
                "applicant": {
                    "name": {"surname": "Crash", "givenNames": "Test"},
                    "sex": "MALE",
                    "birthDate": "1985-05-05",
                    "nationality": "DEU",
                    "passportNumber": PASSPORT["number"],
                },
                "employerCreditCode": CREDIT_CODE,
                "category": "B",
                "position": "Engineer",
                "workDistrict": "110105",
                "validTo": "2027-06-01",
            },
        )
        permit = applied["workPermit"]
        _mutation(
            server,
            settings,
            *authority,
            "issueNotificationLetter",
            "workPermit { id }",
            {"workPermitId": permit["id"]},
        )
        letter = server.post(
            "query($n: String!) { workPermit(number: $n) { notificationLetterNumber } }",
            {"n": permit["number"]},
            caller_headers(settings, *authority),
        )["data"]["workPermit"]["notificationLetterNumber"]
        visa = _mutation(
            server,
            settings,
            CallerRole.VISA_AUTHORITY,
            "visa-application",
            "issueZVisa",
            "visa { number }",
            {"passport": PASSPORT, "notificationLetterNumber": letter, "validTo": "2026-09-01"},
        )
        _mutation(
            server,
            settings,
            CallerRole.EXIT_ENTRY,
            "entry-control",
            "recordEntry",
            "entry { port }",
            {
                "passport": PASSPORT,
                "visaNumber": visa["visa"]["number"],
                "enteredOn": AS_OF.isoformat(),
                "port": "PEK",
            },
        )
        _mutation(
            server,
            settings,
            *authority,
            "activateWorkPermit",
            "workPermit { status }",
            {"workPermitNumber": permit["number"], "enteredOn": AS_OF.isoformat()},
        )
    finally:
        server.stop()
    (data_dir / "enrollment.txt").write_text(f"{permit['number']} {letter}")
    return data_dir


def _traces(data_dir: Path) -> dict[str, int]:
    """Counts of everything enrollment writes, across the agencies and the hub's store."""

    def count(database: str, sql: str) -> int:
        with sqlite3.connect(data_dir / database) as conn:
            return int(conn.execute(sql).fetchone()[0])

    return {
        "AC01": count(
            "social_insurance.sqlite",
            f"""SELECT count(*) FROM "AC01" WHERE "AAE135" = '{PASSPORT["number"]}'""",
        ),
        "AC02": count("social_insurance.sqlite", 'SELECT count(*) FROM "AC02"'),
        "SBK_KXX": count("card_service.sqlite", 'SELECT count(*) FROM "SBK_KXX"'),
        "links": count("hub_store.sqlite", "SELECT count(*) FROM identity_link"),
        "identifiers": count("hub_store.sqlite", "SELECT count(*) FROM person_identifier"),
        "insured": count("hub_store.sqlite", "SELECT count(*) FROM person_index WHERE insured"),
    }


@pytest.mark.parametrize("crash_after", CRASH_POINTS)
def test_a_crash_at_any_step_of_enrollment_leaves_no_trace(
    template: Path, tmp_path: Path, crash_after: int
) -> None:
    data_dir = tmp_path / "estate"
    shutil.copytree(template, data_dir)
    settings = Settings.for_directory(data_dir, fixed_today=AS_OF)
    number, letter = (data_dir / "enrollment.txt").read_text().split()
    before = _traces(data_dir)
    enroll = {
        "workPermitNumber": number,
        "evidence": {"notificationLetterNumber": letter},
        "employerCreditCode": CREDIT_CODE,
        "insuringDistrict": "110105",
        "idempotencyKey": "enroll-once",
    }
    query = "mutation($i: EnrollInInsuranceInput!) { enrollInInsurance(input: $i) { person { socialSecurityNumber } userErrors { code } } }"
    headers = caller_headers(settings, CallerRole.SOCIAL_INSURANCE_AGENCY, "insurance-enrollment")
    doomed = Server(data_dir, drill=f"enrollInInsurance:{crash_after}")
    try:
        with pytest.raises(httpx.TransportError):
            doomed.post(query, {"i": enroll}, headers)
        assert doomed.process.wait(timeout=SAFETY_NET) == -9  # SIGKILL, mid-run
    finally:
        doomed.stop()
    restarted = Server(data_dir)
    try:
        assert _traces(data_dir) == before, "the restart undid every change of the unfinished run"
        retried = restarted.post(query, {"i": enroll}, headers)["data"]["enrollInInsurance"]
        assert retried["userErrors"] == [] and retried["person"]["socialSecurityNumber"]
        after = _traces(data_dir)
        assert (
            after["AC01"] == 1
            and after["AC02"] == before["AC02"] + 5
            and after["SBK_KXX"] == before["SBK_KXX"] + 1
        )
    finally:
        restarted.stop()
