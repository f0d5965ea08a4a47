"""Exports for reporting jobs (GET /exports/<name>, `hub export`): each over real HTTP
through the ASGI app on the seeded estate, read back (CSV with the csv module, Parquet with
pyarrow, NDJSON line by line) and compared with what the graph answers for the same question;
person-level exports only for the work-permit authority and an employer (its own staff),
every person exported audited; aggregates only for REPORTING, rounded as workforceStatistics
rounds; bad parameters refused with 400 naming them; `hub export` against a real uvicorn."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.types import Message

from app import create_app
from domain.records import CallerRole
from edge.exports import AuditCut
from settings import Settings, sqlite_url
from tests.clock import SAFETY_NET
from tests.conftest import AS_OF, Estate, caller_headers, graphql, person_id_of, serve
from tests.servers import uvicorn_serving
from tests.test_qr import audit_records

HUB = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
ROOT = Path(__file__).resolve().parent.parent
WITHIN_DAYS = 365
# Small batches, so that every export here reads, audits and writes many of them.
BATCH_ROWS = 7
EXPIRING = """query($days: Int!, $after: String) {
  expiringWorkPermits(withinDays: $days, first: 100, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { number validTo category workDistrict employer { creditCode name }
                   holder { id name { surname givenNames } nationality } } }
  }
}"""
STATISTICS = """query($groupBy: [StatisticsDimension!]!, $filter: PersonFilter) {
  workforceStatistics(groupBy: $groupBy, filter: $filter) { keys { dimension value } count }
}"""
AUTHORITY = (CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")


@pytest.fixture(scope="module")
def settings(estate: Estate) -> Settings:
    return replace(estate.settings, export_batch_rows=BATCH_ROWS)


@pytest.fixture(scope="module")
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The hub under its real policy; every request brings its own token."""
    async with serve(settings) as http:
        yield http


def _rows(response: httpx.Response, file_format: str) -> list[dict[str, Any]]:
    """The export's rows, read back from its format; every value as text (None when missing)."""
    assert response.status_code == 200, response.text
    if file_format == "parquet":
        rows = pq.read_table(io.BytesIO(response.content)).to_pylist()
        return [{k: None if v is None else str(v) for k, v in row.items()} for row in rows]
    if file_format == "ndjson":
        rows = [json.loads(line) for line in response.text.splitlines()]
        return [{k: None if v is None else str(v) for k, v in row.items()} for row in rows]
    return [{k: v or None for k, v in row.items()} for row in csv.DictReader(io.StringIO(response.text))]


async def _expiring_in_graph(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[list[dict[str, Any]], int]:
    """expiringWorkPermits, every page, as the export's rows, and its totalCount."""
    rows: list[dict[str, Any]] = []
    after = None
    while True:
        body = await graphql(http, EXPIRING, {"days": WITHIN_DAYS, "after": after}, headers)
        assert "errors" not in body, body
        page = body["data"]["expiringWorkPermits"]
        for edge in page["edges"]:
            permit = edge["node"]
            employer = permit["employer"] or {}
            holder = permit["holder"] or {"name": {}}
            rows.append(
                {
                    "permitNumber": permit["number"],
                    "validTo": permit["validTo"],
                    "category": permit["category"],
                    "workDistrict": permit["workDistrict"],
                    "employerCreditCode": employer.get("creditCode"),
                    "employerName": employer.get("name"),
                    "personId": holder.get("id"),
                    "surname": holder["name"].get("surname"),
                    "givenNames": holder["name"].get("givenNames"),
                    "nationality": holder.get("nationality"),
                }
            )
        if not page["pageInfo"]["hasNextPage"]:
            return rows, page["totalCount"]
        after = page["pageInfo"]["endCursor"]


def _by_number(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows by permit number (the export is in period-key order, the graph by end date)."""
    return {row["permitNumber"]: row for row in rows}


async def _export(
    http: httpx.AsyncClient, name: str, headers: dict[str, str], **params: str
) -> httpx.Response:
    return await http.get(f"/exports/{name}", params=params, headers=headers)


# --- person-level: expiring permits with names ------------------------------------------------


@pytest.mark.parametrize("file_format", ["csv", "parquet", "ndjson"])
async def test_expiring_permits_are_what_the_graph_lists_and_each_person_is_audited(
    http: httpx.AsyncClient, settings: Settings, file_format: str
) -> None:
    headers = caller_headers(settings, *AUTHORITY)
    expected, total = await _expiring_in_graph(http, headers)
    assert len(expected) > 3 * BATCH_ROWS, "the estate has permits expiring over many batches"
    response = await _export(
        http, "expiring-permits", headers, format=file_format, withinDays=str(WITHIN_DAYS)
    )
    rows = _rows(response, file_format)
    assert len(rows) == len(expected)
    assert _by_number(rows) == _by_number(expected)
    assert response.headers["x-export-rows"] == str(total)
    assert response.headers["content-disposition"] == (
        f'attachment; filename="expiring-permits-{AS_OF.isoformat()}.{file_format}"'
    )
    assert response.headers["cache-control"] == "no-store"
    records = await audit_records(settings.audit_url, response.headers["x-request-id"])
    exported = {person_id_of(settings, row["personId"]) for row in expected if row["personId"]}
    assert {r["person_id"] for r in records} == exported
    assert len(records) == len(exported), "one record per person exported"
    assert all(
        r["role"] == "WORK_PERMIT_AUTHORITY" and r["purpose"] == "permit-administration" for r in records
    )
    assert all("Person.name" in json.loads(r["fields"]) for r in records)


async def test_an_employer_exports_its_own_staff_only(http: httpx.AsyncClient, settings: Settings) -> None:
    everyone, _total = await _expiring_in_graph(http, caller_headers(settings, *AUTHORITY))
    employers = Counter(row["employerCreditCode"] for row in everyone if row["employerCreditCode"])
    (credit_code, staff), *_others = employers.most_common(1)
    assert staff < len(everyone), "other employers' staff are in the estate too"
    headers = caller_headers(settings, CallerRole.EMPLOYER, "employment", employer=credit_code)
    as_employer, total = await _expiring_in_graph(http, headers)
    response = await _export(http, "expiring-permits", headers, withinDays=str(WITHIN_DAYS))
    rows = _rows(response, "csv")
    assert len(rows) == len(as_employer)
    assert _by_number(rows) == _by_number(as_employer)
    assert _by_number(rows) == _by_number(
        [row for row in everyone if row["employerCreditCode"] == credit_code]
    )
    assert response.headers["x-export-rows"] == str(total)
    records = await audit_records(settings.audit_url, response.headers["x-request-id"])
    assert {r["person_id"] for r in records} == {person_id_of(settings, row["personId"]) for row in rows}


@pytest.mark.parametrize("name", ["expiring-permits-by-week", "workforce"])
async def test_reporting_exports_no_named_person_and_agencies_no_aggregate(
    http: httpx.AsyncClient, settings: Settings, name: str
) -> None:
    reporting = caller_headers(settings, CallerRole.REPORTING)
    refused = await _export(http, "expiring-permits", reporting, withinDays="30")
    assert refused.status_code == 403
    assert refused.json()["errors"][0] == {
        "message": "REPORTING may not export expiring-permits: it shows named persons.",
        "extensions": {"code": "FORBIDDEN"},
    }
    authority = await _export(http, name, caller_headers(settings, *AUTHORITY), withinDays="30")
    assert authority.status_code == 403
    assert authority.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    cardholder = caller_headers(settings, CallerRole.CARDHOLDER, person_id=1)
    assert (await _export(http, name, cardholder, withinDays="30")).status_code == 403
    assert (await http.get(f"/exports/{name}")).status_code == 401


def _own_trail(settings: Settings, directory: Path) -> Settings:
    """The settings with an audit trail (and witness) of their own, for a test to break."""
    return replace(
        settings,
        audit_url=sqlite_url(directory / "audit.sqlite"),
        audit_witness=str(directory / "audit-witness.jsonl"),
    )


async def _break(trail: Settings) -> None:
    engine = create_async_engine(trail.audit_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE audit_record"))
    finally:
        await engine.dispose()


async def test_an_export_the_trail_cannot_record_returns_no_row(
    http: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    expected, _total = await _expiring_in_graph(http, caller_headers(settings, *AUTHORITY))
    trail = _own_trail(settings, tmp_path)
    async with serve(trail) as broken:
        await _break(trail)
        response = await _export(
            broken, "expiring-permits", caller_headers(trail, *AUTHORITY), withinDays="365"
        )
        assert response.status_code == 503
        assert response.json()["errors"][0]["extensions"] == {"code": "AUDIT_UNAVAILABLE"}
        assert not any(row["permitNumber"] in response.text for row in expected)
        # An aggregate names no one: it needs no record and still answers.
        reporting = caller_headers(trail, CallerRole.REPORTING)
        assert (await _export(broken, "workforce", reporting, groupBy="NATIONALITY")).status_code == 200


async def test_a_trail_failing_mid_stream_cuts_the_file_before_any_unrecorded_row(
    settings: Settings, tmp_path: Path
) -> None:
    """Driven through the ASGI app itself, so that the trail breaks exactly once the first
    batch has been sent: the next batch is never sent, and the file never completed."""
    trail = _own_trail(settings, tmp_path)
    app = create_app(trail)
    token = caller_headers(trail, *AUTHORITY)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/exports/expiring-permits",
        "raw_path": b"/exports/expiring-permits",
        "root_path": "",
        "query_string": f"withinDays={WITHIN_DAYS}".encode(),
        "headers": [(b"host", b"hub"), *((k.lower().encode(), v.encode()) for k, v in token.items())],
        "client": ("127.0.0.1", 50000),
        "server": ("hub", 80),
    }
    started: dict[str, Any] = {}
    chunks: list[bytes] = []
    recorded: set[int] = set()
    finished = asyncio.Event()

    async def receive() -> Message:
        await finished.wait()  # connected until the test ends
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
            return
        chunks.append(message.get("body", b""))
        assert message.get("more_body", False), "the file was completed"
        if len(chunks) == 2:  # the header row, then the first batch: recorded before it was sent
            request_id = dict(started["headers"])[b"x-request-id"].decode()
            recorded.update(r["person_id"] for r in await audit_records(trail.audit_url, request_id))
            await _break(trail)

    async with app.router.lifespan_context(app):
        with pytest.raises(AuditCut):
            await app(scope, receive, send)
    finished.set()
    assert started["status"] == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert 0 < len(rows) <= BATCH_ROWS, "the first batch, and nothing after it"
    assert {person_id_of(trail, row["personId"]) for row in rows} == recorded


# --- aggregates: workforce statistics and expiring permits by week ---------------------------------


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
async def test_workforce_is_what_workforce_statistics_shows(
    http: httpx.AsyncClient, settings: Settings, file_format: str
) -> None:
    headers = caller_headers(settings, CallerRole.REPORTING)
    questions: list[tuple[list[str], dict[str, str | bool]]] = [
        (["NATIONALITY", "INSURED"], {}),
        (["TALENT_CATEGORY", "WORK_DISTRICT"], {"permitStatus": "VALID"}),
        ([], {"insured": True}),
    ]
    for group_by, filters in questions:
        body = await graphql(http, STATISTICS, {"groupBy": group_by, "filter": filters or None}, headers)
        expected = [
            {**{_column(k["dimension"]): k["value"] for k in row["keys"]}, "count": str(row["count"])}
            for row in body["data"]["workforceStatistics"]
        ]
        params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in filters.items()}
        response = await _export(
            http, "workforce", headers, format=file_format, groupBy=",".join(group_by), **params
        )
        assert _rows(response, file_format) == expected
        assert expected, "the question has an answer"
        assert await audit_records(settings.audit_url, response.headers["x-request-id"]) == []


def _column(dimension: str) -> str:
    first, *rest = dimension.lower().split("_")
    return first + "".join(word.title() for word in rest)


async def test_expiring_by_week_rounds_every_cell_and_lists_no_small_count(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    """Against the true counts (the persons the graph lists as holders, by ISO week and
    category): every shown count is a multiple of 5 within 4 of the truth, a cell of 5 or more
    is never left out, and cells of 1 to 4 persons exist but none is shown exactly."""
    listed, _total = await _expiring_in_graph(http, caller_headers(settings, *AUTHORITY))
    truth: Counter[tuple[str, str]] = Counter()
    for row in listed:
        if row["personId"] is not None:
            year, week, _day = date.fromisoformat(row["validTo"]).isocalendar()
            truth[(f"{year}-W{week:02d}", row["category"])] += 1
    response = await _export(
        http,
        "expiring-permits-by-week",
        caller_headers(settings, CallerRole.REPORTING),
        withinDays=str(WITHIN_DAYS),
        by="TALENT_CATEGORY",
    )
    rows = _rows(response, "csv")
    shown = {(r["week"], r["talentCategory"]): int(r["count"]) for r in rows}
    assert len(shown) == len(rows), "one row per week and category"
    assert all(count % 5 == 0 and count > 0 for count in shown.values())
    assert all(abs(shown.get(cell, 0) - count) < 5 for cell, count in truth.items())
    assert set(shown) <= set(truth), "no cell without persons"
    assert {cell for cell, count in truth.items() if count >= 5} <= set(shown)
    assert any(1 <= count <= 4 for count in truth.values()), "the estate has small cells to protect"
    for row in rows:
        starts = date.fromisoformat(row["weekStarts"])
        assert (
            starts.weekday() == 0
            and f"{starts.isocalendar()[0]}-W{starts.isocalendar()[1]:02d}" == row["week"]
        )


# --- clear refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "status", "message"),
    [
        ("expiring-permits", {}, 400, "withinDays: is required"),
        ("expiring-permits", {"withinDays": "soon"}, 400, "withinDays: must be a whole number"),
        ("expiring-permits", {"withinDays": "366"}, 400, "withinDays: must be from 1 to 365"),
        (
            "expiring-permits",
            {"withinDays": "30", "format": "xlsx"},
            400,
            "format: must be one of csv, ndjson, parquet",
        ),
        (
            "expiring-permits",
            {"withinDays": "30", "employer": "x"},
            400,
            "employer: is not a parameter of this export (it takes withinDays)",
        ),
        (
            "expiring-permits-by-week",
            {"withinDays": "30", "by": "PERMIT_STATUS"},
            400,
            "by: must be one of NATIONALITY, TALENT_CATEGORY, WORK_DISTRICT, EMPLOYER, INSURED",
        ),
        ("workforce", {"groupBy": "NATIONALITY,NATIONALITY"}, 400, "groupBy: names a value twice"),
        ("workforce", {"insured": "yes"}, 400, "insured: must be true or false"),
        (
            "workforce",
            {"nationality": "GREECE"},
            400,
            "filter.nationality: must be an ISO 3166-1 alpha-3 code",
        ),
        (
            "payroll",
            {},
            404,
            "name: there is no export 'payroll'; there are expiring-permits, expiring-permits-by-week, workforce.",
        ),
    ],
)
async def test_bad_parameters_are_refused_naming_the_parameter(
    http: httpx.AsyncClient, settings: Settings, name: str, params: dict[str, str], status: int, message: str
) -> None:
    role = AUTHORITY if name == "expiring-permits" else (CallerRole.REPORTING, None)
    response = await _export(http, name, caller_headers(settings, *role), **params)
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["message"] == message


async def test_a_parameter_given_twice_is_refused(http: httpx.AsyncClient, settings: Settings) -> None:
    response = await http.get(
        "/exports/workforce?groupBy=NATIONALITY&groupBy=INSURED",
        headers=caller_headers(settings, CallerRole.REPORTING),
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "groupBy: is given more than once"


# --- hub export, against a real server --------------------------------------------------------------


async def _hub_export(tmp_path: Path, token: str, *args: str) -> tuple[int, str]:
    env = {**os.environ, "HUB_TOKEN": token, "HUB_DATA_DIR": str(tmp_path / "cli-data")}
    process = await asyncio.create_subprocess_exec(
        *HUB,
        "export",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(), SAFETY_NET)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_hub_export_downloads_to_a_file_with_progress(
    http: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    token = caller_headers(settings, *AUTHORITY)["Authorization"].removeprefix("Bearer ")
    reporting = caller_headers(settings, CallerRole.REPORTING)["Authorization"].removeprefix("Bearer ")
    expected, _total = await _expiring_in_graph(http, caller_headers(settings, *AUTHORITY))
    output = tmp_path / "expiring.parquet"
    async with uvicorn_serving(create_app(settings)) as address:
        code, err = await _hub_export(
            tmp_path,
            token,
            "expiring-permits",
            "--url", f"http://{address}",
            "--purpose", "permit-administration",
            "--format", "csv",
            "--param", f"withinDays={WITHIN_DAYS}",
            "--output", str(tmp_path / "expiring.csv"),
        )  # fmt: skip
        assert code == 0, err
        assert f"{len(expected)}/{len(expected)}" in err, "the progress bar counted every row"
        assert f"expiring.csv: {len(expected)} rows" in err
        with (tmp_path / "expiring.csv").open(newline="") as written:
            written_rows = [{k: v or None for k, v in row.items()} for row in csv.DictReader(written)]
            assert _by_number(written_rows) == _by_number(expected)

        code, err = await _hub_export(
            tmp_path,
            token,
            "expiring-permits",
            "--url", f"http://{address}",
            "--purpose", "permit-administration",
            "--format", "parquet",
            "--param", f"withinDays={WITHIN_DAYS}",
            "--output", str(output),
        )  # fmt: skip
        assert code == 0, err
        assert sorted(r["permitNumber"] for r in pq.read_table(output).to_pylist()) == sorted(
            r["permitNumber"] for r in expected
        )

        refused = tmp_path / "refused.csv"
        code, err = await _hub_export(
            tmp_path,
            reporting,
            "expiring-permits",
            "--url", f"http://{address}",
            "--param", "withinDays=30",
            "--output", str(refused),
        )  # fmt: skip
        assert code == 1
        assert (
            "the hub refused (403): REPORTING may not export expiring-permits: it shows named persons." in err
        )
        assert not refused.exists() and not refused.with_name("refused.csv.part").exists()
