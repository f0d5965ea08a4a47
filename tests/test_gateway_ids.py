"""A gateway's request ids (tracing/incoming.py): a well-formed `X-Request-Id` is the request's
id and a valid W3C `traceparent` its trace, in the answer, the JSON log line and the audit
record; anything else is ignored. The audit record's `trace_id` is chained when present, and a
trail written before it existed gets the column, still verifies, and goes on."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from audit.chain import AuditEntry
from domain.records import CallerRole
from operations.logs import JsonLines
from tests.conftest import Estate
from tests.databases import PostgresDatabases, execute
from tests.test_audit import AuditDatabases, audit_key, hub_audit_verify, records_of
from tracing.incoming import request_id_of, trace_id_of

ON_SQLITE = pytest.mark.parametrize("estate", ["sqlite"], indirect=True)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
GATEWAY_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
READ = "{ persons(first: 1) { edges { node { id name { full } } } } }"


async def _read(http: httpx.AsyncClient, estate: Estate, extra: dict[str, str]) -> httpx.Response:
    headers = {**estate.headers(CallerRole.EXIT_ENTRY, "entry-control"), **extra}
    response = await http.post("/graphql", json={"query": READ}, headers=headers)
    assert response.status_code == 200, response.text
    return response


def _log_line(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, object]:
    [line] = [
        r for r in caplog.records if r.name == "hub.request" and getattr(r, "request_id", None) == request_id
    ]
    parsed: dict[str, object] = json.loads(JsonLines().format(line))
    return parsed


@ON_SQLITE
async def test_a_gateways_request_id_and_trace_are_kept_in_the_answer_the_log_and_the_audit(
    policy_client: httpx.AsyncClient, estate: Estate, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = await _read(
            policy_client, estate, {"X-Request-Id": GATEWAY_ID, "traceparent": TRACEPARENT}
        )
    assert response.headers["x-request-id"] == GATEWAY_ID
    line = _log_line(caplog, GATEWAY_ID)
    assert line["trace_id"] == TRACE
    [record] = await records_of(estate.settings.audit_url, GATEWAY_ID)
    assert record["trace_id"] == TRACE
    assert record["role"] == "EXIT_ENTRY"


@ON_SQLITE
@pytest.mark.parametrize(
    ("request_id", "traceparent"),
    [
        (f"{GATEWAY_ID}0", f"00-{'0' * 32}-00f067aa0ba902b7-01"),  # too long; an all-zero trace id
        ("E12345678", f"ff-{TRACE}-00f067aa0ba902b7-01"),  # a passport number; version ff
        ("110000202331008918", f"00-{TRACE.upper()}-00f067aa0ba902b7-01"),  # a permit number; upper case
        ("gw-7f3a9c", "00-short-00f067aa0ba902b7-01"),  # not a UUID
    ],
)
async def test_ids_that_are_not_well_formed_are_ignored(
    policy_client: httpx.AsyncClient,
    estate: Estate,
    caplog: pytest.LogCaptureFixture,
    request_id: str,
    traceparent: str,
) -> None:
    with caplog.at_level(logging.INFO):
        response = await _read(
            policy_client, estate, {"X-Request-Id": request_id, "traceparent": traceparent}
        )
    own = response.headers["x-request-id"]
    assert own != request_id and len(own) == 32 and int(own, 16) >= 0  # the hub's own
    assert "trace_id" not in _log_line(caplog, own)
    [record] = await records_of(estate.settings.audit_url, own)
    assert record["trace_id"] is None


@pytest.mark.parametrize(
    ("value", "adopted"),
    [
        (GATEWAY_ID, GATEWAY_ID),
        (f"  {GATEWAY_ID.upper()}  ", GATEWAY_ID),
        (GATEWAY_ID.replace("-", ""), None),
        ("Kowalski-Lukasz", None),
        ("", None),
        (None, None),
    ],
)
def test_which_request_ids_are_adopted(value: str | None, adopted: str | None) -> None:
    assert request_id_of(value) == adopted


def test_which_traceparents_give_a_trace() -> None:
    assert trace_id_of(TRACEPARENT) == TRACE
    assert trace_id_of(f"00-{TRACE}-{'0' * 16}-01") is None  # an all-zero parent id
    assert trace_id_of(f"00-{TRACE}-00f067aa0ba902b7-01-extra") is None
    assert trace_id_of(None) is None


def _entry(request_id: str, trace_id: str | None) -> AuditEntry:
    return AuditEntry(
        at=datetime.now(UTC),
        request_id=request_id,
        client="test-client",
        role="EXIT_ENTRY",
        purpose="entry-control",
        case_reference=None,
        person_id=1,
        fields=("Person.name.full",),
        trace_id=trace_id,
    )


@pytest.fixture(scope="module")
async def trails(estate: Estate, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AuditDatabases]:
    """Fresh audit databases on the estate's backend, as tests/test_audit.py makes them."""
    databases = AuditDatabases(
        estate, tmp_path_factory.mktemp(f"trails-{estate.backend}"), PostgresDatabases([])
    )
    try:
        yield databases
    finally:
        await databases.postgres.drop()


async def test_a_trail_from_before_trace_ids_opens_verifies_and_chains_the_new_ones(
    estate: Estate, trails: AuditDatabases
) -> None:
    place = await trails.place()
    key = audit_key(estate)
    log = place.log(key)
    await log.create_tables()
    await log.append([_entry("old-1", None), _entry("old-2", None)])
    await log.close()
    # As a hub before this change left it: no trace_id column at all.
    await execute(place.url, "ALTER TABLE audit_record DROP COLUMN trace_id")
    log = place.log(key)
    await log.create_tables()  # what every start and `hub audit verify` do first
    assert await log.verify() == []
    await log.append([_entry("new-1", TRACE)])
    assert await log.verify() == []
    await log.close()
    # The real command, in its own process, on the old records and the new one.
    verified = hub_audit_verify(estate.settings.data_dir, place)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("audit trail intact: 3 records, sealed by 2 signed checkpoints")
    [new] = await records_of(place.url, "new-1")
    assert new["trace_id"] == TRACE
    assert [r["trace_id"] for r in await records_of(place.url, "old-1")] == [None]
    # The trace id is inside the chain: edited, the record no longer matches its hash.
    await execute(place.url, f"UPDATE audit_record SET trace_id = '{'0' * 31}1' WHERE request_id = 'new-1'")
    log = place.log(key)
    try:
        assert await log.verify() == [
            f"record {new['seq']} was edited: its contents no longer match its hash"
        ]
    finally:
        await log.close()
