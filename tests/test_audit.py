"""The audit trail: one record per person shown, made durable before the response leaves,
readable by the person (and the data-protection officer) by role, never by client, and
checked by `hub audit verify`, which names the first tampered record and holds the trail
against its witness, where every signed checkpoint is copied.

Tampering happens only on copies of a trail (and of its witness) written for this module, never
on the estate's own trail: the other tests keep writing to that one, and it must still verify
at the end."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Table, delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

import cli
from audit.chain import AuditEntry, Checkpoint, link_hash, seal
from audit.log import AUDIT_CHECKPOINT, AUDIT_KEY, AUDIT_RECORD, AuditLog, AuditUnavailable, entry_of
from audit.witness import AUDIT_WITNESS, FileWitness, open_witness
from domain.records import CallerRole
from keys.files import load_or_create_key
from settings import Settings, sqlite_url
from tests.clock import SAFETY_NET
from tests.conftest import AS_OF, Estate, person_id_of, serve
from tests.databases import POSTGRES_ADMIN_DSN, POSTGRES_URL_BASE, PostgresDatabases

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]

READ_VISAS = "query($id: ID!) { person(lookup: {id: $id}) { name { full } visas { number validTo } } }"
TRAIL = "accessLog(first: 100) { edges { node { at role purpose fields } } }"
MY_TRAIL = f"{{ me {{ {TRAIL} }} }}"
THEIR_TRAIL = f"query($id: ID!) {{ person(lookup: {{id: $id}}) {{ {TRAIL} }} }}"
STATISTICS = "{ workforceStatistics(groupBy: [NATIONALITY]) { keys { value } count suppressed } }"

Row = dict[str, Any]


@dataclass(frozen=True)
class Someone:
    id: str  # the global id
    key: int  # the person id the audit trail records
    full_name: str
    visas: list[str]


# --- reading the trail and calling the hub ----------------------------------------------


async def fetch(url: str, table: Table, *where: Any) -> list[Row]:
    """Rows of an audit table, through a connection of the test's own."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            order = table.c.seq if table is AUDIT_RECORD else table.c.id
            rows = (await conn.execute(select(table).where(*where).order_by(order))).all()
    finally:
        await engine.dispose()
    return [dict(row._mapping) for row in rows]


async def records_of(url: str, request_id: str) -> list[Row]:
    return await fetch(url, AUDIT_RECORD, AUDIT_RECORD.c.request_id == request_id)


async def post(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], headers: dict[str, str]
) -> tuple[dict[str, Any], str]:
    """A 200 answer's body and the request id the hub gave it."""
    response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body, response.headers["x-request-id"]


def trail(body: dict[str, Any], root: str) -> list[dict[str, Any]]:
    """The access events of a `me` or `person` answer, newest first."""
    assert "errors" not in body, body["errors"]
    return [edge["node"] for edge in body["data"][root]["accessLog"]["edges"]]


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def audit_key(estate: Estate) -> Ed25519PrivateKey:
    return load_or_create_key(estate.settings.data_dir, AUDIT_KEY)


@dataclass(frozen=True)
class Place:
    """Where a trail lives: its database, and its witness (a file path or a database URL)."""

    url: str
    witness: str

    def of(self, settings: Settings) -> Settings:
        return replace(settings, audit_url=self.url, audit_witness=self.witness)

    def log(self, key: Ed25519PrivateKey) -> AuditLog:
        return AuditLog.open(self.url, key, open_witness(self.witness))

    def environment(self, data_dir: Path) -> dict[str, str]:
        return {"HUB_DATA_DIR": str(data_dir), "HUB_AUDIT_URL": self.url, "HUB_AUDIT_WITNESS": self.witness}


async def verify(place: Place, key: Ed25519PrivateKey) -> list[str]:
    log = place.log(key)
    try:
        return await log.verify()
    finally:
        await log.close()


def hub_audit_verify(data_dir: Path, place: Place) -> subprocess.CompletedProcess[str]:
    """`hub audit verify`, the real command in its own process."""
    env = {**os.environ, **place.environment(data_dir)}
    return subprocess.run(
        [*HUB, "audit", "verify"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


# --- fixtures ------------------------------------------------------------------------------


@dataclass
class AuditDatabases:
    """Fresh, empty audit databases on the estate's backend, dropped after the module."""

    estate: Estate
    directory: Path
    postgres: PostgresDatabases

    async def fresh(self) -> str:
        name = f"audit_{uuid.uuid4().hex[:10]}"
        if self.estate.backend == "sqlite":
            return sqlite_url(self.directory / f"{name}.sqlite")
        database = f"hubtest_{name}"
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()
        self.postgres.names.append(database)
        return f"{POSTGRES_URL_BASE}/{database}"

    async def place(self, witness: str = "file") -> Place:
        """A fresh trail with a fresh witness: a file, or a database of the estate's backend."""
        url = await self.fresh()
        if witness == "file":
            return Place(url, str(self.directory / f"witness_{uuid.uuid4().hex[:10]}.jsonl"))
        return Place(url, await self.fresh())


@pytest.fixture(scope="module")
async def audit_databases(
    estate: Estate, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AuditDatabases]:
    directory = tmp_path_factory.mktemp(f"audit-{estate.backend}")
    databases = AuditDatabases(estate, directory, PostgresDatabases([]))
    try:
        yield databases
    finally:
        await databases.postgres.drop()


@pytest.fixture(scope="module")
async def people(estate: Estate, policy_client: httpx.AsyncClient) -> list[Someone]:
    """Persons of the estate as exit-entry sees them, visa holders first."""
    body, _ = await post(
        policy_client,
        "{ persons(first: 100) { edges { node { id name { full } visas { number } } } } }",
        {},
        estate.headers(CallerRole.EXIT_ENTRY, "residence-application"),
    )
    assert "errors" not in body, body["errors"]
    found = [
        Someone(
            node["id"],
            person_id_of(estate.settings, node["id"]),
            node["name"]["full"],
            [visa["number"] for visa in node["visas"]],
        )
        for node in (edge["node"] for edge in body["data"]["persons"]["edges"])
    ]
    found.sort(key=lambda someone: not someone.visas)
    assert len([someone for someone in found if someone.visas]) >= 10
    return found


# --- 1. what a record holds --------------------------------------------------------------


async def test_a_read_records_the_caller_and_the_field_paths_never_the_values(
    estate: Estate, policy_client: httpx.AsyncClient, people: list[Someone]
) -> None:
    someone = people[0]
    headers = {**estate.headers(CallerRole.EXIT_ENTRY, "entry-control"), "X-Case-Reference": "CASE-2026-0042"}
    body, request_id = await post(policy_client, READ_VISAS, {"id": someone.id}, headers)
    assert "errors" not in body, body["errors"]
    assert [visa["number"] for visa in body["data"]["person"]["visas"]] == someone.visas

    [record] = await records_of(estate.settings.audit_url, request_id)
    assert record["person_id"] == someone.key
    assert record["role"] == "EXIT_ENTRY"
    assert record["purpose"] == "entry-control"
    assert record["case_reference"] == "CASE-2026-0042"
    assert record["client"] == "test-exit_entry"
    assert record["restricted_until"] is None
    assert datetime.fromisoformat(record["at"]).tzinfo is not None
    assert orjson.loads(record["fields"]) == [
        "Person.name.full",
        "Person.visas.number",
        "Person.visas.validTo",
    ]
    stored = " ".join(str(value) for value in record.values())
    for value in [*someone.visas, someone.full_name]:
        assert value not in stored


async def test_a_page_of_two_persons_records_two_entries(
    estate: Estate, policy_client: httpx.AsyncClient
) -> None:
    body, request_id = await post(
        policy_client,
        "{ persons(first: 2) { edges { node { id nationality } } } }",
        {},
        estate.headers(CallerRole.EXIT_ENTRY, "entry-control"),
    )
    assert "errors" not in body, body["errors"]
    shown = [person_id_of(estate.settings, edge["node"]["id"]) for edge in body["data"]["persons"]["edges"]]
    records = await records_of(estate.settings.audit_url, request_id)
    assert sorted(record["person_id"] for record in records) == sorted(shown)
    assert len(shown) == 2
    for record in records:
        assert orjson.loads(record["fields"]) == ["Person.id", "Person.nationality"]


async def test_finding_nothing_about_a_named_person_is_recorded_too(
    estate: Estate, policy_client: httpx.AsyncClient, people: list[Someone]
) -> None:
    someone = next((someone for someone in people if not someone.visas), None)
    assert someone is not None, "the estate should hold a person without a visa"
    body, request_id = await post(
        policy_client,
        "query($id: ID!) { person(lookup: {id: $id}) { visas { number } } }",
        {"id": someone.id},
        estate.headers(CallerRole.EXIT_ENTRY, "entry-control"),
    )
    assert body == {"data": {"person": {"visas": []}}}
    [record] = await records_of(estate.settings.audit_url, request_id)
    assert record["person_id"] == someone.key
    assert orjson.loads(record["fields"]) == ["Person.visas"]


async def test_statistics_name_no_person_and_write_no_record(
    estate: Estate, policy_client: httpx.AsyncClient
) -> None:
    before = len(await fetch(estate.settings.audit_url, AUDIT_RECORD))
    body, request_id = await post(policy_client, STATISTICS, {}, estate.headers(CallerRole.REPORTING))
    assert "errors" not in body, body["errors"]
    assert body["data"]["workforceStatistics"]
    assert await records_of(estate.settings.audit_url, request_id) == []
    assert len(await fetch(estate.settings.audit_url, AUDIT_RECORD)) == before


# --- 2. the person's own trail -------------------------------------------------------------


async def test_the_person_reads_their_trail_by_role_and_purpose_never_by_client(
    estate: Estate, policy_client: httpx.AsyncClient, people: list[Someone]
) -> None:
    someone = people[1]
    agency = {**estate.headers(CallerRole.EXIT_ENTRY, "entry-control"), "X-Case-Reference": "CASE-TRAIL-7"}
    _, agency_request = await post(policy_client, READ_VISAS, {"id": someone.id}, agency)
    cardholder = estate.headers(CallerRole.CARDHOLDER, person_id=someone.key)

    response = await policy_client.post("/graphql", json={"query": MY_TRAIL}, headers=cardholder)
    mine = trail(response.json(), "me")
    newest = mine[0]
    assert {k: v for k, v in newest.items() if k != "at"} == {
        "role": "EXIT_ENTRY",
        "purpose": "entry-control",
        "fields": ["Person.name.full", "Person.visas.number", "Person.visas.validTo"],
    }
    assert datetime.fromisoformat(newest["at"]).tzinfo is not None
    # Neither the client, nor the case, nor the request: nothing that names the official.
    for secret in ("test-exit_entry", "CASE-TRAIL-7", agency_request, "client", "subject"):
        assert secret not in response.text

    # The person's own look is in the trail too, next time.
    again, _ = await post(policy_client, MY_TRAIL, {}, cardholder)
    own = trail(again, "me")[0]
    assert own["role"] == "CARDHOLDER"
    assert "Person.accessLog.edges.node.fields" in own["fields"]
    assert trail(again, "me")[1] == newest

    # The data-protection officer sees the same events of the same person.
    dpo = estate.headers(CallerRole.DATA_PROTECTION_OFFICER, "complaint-handling")
    response = await policy_client.post(
        "/graphql", json={"query": THEIR_TRAIL, "variables": {"id": someone.id}}, headers=dpo
    )
    theirs = trail(response.json(), "person")
    assert newest in theirs and own in theirs
    assert "test-exit_entry" not in response.text and "CASE-TRAIL-7" not in response.text


async def test_no_one_else_reads_a_persons_trail(
    estate: Estate, policy_client: httpx.AsyncClient, people: list[Someone]
) -> None:
    someone, other = people[1], people[2]
    cardholder = estate.headers(CallerRole.CARDHOLDER, person_id=someone.key)
    node = f"query($id: ID!) {{ node(id: $id) {{ ... on Person {{ {TRAIL} }} }} }}"
    body, _ = await post(policy_client, node, {"id": other.id}, cardholder)
    assert body["data"] == {"node": None}
    assert codes(body) == ["FORBIDDEN"]
    agency = estate.headers(CallerRole.EXIT_ENTRY, "entry-control")
    body, _ = await post(policy_client, THEIR_TRAIL, {"id": other.id}, agency)
    assert body["data"]["person"]["accessLog"] is None
    assert codes(body) == ["FORBIDDEN"]
    # And the response shape has no place for a client at all.
    body, _ = await post(policy_client, "{ me { accessLog { edges { node { client } } } } }", {}, cardholder)
    assert "Cannot query field 'client'" in body["errors"][0]["message"]


# --- 3. reads restricted for an investigation ---------------------------------------------


def investigated(events: list[dict[str, Any]]) -> list[list[str]]:
    return sorted(event["fields"] for event in events if event["purpose"] == "investigation")


async def test_an_investigation_shows_in_the_persons_trail_only_from_its_date(
    estate: Estate, policy_client: httpx.AsyncClient, people: list[Someone]
) -> None:
    someone = people[2]
    investigation = estate.headers(CallerRole.EXIT_ENTRY, "investigation")
    # One read per date, each told apart by the one field it returns; today is 2026-06-15.
    reads = {"2026-07-01": "number", "2026-06-15": "type", "2026-06-01": "validTo"}
    for until, field in reads.items():
        body, request_id = await post(
            policy_client,
            f"query($id: ID!) {{ person(lookup: {{id: $id}}) {{ visas {{ {field} }} }} }}",
            {"id": someone.id},
            {**investigation, "X-Restricted-Until": until},
        )
        assert "errors" not in body, body["errors"]
        [record] = await records_of(estate.settings.audit_url, request_id)
        assert record["restricted_until"] == date.fromisoformat(until)
    every = [["Person.visas.number"], ["Person.visas.type"], ["Person.visas.validTo"]]

    cardholder = estate.headers(CallerRole.CARDHOLDER, person_id=someone.key)
    mine, _ = await post(policy_client, MY_TRAIL, {}, cardholder)
    assert investigated(trail(mine, "me")) == [["Person.visas.type"], ["Person.visas.validTo"]]

    dpo = estate.headers(CallerRole.DATA_PROTECTION_OFFICER, "complaint-handling")
    theirs, _ = await post(policy_client, THEIR_TRAIL, {"id": someone.id}, dpo)
    assert investigated(trail(theirs, "person")) == every

    # From 2026-07-01 on, by the hub's clock, the person sees that read too.
    assert estate.settings.fixed_today == AS_OF == date(2026, 6, 15)
    async with serve(replace(estate.settings, fixed_today=date(2026, 7, 1))) as later:
        mine, _ = await post(later, MY_TRAIL, {}, cardholder)
    assert investigated(trail(mine, "me")) == every


@pytest.mark.parametrize(
    ("role", "purpose", "until"),
    [
        (CallerRole.EXIT_ENTRY, "entry-control", "2026-07-01"),
        (CallerRole.DATA_PROTECTION_OFFICER, "complaint-handling", "2026-07-01"),
        (CallerRole.EXIT_ENTRY, "investigation", "next week"),
    ],
)
async def test_only_an_investigation_may_restrict_its_record(
    estate: Estate,
    policy_client: httpx.AsyncClient,
    people: list[Someone],
    role: CallerRole,
    purpose: str,
    until: str,
) -> None:
    response = await policy_client.post(
        "/graphql",
        json={"query": READ_VISAS, "variables": {"id": people[0].id}},
        headers={**estate.headers(role, purpose), "X-Restricted-Until": until},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["data"] is None and codes(body) == ["BAD_USER_INPUT"]
    assert await records_of(estate.settings.audit_url, response.headers["x-request-id"]) == []


# --- 4. tampering, caught by `hub audit verify` ------------------------------------------


@dataclass(frozen=True)
class Trail:
    records: list[Row]
    checkpoints: list[Row]
    witness: bytes  # the witness file, as written


async def write_a_trail(estate: Estate, place: Place, people: list[Someone]) -> None:
    """7 records in 6 commits, each sealed: seq 1 | 2 3 | 4 | 5 | 6 | 7."""
    headers = estate.headers(CallerRole.EXIT_ENTRY, "entry-control")
    async with serve(place.of(estate.settings)) as http:
        await post(http, READ_VISAS, {"id": people[3].id}, headers)
        await post(http, "{ persons(first: 2) { edges { node { id } } } }", {}, headers)
        for someone in people[4:8]:
            await post(http, READ_VISAS, {"id": someone.id}, headers)


@pytest.fixture(scope="module")
async def sealed_trail(estate: Estate, audit_databases: AuditDatabases, people: list[Someone]) -> Trail:
    """A trail of 7 records in 6 commits, each sealed and witnessed in a file."""
    place = await audit_databases.place()
    await write_a_trail(estate, place, people)
    sealed = Trail(
        await fetch(place.url, AUDIT_RECORD),
        await fetch(place.url, AUDIT_CHECKPOINT),
        await asyncio.to_thread(Path(place.witness).read_bytes),
    )
    assert [record["seq"] for record in sealed.records] == [1, 2, 3, 4, 5, 6, 7]
    assert [checkpoint["seq"] for checkpoint in sealed.checkpoints] == [1, 3, 4, 5, 6, 7]
    witnessed = [orjson.loads(line) for line in sealed.witness.splitlines()]
    assert [(c["seq"], c["hash"], c["signature"]) for c in witnessed] == [
        (c["seq"], c["hash"], c["signature"]) for c in sealed.checkpoints
    ]
    return sealed


async def copy_of(databases: AuditDatabases, original: Trail) -> Place:
    """A new audit database holding the same records and checkpoints, and a copy of its witness."""
    place = await databases.place()
    log = place.log(audit_key(databases.estate))
    try:
        await log.create_tables()
        async with log.engine.begin() as conn:
            await conn.execute(insert(AUDIT_RECORD), original.records)
            await conn.execute(insert(AUDIT_CHECKPOINT), original.checkpoints)
    finally:
        await log.close()
    await asyncio.to_thread(Path(place.witness).write_bytes, original.witness)
    return place


def forged_after(row: Mapping[str, Any]) -> Row:
    """A well-formed record chained to `row`, as someone who knows the format would write."""
    entry = replace(entry_of(row), request_id=uuid.uuid4().hex, person_id=row["person_id"] + 1)
    digest = link_hash(row["hash"], entry)
    return {
        **row,
        "seq": row["seq"] + 1,
        "request_id": entry.request_id,
        "person_id": entry.person_id,
        "prev_hash": row["hash"],
        "hash": digest,
    }


async def renumber(conn: AsyncConnection, first: int, by: int) -> None:
    """Shift the records from `first` on by `by`, through negative numbers so none collide."""
    seq = AUDIT_RECORD.c.seq
    await conn.execute(update(AUDIT_RECORD).where(seq >= first).values(seq=-(seq + by)))
    await conn.execute(update(AUDIT_RECORD).where(seq < 0).values(seq=-seq))


async def rebuild(conn: AsyncConnection, records: list[Row], first: int, **edit: Any) -> list[Row]:
    """Edit record `first`, then recompute every hash from it on: a chain that holds."""
    rebuilt = [dict(record) for record in records]
    rebuilt[first - 1].update(edit)
    for row in rebuilt[first - 1 :]:
        row["prev_hash"] = rebuilt[row["seq"] - 2]["hash"] if row["seq"] > 1 else records[0]["prev_hash"]
        row["hash"] = link_hash(row["prev_hash"], entry_of(row))
        await conn.execute(
            update(AUDIT_RECORD)
            .where(AUDIT_RECORD.c.seq == row["seq"])
            .values(**edit if row["seq"] == first else {}, prev_hash=row["prev_hash"], hash=row["hash"])
        )
    return rebuilt


async def edit_a_purpose(conn: AsyncConnection, _records: list[Row]) -> None:
    await conn.execute(
        update(AUDIT_RECORD).where(AUDIT_RECORD.c.seq == 3).values(purpose="residence-application")
    )


async def drop_a_field_path_from_the_last(conn: AsyncConnection, records: list[Row]) -> None:
    fields = orjson.loads(records[-1]["fields"])[1:]
    await conn.execute(
        update(AUDIT_RECORD).where(AUDIT_RECORD.c.seq == 7).values(fields=orjson.dumps(fields).decode())
    )


async def delete_a_record(conn: AsyncConnection, _records: list[Row]) -> None:
    await conn.execute(delete(AUDIT_RECORD).where(AUDIT_RECORD.c.seq == 4))


async def delete_a_record_and_renumber(conn: AsyncConnection, _records: list[Row]) -> None:
    await conn.execute(delete(AUDIT_RECORD).where(AUDIT_RECORD.c.seq == 4))
    await renumber(conn, 5, -1)


async def insert_a_record(conn: AsyncConnection, records: list[Row]) -> None:
    await renumber(conn, 4, +1)
    await conn.execute(insert(AUDIT_RECORD).values(forged_after(records[2])))


async def append_a_record(conn: AsyncConnection, records: list[Row]) -> None:
    await conn.execute(insert(AUDIT_RECORD).values(forged_after(records[-1])))


async def swap_two_records(conn: AsyncConnection, records: list[Row]) -> None:
    fourth, fifth = records[3], records[4]
    for seq, contents in ((4, fifth), (5, fourth)):
        values = {name: value for name, value in contents.items() if name != "seq"}
        await conn.execute(update(AUDIT_RECORD).where(AUDIT_RECORD.c.seq == seq).values(values))


async def cut_the_tail(conn: AsyncConnection, _records: list[Row]) -> None:
    # The last two records go; the checkpoints sealing them stay where they are.
    await conn.execute(delete(AUDIT_RECORD).where(AUDIT_RECORD.c.seq >= 6))


async def cut_the_tail_with_its_checkpoints(conn: AsyncConnection, _records: list[Row]) -> None:
    await conn.execute(delete(AUDIT_RECORD).where(AUDIT_RECORD.c.seq >= 6))
    await conn.execute(delete(AUDIT_CHECKPOINT).where(AUDIT_CHECKPOINT.c.seq >= 6))


async def empty_the_trail(conn: AsyncConnection, _records: list[Row]) -> None:
    await conn.execute(delete(AUDIT_RECORD))
    await conn.execute(delete(AUDIT_CHECKPOINT))


async def delete_a_checkpoint(conn: AsyncConnection, _records: list[Row]) -> None:
    await conn.execute(delete(AUDIT_CHECKPOINT).where(AUDIT_CHECKPOINT.c.seq == 4))


async def delete_every_checkpoint(conn: AsyncConnection, _records: list[Row]) -> None:
    await conn.execute(delete(AUDIT_CHECKPOINT))


async def rebuild_after_editing_the_second(conn: AsyncConnection, records: list[Row]) -> None:
    await rebuild(conn, records, 2, purpose="investigation")


async def rebuild_after_editing_the_fifth(conn: AsyncConnection, records: list[Row]) -> None:
    await rebuild(conn, records, 5, case_reference="CASE-REWRITTEN")


async def rebuild_and_delete_its_checkpoints(conn: AsyncConnection, records: list[Row]) -> None:
    await rebuild(conn, records, 5, case_reference="CASE-REWRITTEN")
    await conn.execute(delete(AUDIT_CHECKPOINT).where(AUDIT_CHECKPOINT.c.seq >= 5))


async def rebuild_and_reseal_with_another_key(conn: AsyncConnection, records: list[Row]) -> None:
    rebuilt = await rebuild(conn, records, 5, case_reference="CASE-REWRITTEN")
    forger = Ed25519PrivateKey.generate()
    for row in rebuilt[4:]:
        await conn.execute(
            update(AUDIT_CHECKPOINT)
            .where(AUDIT_CHECKPOINT.c.seq == row["seq"])
            .values(hash=row["hash"], signature=seal(forger, row["seq"], row["hash"]))
        )


UNSEALED = "appended outside the hub, or the checkpoints sealing them were deleted"
REBUILT = "differ from the witness's checkpoints, which the trail no longer holds: the chain was rebuilt"
TAMPERING: list[Any] = [
    pytest.param(edit_a_purpose, ["record 3 was edited: its contents no longer match its hash"], id="edited"),
    pytest.param(
        drop_a_field_path_from_the_last,
        ["record 7 was edited: its contents no longer match its hash"],
        id="edited-last",
    ),
    pytest.param(delete_a_record, ["record 4 is missing (the next is 5): deleted"], id="deleted"),
    pytest.param(
        delete_a_record_and_renumber,
        [
            "record 4 is not chained to record 3: a record before it was deleted and the rest renumbered, "
            "or it was forged",
            "the tail was cut: the witness seals record 7, the trail ends at 6",
        ],
        id="deleted-renumbered",
    ),
    pytest.param(
        insert_a_record,
        ["record 4 was inserted: record 5 is chained to record 3, not to record 4"],
        id="inserted",
    ),
    pytest.param(append_a_record, [f"record 8 is sealed by no checkpoint: {UNSEALED}"], id="appended"),
    pytest.param(
        swap_two_records,
        ["record 4 was reordered: it is chained to record 5, not to record 3"],
        id="reordered",
    ),
    pytest.param(
        cut_the_tail,
        [
            "the tail was cut: a checkpoint seals record 6, the trail ends at 5",
            "the tail was cut: the witness seals record 7, the trail ends at 5",
        ],
        id="cut-tail",
    ),
    # What the trail alone cannot tell: only its witness can.
    pytest.param(
        cut_the_tail_with_its_checkpoints,
        ["the tail was cut: the witness seals record 7, the trail ends at 5"],
        id="cut-tail-and-checkpoints",
    ),
    pytest.param(
        empty_the_trail,
        ["the trail was emptied: the witness seals records up to 7, the trail holds none"],
        id="emptied",
    ),
    pytest.param(
        delete_a_checkpoint,
        ["the checkpoint sealing record 4 was deleted from the trail: the witness holds it"],
        id="deleted-checkpoint",
    ),
    pytest.param(
        delete_every_checkpoint,
        [
            f"records 1..7 are sealed by no checkpoint: {UNSEALED}",
            "the checkpoints sealing records 1, 3..7 were deleted from the trail: the witness holds them",
        ],
        id="deleted-checkpoints",
    ),
    pytest.param(
        rebuild_after_editing_the_second,
        [
            "one of records 2..3 was changed and the chain rebuilt: record 3 differs from its signed checkpoint"
        ],
        id="rebuilt",
    ),
    pytest.param(
        rebuild_after_editing_the_fifth,
        ["record 5 was changed and the chain rebuilt: record 5 differs from its signed checkpoint"],
        id="rebuilt-one",
    ),
    pytest.param(
        rebuild_and_delete_its_checkpoints,
        [f"records 5..7 are sealed by no checkpoint: {UNSEALED}", f"records 5..7 {REBUILT}"],
        id="rebuilt-unsealed",
    ),
    pytest.param(
        rebuild_and_reseal_with_another_key,
        ["checkpoint at record 5 has no valid signature: it was forged", f"records 5..7 {REBUILT}"],
        id="rebuilt-resealed",
    ),
]


async def test_an_untouched_trail_verifies_with_its_witness(
    estate: Estate, audit_databases: AuditDatabases, sealed_trail: Trail
) -> None:
    place = await copy_of(audit_databases, sealed_trail)
    assert await verify(place, audit_key(estate)) == []
    verified = await asyncio.to_thread(hub_audit_verify, estate.settings.data_dir, place)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout == (
        "audit trail intact: 7 records, sealed by 6 signed checkpoints; "
        f"the witness file {place.witness} holds 6 of them\n"
    )


@pytest.mark.parametrize(("tamper", "findings"), TAMPERING)
async def test_verify_names_the_first_tampered_record(
    estate: Estate,
    audit_databases: AuditDatabases,
    sealed_trail: Trail,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tamper: Callable[[AsyncConnection, list[Row]], Awaitable[None]],
    findings: list[str],
) -> None:
    place = await copy_of(audit_databases, sealed_trail)
    engine = create_async_engine(place.url)
    try:
        async with engine.begin() as conn:
            await tamper(conn, sealed_trail.records)
    finally:
        await engine.dispose()
    assert await verify(place, audit_key(estate)) == findings
    # `hub audit verify` itself (in a thread of its own, as it runs its own event loop).
    for name, value in place.environment(estate.settings.data_dir).items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert await asyncio.to_thread(cli.main, ["audit", "verify"]) == 1
    assert capsys.readouterr().out == "".join(f"TAMPERED: {finding}\n" for finding in findings)


def forge_a_line(witness: Path, seq: int, key: Ed25519PrivateKey) -> None:
    """A checkpoint for record `seq`, signed by `key`, appended to the witness."""
    digest = "f" * 64
    line = {
        "seq": seq,
        "hash": digest,
        "signature": seal(key, seq, digest),
        "sealed_at": "2026-06-15T00:00:00+00:00",
    }
    with witness.open("ab") as handle:
        handle.write(orjson.dumps(line) + b"\n")


WITNESS_TAMPERING: list[Any] = [
    pytest.param(
        lambda witness: forge_a_line(witness, 8, Ed25519PrivateKey.generate()),
        ["the witness's line 7 (record 8) has no valid signature: it was forged"],
        id="forged-line",
    ),
    pytest.param(
        lambda witness: witness.write_bytes(witness.read_bytes().replace(b'"seq":5', b'"seq":2')),
        ["the witness's line 4 (record 2) has no valid signature: it was forged"],
        id="edited-line",
    ),
    pytest.param(
        lambda witness: witness.write_bytes(witness.read_bytes() + b"{not json\n"),
        ["the witness's line 7 is no checkpoint: it was damaged or forged"],
        id="damaged-line",
    ),
    pytest.param(
        lambda witness: witness.unlink(),
        ["{witness} is missing, yet the trail holds records up to 7: nothing vouches for them"],
        id="missing",
    ),
    pytest.param(
        lambda witness: witness.write_bytes(b""),
        ["{witness} holds no checkpoint, yet the trail holds records up to 7: nothing vouches for them"],
        id="emptied",
    ),
]


@pytest.mark.parametrize(("tamper", "findings"), WITNESS_TAMPERING)
async def test_verify_reports_a_witness_forged_or_gone(
    estate: Estate,
    audit_databases: AuditDatabases,
    sealed_trail: Trail,
    tamper: Callable[[Path], None],
    findings: list[str],
) -> None:
    place = await copy_of(audit_databases, sealed_trail)
    await asyncio.to_thread(tamper, Path(place.witness))
    named = [finding.format(witness=f"the witness file {place.witness}") for finding in findings]
    assert await verify(place, audit_key(estate)) == named
    tampered = await asyncio.to_thread(hub_audit_verify, estate.settings.data_dir, place)
    assert tampered.returncode == 1
    assert tampered.stdout == "".join(f"TAMPERED: {finding}\n" for finding in named)


async def test_a_new_trail_without_a_witness_yet_verifies(
    estate: Estate, audit_databases: AuditDatabases
) -> None:
    place = await audit_databases.place()
    verified = await asyncio.to_thread(hub_audit_verify, estate.settings.data_dir, place)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout == (
        f"audit trail intact: 0 records, sealed by 0 signed checkpoints; the witness file {place.witness} "
        "holds 0 of them\n"
    )


async def test_a_witness_that_cannot_be_read_leaves_the_trail_unverified(
    estate: Estate, audit_databases: AuditDatabases, sealed_trail: Trail
) -> None:
    place = await copy_of(audit_databases, sealed_trail)
    await asyncio.to_thread(os.remove, place.witness)
    await asyncio.to_thread(os.mkdir, place.witness)  # a directory where the file should be
    unread = await asyncio.to_thread(hub_audit_verify, estate.settings.data_dir, place)
    assert unread.returncode == 2 and unread.stdout == ""
    assert unread.stderr == (
        f"audit trail not verified: the audit database or the witness file {place.witness} could not "
        "be read (IsADirectoryError)\n"
    )


async def test_a_witness_database_holds_every_checkpoint(
    estate: Estate, audit_databases: AuditDatabases, people: list[Someone]
) -> None:
    place = await audit_databases.place(witness="database")
    await write_a_trail(estate, place, people)
    checkpoints = await fetch(place.url, AUDIT_CHECKPOINT)
    witnessed = await fetch(place.witness, AUDIT_WITNESS)
    assert [(c["seq"], c["hash"], c["signature"]) for c in witnessed] == [
        (c["seq"], c["hash"], c["signature"]) for c in checkpoints
    ]
    verified = await asyncio.to_thread(hub_audit_verify, estate.settings.data_dir, place)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("audit trail intact: 7 records, sealed by 6 signed checkpoints; ")
    assert verified.stdout.endswith(" holds 6 of them\n") and "the witness database " in verified.stdout

    engine = create_async_engine(place.url)
    try:
        async with engine.begin() as conn:
            await empty_the_trail(conn, [])
    finally:
        await engine.dispose()
    emptied = await asyncio.to_thread(hub_audit_verify, estate.settings.data_dir, place)
    assert emptied.returncode == 1
    assert (
        emptied.stdout
        == "TAMPERED: the trail was emptied: the witness seals records up to 7, the trail holds none\n"
    )


def test_the_witness_is_not_the_audit_database(tmp_path: Path) -> None:
    audit = sqlite_url(tmp_path / "audit.sqlite")
    with pytest.raises(ValueError, match="HUB_AUDIT_WITNESS"):
        Settings.from_environment(
            {"HUB_DATA_DIR": str(tmp_path), "HUB_AUDIT_URL": audit, "HUB_AUDIT_WITNESS": audit}
        )
    default = Settings.from_environment({"HUB_DATA_DIR": str(tmp_path)})
    assert default.witness_location() == str(tmp_path / "audit-witness.jsonl")
    other = Settings.from_environment(
        {"HUB_DATA_DIR": str(tmp_path), "HUB_AUDIT_WITNESS": "postgresql+asyncpg://w/db"}
    )
    assert other.witness_location() == "postgresql+asyncpg://w/db"


# --- 5. a record that cannot be written withholds the data ----------------------------------


async def test_a_failing_audit_write_withholds_the_data(
    estate: Estate, audit_databases: AuditDatabases, people: list[Someone]
) -> None:
    someone = people[0]
    place = await audit_databases.place()
    agency = estate.headers(CallerRole.EXIT_ENTRY, "entry-control")
    async with serve(place.of(estate.settings)) as http:
        engine = create_async_engine(place.url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("DROP TABLE audit_record"))
            response = await http.post(
                "/graphql", json={"query": READ_VISAS, "variables": {"id": someone.id}}, headers=agency
            )
            assert response.status_code == 200
            body = response.json()
            assert body["data"] is None
            assert codes(body) == ["AUDIT_UNAVAILABLE"]
            for value in [*someone.visas, someone.full_name]:
                assert value not in response.text

            # An aggregate names no one, so it needs no record and still answers.
            stats, _ = await post(http, STATISTICS, {}, estate.headers(CallerRole.REPORTING))
            assert "errors" not in stats and stats["data"]["workforceStatistics"]

            # Once the trail can be written again, so is the data returned.
            async with engine.begin() as conn:
                await conn.run_sync(AUDIT_RECORD.create)
            body, request_id = await post(http, READ_VISAS, {"id": someone.id}, agency)
            assert "errors" not in body, body["errors"]
            assert [visa["number"] for visa in body["data"]["person"]["visas"]] == someone.visas
        finally:
            await engine.dispose()
    assert len(await records_of(place.url, request_id)) == 1
    assert await verify(place, audit_key(estate)) == []


async def test_a_witness_that_cannot_be_written_withholds_the_data(
    estate: Estate, audit_databases: AuditDatabases, people: list[Someone]
) -> None:
    someone = people[0]
    place = await audit_databases.place()
    witness = Path(place.witness)
    agency = estate.headers(CallerRole.EXIT_ENTRY, "entry-control")
    async with serve(place.of(estate.settings)) as http:
        os.mkdir(witness)  # where the witness file should be, nothing can be appended
        response = await http.post(
            "/graphql", json={"query": READ_VISAS, "variables": {"id": someone.id}}, headers=agency
        )
        body = response.json()
        assert body["data"] is None and codes(body) == ["AUDIT_UNAVAILABLE"]
        for value in [*someone.visas, someone.full_name]:
            assert value not in response.text
        unwitnessed = await records_of(place.url, response.headers["x-request-id"])

        os.rmdir(witness)
        body, request_id = await post(http, READ_VISAS, {"id": someone.id}, agency)
        assert "errors" not in body, body["errors"]
        assert [visa["number"] for visa in body["data"]["person"]["visas"]] == someone.visas
    # The refused read's record was committed: it stays, and the next checkpoint seals it.
    assert [record["seq"] for record in unwitnessed] == [1]
    assert [record["seq"] for record in await records_of(place.url, request_id)] == [2]
    assert [
        line["seq"] for line in map(orjson.loads, (await asyncio.to_thread(witness.read_bytes)).splitlines())
    ] == [2]
    assert await verify(place, audit_key(estate)) == []


def append_checkpoints(witness: str, writer: int, count: int) -> None:
    """`count` checkpoints from one process, each its own line (run in a process of its own)."""

    async def append() -> None:
        file = FileWitness(Path(witness))
        for n in range(count):
            await file.record(Checkpoint(writer * count + n + 1, f"{writer:064x}", "s" * 88), "now")

    asyncio.run(append())


async def test_processes_appending_at_once_interleave_whole_lines(tmp_path: Path) -> None:
    witness = str(tmp_path / "witness.jsonl")
    writers, count = 4, 150
    script = f"from tests.test_audit import append_checkpoints as a; import sys; a({witness!r}, int(sys.argv[1]), {count})"
    processes = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(writer), cwd=ROOT)
        for writer in range(writers)
    ]
    assert [await asyncio.wait_for(process.wait(), 120) for process in processes] == [0] * writers
    held = await FileWitness(Path(witness)).read()
    assert held is not None and held.unreadable == []
    assert sorted(checkpoint.seq for _, checkpoint in held.checkpoints) == list(range(1, writers * count + 1))
    assert os.stat(witness).st_mode & 0o777 == 0o600


async def test_one_unwritable_response_does_not_withhold_the_others(
    estate: Estate, audit_databases: AuditDatabases
) -> None:
    log = (await audit_databases.place()).log(audit_key(estate))
    try:
        await log.create_tables()

        def entry(person_id: int) -> AuditEntry:
            return AuditEntry(
                at=datetime.now().astimezone(),
                request_id=uuid.uuid4().hex,
                client="test-batch",
                role="EXIT_ENTRY",
                purpose="entry-control",
                case_reference=None,
                person_id=person_id,
                fields=("person.visas.number",),
            )

        # Three responses in one batch; the middle one's person id fits no integer column.
        results = await asyncio.gather(
            log.append([entry(1)]), log.append([entry(2**70)]), log.append([entry(3)]), return_exceptions=True
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], AuditUnavailable)
        assert (await log.counts())[0] == 2
        assert await log.verify() == []
    finally:
        await log.close()


async def test_a_log_without_a_witness_writes_nothing(
    estate: Estate, audit_databases: AuditDatabases
) -> None:
    log = AuditLog.open(await audit_databases.fresh(), audit_key(estate))
    try:
        await log.create_tables()
        entry = AuditEntry(datetime.now().astimezone(), "r", "c", "EXIT_ENTRY", None, None, 1, ("Person.id",))
        with pytest.raises(AuditUnavailable, match="without a witness"):
            await log.append([entry])
        assert await log.counts() == (0, 0)
    finally:
        await log.close()


# --- 6. batched writes ---------------------------------------------------------------------


async def test_concurrent_reads_are_each_recorded_in_batched_commits(
    estate: Estate, audit_databases: AuditDatabases, people: list[Someone]
) -> None:
    place = await audit_databases.place()
    visa_holders = [someone for someone in people if someone.visas]
    headers = estate.headers(CallerRole.EXIT_ENTRY, "entry-control")
    requests = 50
    async with serve(place.of(estate.settings)) as http:
        answers = await asyncio.gather(
            *(
                post(http, READ_VISAS, {"id": visa_holders[i % len(visa_holders)].id}, headers)
                for i in range(requests)
            )
        )
    for body, _ in answers:
        assert "errors" not in body, body["errors"]
        assert body["data"]["person"]["visas"]
    records = await fetch(place.url, AUDIT_RECORD)
    assert sorted(record["request_id"] for record in records) == sorted(
        request_id for _, request_id in answers
    )
    checkpoints = await fetch(place.url, AUDIT_CHECKPOINT)
    assert 1 <= len(checkpoints) < requests
    assert await verify(place, audit_key(estate)) == []


# --- last: the estate's own trail, written by every test so far, is whole --------------------


async def test_hub_audit_verify_command_on_the_estates_trail(
    estate: Estate, audit_databases: AuditDatabases, sealed_trail: Trail
) -> None:
    own = Place(estate.settings.audit_url, estate.settings.witness_location())
    verified = await asyncio.to_thread(hub_audit_verify, estate.settings.data_dir, own)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("audit trail intact: ")
    assert "Traceback" not in verified.stderr

    place = await copy_of(audit_databases, sealed_trail)
    engine = create_async_engine(place.url)
    try:
        async with engine.begin() as conn:
            await cut_the_tail_with_its_checkpoints(conn, sealed_trail.records)
    finally:
        await engine.dispose()
    tampered = await asyncio.to_thread(hub_audit_verify, estate.settings.data_dir, place)
    assert tampered.returncode == 1
    assert tampered.stdout == "TAMPERED: the tail was cut: the witness seals record 7, the trail ends at 5\n"


async def test_many_processes_append_to_one_chain_and_lose_no_answer(
    estate: Estate, audit_databases: AuditDatabases
) -> None:
    """Four processes at once, each batching its own records: every append is durable, the chain
    is whole, and a verification running meanwhile never sees a half-committed trail."""
    place = await audit_databases.place()
    writers, each = 4, 150
    key = audit_key(estate)
    # A first record, witnessed: on a trail with none, a verification between the first commit
    # and its witness's copy would rightly find records nothing vouches for yet.
    first = place.log(key)
    try:
        await first.create_tables()
        at = datetime.now().astimezone()
        await first.append([AuditEntry(at, "first", "c", "EXIT_ENTRY", None, None, 1, ("Person.id",))])
    finally:
        await first.close()
    command = [sys.executable, "-m", "tests.audit_appender", place.url, place.witness]
    processes = [
        await asyncio.create_subprocess_exec(
            *command,
            str(estate.settings.data_dir),
            f"writer{n}",
            str(each),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for n in range(writers)
    ]
    outputs: list[bytes] = []
    try:
        async with asyncio.timeout(SAFETY_NET):
            for process in processes:
                assert process.stdout is not None
                assert await process.stdout.readline() == b"ready\n"
            for process in processes:  # every writer starts at once
                assert process.stdin is not None
                process.stdin.write(b"go\n")
                await process.stdin.drain()
            exits = [asyncio.ensure_future(process.wait()) for process in processes]
            verifications = []
            while not all(exit.done() for exit in exits):
                verifications.append(await verify(place, key))
            outputs = [await process.stdout.read() for process in processes if process.stdout]
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert outputs == [f"appended {each}\n".encode()] * writers
    assert all(process.returncode == 0 for process in processes)
    assert [finding for findings in verifications for finding in findings] == []
    records = await fetch(place.url, AUDIT_RECORD)
    assert [record["seq"] for record in records] == list(range(1, writers * each + 2))
    assert sorted(record["request_id"] for record in records) == sorted(
        ["first", *(f"writer{n}-{i}" for n in range(writers) for i in range(each))]
    )
    assert await verify(place, key) == []
    checkpoints = await fetch(place.url, AUDIT_CHECKPOINT)
    assert len(checkpoints) < writers * each  # batched: fewer commits than records
