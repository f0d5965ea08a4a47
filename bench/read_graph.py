"""Read-graph benchmark: the hub against a hand-written SQL + JSON floor, in one process.

Usage::

    .venv/bin/python bench/read_graph.py [--persons 10000] [--seconds 10] [--data-dir DIR]

What it does

1. Seeds a synthetic estate of ``--persons`` persons (``estate.generate_estate`` then
   ``identity.linking.link_estate``, as of 2026-06-15) into SQLite files in a temporary
   directory, or into ``--data-dir``, where an estate seeded earlier with the same size is
   reused so that repeated runs start at once.
2. Measures completed requests per second, one request at a time, for two scenarios:

   - ``person``: ``person(lookup: {id: ...})`` with every agency record, the query of
     ``bench/every_agency.graphql``, cycling over persons with records in all five
     agencies;
   - ``page of 50``: ``persons(first: 50, after: ...)`` with the same selection set under
     ``edges { node { ... } }``, cycling over every page.

   The hub is driven through its ASGI app (``httpx.AsyncClient`` over
   ``httpx.ASGITransport`` inside the app's lifespan): real HTTP semantics, no network, so
   the figure includes request parsing, GraphQL execution and response encoding, but no
   sockets. Every answer is checked for ``errors``; one answer per scenario is asked with
   ``X-Hub-Trace: 1`` to read the statements per source from ``extensions.sources``.
3. Beside each scenario it measures the FLOOR: the same data read on the hub's own async
   engines with hand-written SQL (``text()``, one statement per table per request, batched
   by keys as the hub batches: the hub store for persons, passports and identity links, then
   each legacy table by the persons' owner keys), legacy codes mapped to the graph's values
   with the adapters' code tables, and the same JSON shape encoded with the hub's encoder
   (``orjson.dumps``). No HTTP, no GraphQL. Once per scenario the floor's JSON is compared
   with the hub's answer, and any difference is printed as a warning.

How to read the ratio

``ratio = floor req/s ÷ hub req/s``: how many times slower the hub answers than fetching the
same rows and encoding the same JSON by hand. Everything above 1x is the cost of the
serving path (HTTP and ASGI, parsing and validation, per-field resolution, DataLoaders,
per-request objects), not of the data: PERFORMANCE.md in the shared design notes measured
about 30x for strawberry with caches and 0.9x for a planned executor on a similar response.
The floor pays the same async engines (aiosqlite: a thread hop per call) as the hub, so it
is the floor of this stack, not of SQLite. Its SQL is SQLite's, like the estate seeded here.

``--warmup`` seconds (default 2) of each side run before each measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import orjson
from graphql import FieldNode, OperationDefinitionNode, parse, print_ast
from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.applications import Starlette

from access.tokens import TOKEN_KEY, TokenAuthority
from adapters import Sources
from adapters.beijing_pass import mapping as bjt
from adapters.card_service import mapping as sbk
from adapters.exit_entry import mapping as crj
from adapters.social_insurance import mapping as si
from adapters.work_permit import mapping as wp
from app import create_app
from domain.limits import Limits
from domain.records import Agency, CallerRole
from estate import generate_estate
from identity.linking import link_estate
from identity.store import HubStore
from keys.files import load_or_create_key
from opaque.ids import GlobalIds
from resolvers.hub import HubState
from settings import Settings
from tracing import HUB_STORE

AS_OF = date(2026, 6, 15)
SEED = 7
PAGE_SIZE = 50
ENTRIES_FIRST = PAYMENTS_FIRST = 5  # `entries(first: 5)`, `benefitPayments(first: 5)` in the query
PERSONS_CYCLED = 2_000  # at most this many different persons in the `person` scenario
MARKER = "bench-estate.json"
ROOT = Path(__file__).resolve().parent.parent
DESK_QUERY = ROOT / "bench" / "every_agency.graphql"
# The benchmark reads every field of every agency, as the read-graph tests do.
READ_EVERYTHING = ROOT / "tests" / "policies" / "read_everything.toml"
Json = dict[str, Any]


class BenchError(Exception):
    """The hub failed or answered errors under the benchmark."""


# ---------------------------------------------------------------- the estate


def estate_marker(persons: int) -> Json:
    return {"persons": persons, "seed": SEED, "as_of": AS_OF.isoformat()}


async def seed_estate(settings: Settings, persons: int) -> tuple[float, float, str]:
    """Generate the five legacy databases and link them; (generate s, link s, link summary)."""
    sources = Sources.open(settings.source_urls)
    store = HubStore.open(settings.store_url)
    try:
        started = time.perf_counter()
        await generate_estate({s.agency: s.engine for s in sources.all()}, persons, SEED, AS_OF)
        generated = time.perf_counter()
        await store.create_tables()
        report = await link_estate(sources, store)
        linked = time.perf_counter()
    finally:
        await sources.close()
        await store.close()
    return generated - started, linked - generated, report.summary()


def seeded_earlier(data_dir: Path, persons: int) -> bool:
    """Whether `data_dir` holds this benchmark's estate of `persons`; refuses foreign data."""
    marker = data_dir / MARKER
    if marker.exists():
        found = json.loads(marker.read_text())
        if found == estate_marker(persons):
            return True
        raise BenchError(f"{data_dir} holds another estate ({found}); use an empty directory")
    if any(data_dir.glob("*.sqlite")):
        raise BenchError(f"{data_dir} holds databases this benchmark did not seed; use an empty directory")
    data_dir.mkdir(parents=True, exist_ok=True)
    return False


async def prepare_estate(data_dir: Path, persons: int) -> Settings:
    """An estate of `persons` in `data_dir`: reused when seeded earlier, else seeded now."""
    settings = Settings.for_directory(data_dir, fixed_today=AS_OF)
    if seeded_earlier(data_dir, persons):
        print(f"estate: reusing {persons} persons seeded earlier in {data_dir} (no seeding)")
        return settings
    generate_s, link_s, summary = await seed_estate(settings, persons)
    (data_dir / MARKER).write_text(json.dumps(estate_marker(persons)))
    print(
        f"estate: seeded {persons} persons in {generate_s + link_s:.1f} s "
        f"(generate {generate_s:.1f} s, link {link_s:.1f} s): {summary}"
    )
    return settings


# ---------------------------------------------------------------- the queries


@dataclass(frozen=True)
class Queries:
    person: str
    page: str


def load_queries() -> Queries:
    """The every-agency person query, and the same selection set over a page of persons."""
    document = DESK_QUERY.read_text()
    operation = parse(document).definitions[0]
    person_field = (
        operation.selection_set.selections[0] if isinstance(operation, OperationDefinitionNode) else None
    )
    if not isinstance(person_field, FieldNode) or person_field.selection_set is None:
        raise BenchError(f"{DESK_QUERY} does not start with a query selecting `person {{ ... }}`")
    return Queries(person=document, page=page_document(print_ast(person_field.selection_set)))


def page_document(selection: str) -> str:
    """A page of persons with the person query's selection set under each node."""
    return (
        "query AgencyDeskPage($first: Int!, $after: String) {\n"
        "  persons(first: $first, after: $after) {\n"
        f"    edges {{ node {selection} }}\n"
        "    pageInfo { hasNextPage endCursor }\n"
        "  }\n"
        "}\n"
    )


# ---------------------------------------------------------------- the hub, over ASGI


class Hub:
    """POSTs GraphQL documents to the ASGI app; every answer must be 200 without errors."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(self, query: str, variables: Json, trace: bool = False) -> bytes:
        headers = {"content-type": "application/json"}
        if trace:
            headers["x-hub-trace"] = "1"
        payload = orjson.dumps({"query": query, "variables": variables})
        response = await self.client.post("/graphql", content=payload, headers=headers)
        body = response.content
        if response.status_code != 200 or b'"errors"' in body:
            raise BenchError(
                f"the hub answered HTTP {response.status_code} with errors\n"
                f"  variables: {orjson.dumps(variables).decode()}\n"
                f"  answer: {body[:2000].decode(errors='replace')}\n"
                f"  query:\n{query}"
            )
        return body

    async def traced(self, query: str, variables: Json) -> dict[str, int]:
        """Statements per source for one request (in its own task, so that the trace the
        hub sets in its context does not leak into this one)."""
        body = await asyncio.create_task(self.post(query, variables, trace=True))
        sources = orjson.loads(body)["extensions"]["sources"]
        return {name: int(timing["statements"]) for name, timing in sources.items()}


# ---------------------------------------------------------------- the floor: hand-written SQL + JSON

# Legacy codes -> the graph's values, from the adapters' own code tables.
PERMIT_STATUS = {k: v.value for k, v in wp.STATUS.items()}
CATEGORY = {k: v.value for k, v in wp.CATEGORY.items()}
PROCEDURE = {k: v.value for k, v in wp.PROCEDURE.items()}
EVENT_KIND = {k: v.value for k, v in wp.EVENT_KIND.items()}
EVENT_OUTCOME = {k: v.value for k, v in wp.EVENT_OUTCOME.items()}
INSURANCE_TYPE = {k: v.value for k, v in si.INSURANCE_TYPE.items()}
INSURANCE_STATUS = {k: v.value for k, v in si.INSURANCE_STATUS.items()}
CARD_STATUS = {k: v.value for k, v in sbk.CARD_STATUS.items()}
ECARD_STATUS = {k: v.value for k, v in sbk.ELECTRONIC_STATUS.items()}
METHOD = {k: v.value for k, v in sbk.METHOD.items()}
PURPOSE = {k: v.value for k, v in crj.PURPOSE.items()}
CHANNEL = {k: v.value for k, v in crj.CHANNEL.items()}
PAYMENT_STATUS = {k: v.value for k, v in bjt.STATUS.items()}
PAID = "S"


def _in(sql: str, *names: str) -> TextClause:
    """A statement whose named parameters are IN lists."""
    return text(sql).bindparams(*(bindparam(name, expanding=True) for name in names))


def _precedence(column: str, order: Sequence[str]) -> str:
    whens = " ".join(f"WHEN '{value}' THEN {rank}" for rank, value in enumerate(order))
    return f"CASE {column} {whens} ELSE {len(order)} END"


PERSONS_BY_ID = _in(
    "SELECT id, surname, given_names, sex, birth_date, nationality FROM person WHERE id IN :ids", "ids"
)
PERSONS_AFTER = text(
    "SELECT id, surname, given_names, sex, birth_date, nationality FROM person"
    " WHERE id > :after ORDER BY id LIMIT :limit"
)
PASSPORTS = _in(
    "SELECT person_id, number, nationality, valid_from, valid_to, current FROM person_passport"
    " WHERE person_id IN :ids ORDER BY person_id, current DESC, valid_from DESC",
    "ids",
)
LINKS = _in(
    "SELECT person_id, agency, owner_key FROM identity_link"
    " WHERE person_id IN :ids AND confidence = 'CONFIRMED' ORDER BY person_id, id",
    "ids",
)
CURRENT_PERMITS = _in(
    "SELECT SQRID, XKID, XKZH, ZT, RCLB, YXQQ, YXQZ, ZW, GZDD, STZ, TZSBH, TYSHXYDM, DWMC FROM ("
    " SELECT *, row_number() OVER (PARTITION BY SQRID"
    " ORDER BY CASE WHEN ZT IN ('40', '60') THEN 1 ELSE 0 END, YXQQ DESC, XKID DESC) AS rk"
    " FROM WP_XKZ WHERE SQRID IN :keys) WHERE rk = 1",
    "keys",
)
PERMIT_EVENTS = _in(
    "SELECT XKID, YWLX, SQRQ, BJRQ, JG, BZ FROM WP_YWJL WHERE XKID IN :ids ORDER BY XKID, SQRQ, BJRQ", "ids"
)
INSURED = _in("SELECT AAC001, AAC002 FROM AC01 WHERE AAC001 IN :keys ORDER BY AAC001 DESC", "keys")
PARTICIPATIONS = _in(
    "SELECT p.AAC001, p.AAE140, p.AAC008, p.AAE030, p.AAE031, e.AAB004, e.AAB998"
    " FROM AC02 p LEFT JOIN AB01 e ON e.AAB001 = p.AAB001"
    " WHERE p.AAC001 IN :keys AND p.AAE100 = '1' ORDER BY p.AAE030 DESC, p.AAE140",
    "keys",
)
CARDS = _in(
    "SELECT SHBZHM, KH, KZT, FKRQ, YXQ, GZXKXX FROM SBK_KXX WHERE SHBZHM IN :keys"
    f" ORDER BY {_precedence('KZT', sbk.CARD_STATUS_PRECEDENCE)}, FKRQ DESC",
    "keys",
)
# An e-card is filed under its holder's social security number, or under the permit number
# until enrolment (a newcomer's, registered right after entry).
ECARDS = _in(
    "SELECT COALESCE(NULLIF(TRIM(SHBZHM), ''), XKZH) AS OWNER, DZKID, QFZT, KH, QFSJ, RZFS, XKZH"
    " FROM SBK_DZK WHERE COALESCE(NULLIF(TRIM(SHBZHM), ''), XKZH) IN :keys"
    f" ORDER BY {_precedence('QFZT', sbk.ELECTRONIC_STATUS_PRECEDENCE)}, QFSJ DESC",
    "keys",
)
VISAS = _in(
    "SELECT RYBH, QZH, QZZL, QFRQ, YXQZ, TZSBH FROM CRJ_QZ WHERE RYBH IN :keys ORDER BY QFRQ DESC, QZH DESC",
    "keys",
)
ENTRIES = _in(
    "SELECT RYBH, RJRQ, KA, QZH FROM ("
    " SELECT RYBH, RJRQ, KA, QZH, row_number() OVER (PARTITION BY RYBH ORDER BY RJRQ DESC, KA DESC) AS pos"
    " FROM CRJ_RJ WHERE RYBH IN :keys) WHERE pos <= :limit ORDER BY RYBH, pos",
    "keys",
)
RESIDENCE_PERMITS = _in(
    "SELECT RYBH, JLXKZH, JLSY, QFRQ, YXQZ, QFJG, ZT, HYFS FROM CRJ_JLXK WHERE RYBH IN :keys"
    " ORDER BY CASE WHEN ZT = 'Y' AND YXQZ >= :today THEN 0 ELSE 1 END, YXQZ DESC, JLXKZH DESC",
    "keys",
)
PAYMENTS = _in(
    "SELECT KH, DYDM, FFRQ, JE, ZT, DYMC FROM ("
    " SELECT f.KH, f.DYDM, f.FFRQ, f.JE, f.ZT, d.DYMC,"
    " row_number() OVER (PARTITION BY f.KH ORDER BY f.FFRQ DESC, f.DYDM DESC) AS pos"
    " FROM BJT_FF f LEFT JOIN BJT_DY d ON d.DYDM = f.DYDM WHERE f.KH IN :keys)"
    " WHERE pos <= :limit ORDER BY KH, pos",
    "keys",
)


def _text(value: str | None) -> str | None:
    """Trimmed legacy text; empty means absent."""
    if not value:
        return None
    return value.strip() or None


def _compact_day(value: str | int | None) -> str | None:
    """`YYYYMMDD` (text or integer) -> ISO."""
    if value is None:
        return None
    s = str(value).strip()
    return f"{s[:4]}-{s[4:6]}-{s[6:8]}" if s else None


def _slash_day(value: str | None) -> str | None:
    """`YYYY/MM/DD` -> ISO."""
    s = _text(value)
    return s.replace("/", "-") if s else None


def _yuan(fen: int) -> str:
    whole, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{whole}.{cents:02d}"


def _employer(credit_code: str | None, name: str | None) -> Json | None:
    credit = _text(credit_code)
    return {"creditCode": credit, "name": _text(name) or credit} if credit else None


def _empty_page() -> Json:
    return {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


Position = Callable[[Any], tuple[Any, ...]]


def _entry(r: Any) -> Json:
    return {"enteredOn": _slash_day(r[1]), "port": _text(r[2]), "visaNumber": _text(r[3])}


def _payment(r: Any) -> Json:
    status = PAYMENT_STATUS[r[4]]
    return {
        "benefitCode": r[1].strip(),
        "benefitName": _text(r[5]) or r[1].strip(),
        "amount": _yuan(r[3]),
        "paidOn": _text(r[2]) if r[4] == PAID else None,
        "status": status,
    }


@dataclass
class _Owners:
    """Each agency's owner keys of a batch of persons, and whose they are."""

    by_agency: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    # owner keys per person per agency, for per-person merges of paged reads
    of_person: dict[tuple[int, str], list[str]] = field(default_factory=dict)

    def add(self, person: int, agency: str, key: str) -> None:
        persons = self.by_agency.setdefault(agency, {}).setdefault(key, [])
        if person not in persons:
            persons.append(person)
            self.of_person.setdefault((person, agency), []).append(key)

    def keys(self, agency: str) -> list[str]:
        return list(self.by_agency.get(agency, ()))

    def persons(self, agency: str, key: str) -> list[int]:
        return self.by_agency[agency].get(key.strip(), [])

    def count(self, person: int, agency: str) -> int:
        return len(self.of_person.get((person, agency), ()))


class Floor:
    """The agency-desk answers by hand: one statement per table, keyed like the hub's batches."""

    def __init__(self, hub: HubState) -> None:
        self.store = hub.store.engine
        self.work_permits = hub.sources.work_permits.engine
        self.insurance = hub.sources.insurance.engine
        self.cards = hub.sources.cards.engine
        self.exit_entry = hub.sources.exit_entry.engine
        self.beijing_pass = hub.sources.beijing_pass.engine
        self.today = hub.settings.today()
        self.today_compact = self.today.strftime("%Y%m%d")
        self.today_slash = self.today.strftime("%Y/%m/%d")
        self.statements: dict[str, int] = {}
        self.ids = hub.ids
        self.cursors = hub.cursors

    def _page(
        self, kind: str, rows: list[Any], first: int, node: Callable[[Any], Json], position: Position
    ) -> Json:
        """A connection of at most `first` rows (one more was read to tell whether a next page exists)."""
        kept = rows[:first]
        end = self.cursors.encode(kind, position(kept[-1])) if kept else None
        return {
            "edges": [{"node": node(r)} for r in kept],
            "pageInfo": {"hasNextPage": len(rows) > first, "endCursor": end},
        }

    async def _rows(self, conn: AsyncConnection, source: str, sql: TextClause, **params: Any) -> list[Any]:
        self.statements[source] = self.statements.get(source, 0) + 1
        return list((await conn.execute(sql, params)).all())

    # ------------------------------------------------------------ the two answers

    async def person(self, global_id: str) -> bytes:
        person_id = int(self.ids.key_of(global_id, "Person", "id"))
        async with self.store.connect() as conn:
            rows = await self._rows(conn, HUB_STORE, PERSONS_BY_ID, ids=[person_id])
        nodes = await self._nodes(rows)
        return orjson.dumps({"data": {"person": nodes[0] if nodes else None}})

    async def page(self, after: int | None) -> bytes:
        async with self.store.connect() as conn:
            rows = await self._rows(conn, HUB_STORE, PERSONS_AFTER, after=after or 0, limit=PAGE_SIZE + 1)
        kept = rows[:PAGE_SIZE]
        nodes = await self._nodes(kept)
        end = self.cursors.encode("persons", (kept[-1][0],)) if kept else None
        return orjson.dumps(
            {
                "data": {
                    "persons": {
                        "edges": [{"node": n} for n in nodes],
                        "pageInfo": {"hasNextPage": len(rows) > PAGE_SIZE, "endCursor": end},
                    }
                }
            }
        )

    # ------------------------------------------------------------ persons with every agency record

    async def _nodes(self, person_rows: Sequence[Any]) -> list[Json]:
        if not person_rows:
            return []
        ids = [r[0] for r in person_rows]
        index = {person_id: i for i, person_id in enumerate(ids)}
        nodes = [self._person(r) for r in person_rows]
        async with self.store.connect() as conn:
            passports = await self._rows(conn, HUB_STORE, PASSPORTS, ids=ids)
            links = await self._rows(conn, HUB_STORE, LINKS, ids=ids)
        for person_id, number, nationality, valid_from, valid_to, current in passports:
            nodes[index[person_id]]["passports"].append(
                {
                    "number": number,
                    "nationality": nationality,
                    "validFrom": valid_from,
                    "validTo": valid_to,
                    "current": bool(current),
                }
            )
        owners = _Owners()
        for person_id, agency, owner_key in links:
            owners.add(index[person_id], agency, owner_key)
        await asyncio.gather(
            self._work_permits(nodes, owners),
            self._insurance(nodes, owners),
            self._cards(nodes, owners),
            self._exit_entry(nodes, owners),
            self._beijing_pass(nodes, owners),
        )
        return nodes

    def _person(self, r: Any) -> Json:
        person_id, surname, given_names, sex, birth_date, nationality = r
        return {
            "id": self.ids.encode("Person", person_id),
            "name": {
                "surname": surname,
                "givenNames": given_names,
                "full": f"{surname}, {given_names}" if given_names else surname,
            },
            "sex": sex,
            "birthDate": birth_date,
            "nationality": nationality,
            "passports": [],
            "workPermit": None,
            "socialSecurityNumber": None,
            "insuranceParticipations": [],
            "socialSecurityCard": None,
            "electronicCard": None,
            "visas": [],
            "entries": _empty_page(),
            "residencePermit": None,
            "benefitPayments": _empty_page(),
        }

    async def _work_permits(self, nodes: list[Json], owners: _Owners) -> None:
        agency = Agency.WORK_PERMIT_SYSTEM.value
        keys = owners.keys(agency)
        if not keys:
            return
        async with self.work_permits.connect() as conn:
            permits = await self._rows(conn, agency, CURRENT_PERMITS, keys=[int(k) for k in keys])
            by_xkid: dict[int, Json] = {}
            for sqrid, xkid, xkzh, zt, rclb, yxqq, yxqz, zw, gzdd, stz, tzsbh, credit, dwmc in permits:
                status = PERMIT_STATUS[zt]
                if zt == "30" and yxqz and yxqz < self.today_compact:
                    status = "EXPIRED"
                permit = {
                    "number": xkzh.strip(),
                    "status": status,
                    "category": CATEGORY[rclb],
                    "validFrom": _compact_day(yxqq),
                    "validTo": _compact_day(yxqz),
                    "procedure": PROCEDURE[stz],
                    "position": _text(zw),
                    "workDistrict": _text(gzdd),
                    "notificationLetterNumber": _text(tzsbh),
                    "employer": _employer(credit, dwmc),
                    "history": [],
                }
                by_xkid[xkid] = permit
                for person in owners.persons(agency, str(sqrid)):
                    nodes[person]["workPermit"] = permit
            if not by_xkid:
                return
            events = await self._rows(conn, agency, PERMIT_EVENTS, ids=list(by_xkid))
        for xkid, ywlx, sqrq, bjrq, jg, bz in events:
            by_xkid[xkid]["history"].append(
                {
                    "kind": EVENT_KIND[ywlx],
                    "appliedOn": _compact_day(sqrq),
                    "decidedOn": _compact_day(bjrq),
                    "outcome": EVENT_OUTCOME[jg],
                    "remark": _text(bz),
                }
            )

    async def _insurance(self, nodes: list[Json], owners: _Owners) -> None:
        agency = Agency.SOCIAL_INSURANCE.value
        keys = [int(k) for k in owners.keys(agency)]
        if not keys:
            return
        async with self.insurance.connect() as conn:
            insured = await self._rows(conn, agency, INSURED, keys=keys)
            participations = await self._rows(conn, agency, PARTICIPATIONS, keys=keys)
        answered: set[int] = set()
        for aac001, aac002 in insured:
            for person in owners.persons(agency, str(aac001)):
                if person not in answered:
                    answered.add(person)
                    nodes[person]["socialSecurityNumber"] = _text(aac002)
        for aac001, aae140, aac008, aae030, aae031, aab004, aab998 in participations:
            credit = _text(aab998)
            participation = {
                "type": INSURANCE_TYPE[aae140],
                "status": INSURANCE_STATUS[aac008],
                "startedOn": _compact_day(aae030),
                "endedOn": _compact_day(aae031),
                "employer": {"name": _text(aab004) or credit} if credit else None,
            }
            for person in owners.persons(agency, str(aac001)):
                nodes[person]["insuranceParticipations"].append(participation)

    async def _cards(self, nodes: list[Json], owners: _Owners) -> None:
        agency = Agency.CARD_SERVICE.value
        keys = owners.keys(agency)
        if not keys:
            return
        async with self.cards.connect() as conn:
            cards = await self._rows(conn, agency, CARDS, keys=keys)
            ecards = await self._rows(conn, agency, ECARDS, keys=keys)
        for shbzhm, kh, kzt, fkrq, yxq, gzxkxx in cards:
            for person in owners.persons(agency, shbzhm):
                if nodes[person]["socialSecurityCard"] is None:
                    loaded = orjson.loads(gzxkxx)["XKZH"].strip() if gzxkxx and gzxkxx.strip() else None
                    nodes[person]["socialSecurityCard"] = {
                        "number": kh.strip(),
                        "status": CARD_STATUS[kzt],
                        "issuedOn": _text(fkrq),
                        "validTo": _text(yxq),
                        "carriesWorkPermit": loaded is not None,
                        "workPermitNumber": loaded,
                    }
        for owner, dzkid, qfzt, kh, qfsj, rzfs, xkzh in ecards:
            for person in owners.persons(agency, owner):
                if nodes[person]["electronicCard"] is None:
                    card_number = _text(kh)
                    method = _text(rzfs)
                    nodes[person]["electronicCard"] = {
                        "id": self.ids.encode("ElectronicCard", dzkid.strip()),
                        "status": ECARD_STATUS[qfzt],
                        "serviceLevel": "STANDARD" if card_number else "BASIC",
                        "signedAt": _text(qfsj),
                        "verificationMethod": METHOD[method] if method else None,
                        "cardNumber": card_number,
                        "workPermitNumber": _text(xkzh),
                    }

    async def _exit_entry(self, nodes: list[Json], owners: _Owners) -> None:
        agency = Agency.EXIT_ENTRY.value
        keys = owners.keys(agency)
        if not keys:
            return
        first = ENTRIES_FIRST
        async with self.exit_entry.connect() as conn:
            visas = await self._rows(conn, agency, VISAS, keys=keys)
            entries = await self._rows(conn, agency, ENTRIES, keys=keys, limit=first + 1)
            permits = await self._rows(conn, agency, RESIDENCE_PERMITS, keys=keys, today=self.today_slash)
        for rybh, qzh, qzzl, qfrq, yxqz, tzsbh in visas:
            visa = {
                "number": qzh.strip(),
                "type": qzzl.strip(),
                "issuedOn": _slash_day(qfrq),
                "validTo": _slash_day(yxqz),
                "notificationLetterNumber": _text(tzsbh),
            }
            for person in owners.persons(agency, rybh):
                nodes[person]["visas"].append(visa)
        per_person: dict[int, list[Any]] = {}
        for row in entries:
            for person in owners.persons(agency, row[0]):
                per_person.setdefault(person, []).append(row)
        for person, rows in per_person.items():
            if owners.count(person, agency) > 1:  # newest first across the person's records
                rows.sort(key=lambda r: (r[1], r[2], r[0]), reverse=True)
            nodes[person]["entries"] = self._page(
                "entries", rows, first, _entry, lambda r: (r[1], r[2], r[0])
            )
        for rybh, jlxkzh, jlsy, qfrq, yxqz, qfjg, zt, hyfs in permits:
            for person in owners.persons(agency, rybh):
                if nodes[person]["residencePermit"] is None:
                    channel = _text(hyfs)
                    nodes[person]["residencePermit"] = {
                        "number": jlxkzh.strip(),
                        "purpose": PURPOSE[jlsy],
                        "issuedOn": _slash_day(qfrq),
                        "validTo": _slash_day(yxqz),
                        "issuingOffice": _text(qfjg),
                        "status": self._residence_status(zt, yxqz),
                        "verifiedBy": CHANNEL[channel] if channel else None,
                    }

    def _residence_status(self, zt: str, valid_to: str) -> str:
        if zt != crj.IN_FORCE:
            return "VOID"
        return "EXPIRED" if valid_to < self.today_slash else "VALID"

    async def _beijing_pass(self, nodes: list[Json], owners: _Owners) -> None:
        agency = Agency.BEIJING_PASS.value
        keys = owners.keys(agency)
        if not keys:
            return
        first = PAYMENTS_FIRST
        async with self.beijing_pass.connect() as conn:
            payments = await self._rows(conn, agency, PAYMENTS, keys=keys, limit=first + 1)
        per_person: dict[int, list[Any]] = {}
        for row in payments:
            for person in owners.persons(agency, row[0]):
                per_person.setdefault(person, []).append(row)
        for person, rows in per_person.items():
            if owners.count(person, agency) > 1:  # newest first across the person's cards
                rows.sort(key=lambda r: (r[2], r[1], r[0]), reverse=True)
            nodes[person]["benefitPayments"] = self._page(
                "benefit_payments", rows, first, _payment, lambda r: (r[2], r[1], r[0])
            )


# ---------------------------------------------------------------- measuring


@dataclass
class Scenario:
    name: str
    hub_call: Callable[[int], Awaitable[bytes]]
    floor_call: Callable[[int], Awaitable[bytes]]
    trace_variables: Json
    trace_query: str


@dataclass
class Result:
    name: str
    hub_rps: float
    floor_rps: float
    hub_requests: int
    floor_requests: int
    hub_bytes: int
    floor_bytes: int
    hub_statements: dict[str, int]
    floor_statements: dict[str, int]

    @property
    def ratio(self) -> float:
        return self.floor_rps / self.hub_rps if self.hub_rps else float("inf")


async def rate(call: Callable[[int], Awaitable[bytes]], seconds: float) -> tuple[float, int]:
    """Requests per second, one at a time, for `seconds`; and how many completed."""
    gc.collect()
    count = 0
    started = now = time.perf_counter()
    deadline = started + seconds
    while now < deadline:
        await call(count)
        count += 1
        now = time.perf_counter()
    return count / (now - started), count


async def warm_up(call: Callable[[int], Awaitable[bytes]], seconds: float) -> None:
    if seconds > 0:
        await rate(call, seconds)


def differences(hub: Any, floor: Any, path: str = "") -> list[str]:
    """Where two decoded JSON values differ (keys, list lengths, values)."""
    if isinstance(hub, dict) and isinstance(floor, dict):
        found = []
        if hub.keys() != floor.keys():
            found.append(f"{path}: keys {sorted(hub.keys() ^ floor.keys())} in one only")
        for key in hub.keys() & floor.keys():
            found += differences(hub[key], floor[key], f"{path}.{key}")
        return found
    if isinstance(hub, list) and isinstance(floor, list):
        if len(hub) != len(floor):
            return [f"{path}: {len(hub)} items from the hub, {len(floor)} from the floor"]
        pairs = enumerate(zip(hub, floor, strict=True))
        return [d for i, (h, f) in pairs for d in differences(h, f, f"{path}[{i}]")]
    return [] if hub == floor else [f"{path}: hub {hub!r}, floor {floor!r}"]


def compare(name: str, hub_body: bytes, floor_body: bytes, limit: int = 8) -> None:
    """Warn where the floor's JSON differs from the hub's (it should not at all)."""
    found = differences(orjson.loads(hub_body), orjson.loads(floor_body))
    if found:
        print(f"WARNING: {name}: the floor's JSON differs from the hub's in {len(found)} places:")
        for line in found[:limit]:
            print(f"  {line}")


async def measure(scenario: Scenario, hub: Hub, floor: Floor, seconds: float, warmup: float) -> Result:
    hub_body = await scenario.hub_call(0)
    floor.statements = {}
    floor_body = await scenario.floor_call(0)
    floor_statements = dict(floor.statements)
    compare(scenario.name, hub_body, floor_body)
    hub_statements = await hub.traced(scenario.trace_query, scenario.trace_variables)
    await warm_up(scenario.hub_call, warmup)
    await warm_up(scenario.floor_call, warmup)
    hub_rps, hub_count = await rate(scenario.hub_call, seconds)
    floor_rps, floor_count = await rate(scenario.floor_call, seconds)
    return Result(
        scenario.name,
        hub_rps,
        floor_rps,
        hub_count,
        floor_count,
        len(hub_body),
        len(floor_body),
        hub_statements,
        floor_statements,
    )


async def sample_persons(store: AsyncEngine, ids: GlobalIds) -> tuple[list[str], list[int | None]]:
    """Global ids of persons with records in all five agencies (shuffled, at most
    PERSONS_CYCLED), and the `after` position of every page of persons."""
    async with store.connect() as conn:
        complete = (
            await conn.execute(
                text(
                    "SELECT person_id FROM identity_link WHERE confidence = 'CONFIRMED'"
                    " GROUP BY person_id HAVING COUNT(DISTINCT agency) = 5 ORDER BY person_id"
                )
            )
        ).all()
        person_ids = [r[0] for r in (await conn.execute(text("SELECT id FROM person ORDER BY id"))).all()]
    chosen = [r[0] for r in complete]
    random.Random(SEED).shuffle(chosen)
    afters: list[int | None] = [None] + [
        person_ids[i - 1] for i in range(PAGE_SIZE, len(person_ids), PAGE_SIZE)
    ]
    return [ids.encode("Person", i) for i in chosen[:PERSONS_CYCLED]], afters


def scenarios(
    hub: Hub, floor: Floor, queries: Queries, persons: list[str], afters: list[int | None]
) -> list[Scenario]:
    def page_cursor(after: int | None) -> str | None:
        return floor.cursors.encode("persons", (after,)) if after is not None else None

    async def hub_person(i: int) -> bytes:
        return await hub.post(queries.person, {"lookup": {"id": persons[i % len(persons)]}})

    async def floor_person(i: int) -> bytes:
        return await floor.person(persons[i % len(persons)])

    async def hub_page(i: int) -> bytes:
        after = page_cursor(afters[i % len(afters)])
        return await hub.post(queries.page, {"first": PAGE_SIZE, "after": after})

    async def floor_page(i: int) -> bytes:
        return await floor.page(afters[i % len(afters)])

    return [
        Scenario("person", hub_person, floor_person, {"lookup": {"id": persons[0]}}, queries.person),
        Scenario(
            f"page of {PAGE_SIZE}",
            hub_page,
            floor_page,
            {"first": PAGE_SIZE, "after": page_cursor(afters[0])},
            queries.page,
        ),
    ]


# ---------------------------------------------------------------- reporting

SOURCES = [HUB_STORE, *(a.value for a in Agency)]


def print_results(results: list[Result], seconds: float) -> None:
    print()
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.machine()}, "
        f"SQLite {sqlite3.sqlite_version}, strawberry-graphql {version('strawberry-graphql')}"
    )
    print(f"each side measured for {seconds:g} s, one request at a time; ratio = floor req/s / hub req/s")
    print()
    header = (
        f"{'scenario':<24} {'hub req/s':>10} {'floor req/s':>12} {'ratio':>8}"
        f"   {'hub ms':>7} {'floor ms':>9}   {'JSON bytes hub/floor':>20}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.name:<24} {r.hub_rps:>10.1f} {r.floor_rps:>12.1f} {r.ratio:>7.1f}x   "
            f"{1000 / r.hub_rps:>7.2f} {1000 / r.floor_rps:>9.2f}   {f'{r.hub_bytes}/{r.floor_bytes}':>20}"
        )
    print()
    print("statements per request, hub (X-Hub-Trace: extensions.sources) / floor")
    names = [r.name for r in results]
    print(f"{'source':<20}" + "".join(f" {n:>14}" for n in names))
    for source in SOURCES:
        cells = [f"{r.hub_statements.get(source, 0)} / {r.floor_statements.get(source, 0)}" for r in results]
        print(f"{source:<20}" + "".join(f" {c:>14}" for c in cells))
    totals = [f"{sum(r.hub_statements.values())} / {sum(r.floor_statements.values())}" for r in results]
    print(f"{'total':<20}" + "".join(f" {c:>14}" for c in totals))


# ---------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> None:
    if args.data_dir is not None:
        settings = await prepare_estate(args.data_dir.resolve(), args.persons)
        await bench(settings, args)
        return
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        settings = await prepare_estate(Path(tmp), args.persons)
        await bench(settings, args)


async def bench(settings: Settings, args: argparse.Namespace) -> None:
    results: list[Result] = []
    for audit, planned in ((True, True), (False, True), (True, False)):
        results += await bench_once(settings, args, audit, planned)
    print_results(results, args.seconds)
    by_name = {r.name: r for r in results}
    for name in ("person", "page of 50"):
        on, off = by_name[f"{name} (audit)"], by_name[f"{name} (no audit)"]
        print(
            f"audit cost, {name}: {on.hub_rps:.1f} req/s with, {off.hub_rps:.1f} without "
            f"({on.hub_rps / off.hub_rps:.0%})"
        )
        chain = by_name[f"{name} (unplanned)"]
        print(
            f"planned path, {name}: {on.hub_rps:.1f} req/s with, {chain.hub_rps:.1f} through "
            f"graphql-core's chain alone ({on.hub_rps / chain.hub_rps:.2f}x)"
        )


async def bench_once(
    settings: Settings, args: argparse.Namespace, audit: bool, planned: bool
) -> list[Result]:
    """One round of every scenario, as a caller that may read every field, audit on or off,
    the planned path on or off. The rate limit is lifted: the benchmark is one client asking
    as fast as it can."""
    queries = load_queries()
    settings = replace(
        settings,
        policy_path=READ_EVERYTHING,
        limits=Limits(rate_limit="1000000/minute"),
        audit=audit,
        planned=planned,
    )
    app: Starlette = create_app(settings)
    token = TokenAuthority(load_or_create_key(settings.data_dir, TOKEN_KEY)).issue(
        subject="bench", role=CallerRole.WORK_PERMIT_AUTHORITY, purposes=("permit-administration",)
    )
    headers = {"authorization": f"Bearer {token}", "x-purpose": "permit-administration"}
    label = "(unplanned)" if not planned else "(audit)" if audit else "(no audit)"
    async with app.router.lifespan_context(app):
        state: HubState = app.state.hub
        persons, afters = await sample_persons(state.store.engine, state.ids)
        if not persons:
            raise BenchError("no person has records in all five agencies; seed more persons")
        print(
            f"cycling over {len(persons)} persons with records in all five agencies, and {len(afters)} pages"
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub", headers=headers) as client:
            hub = Hub(client)
            floor = Floor(state)
            results = []
            for scenario in scenarios(hub, floor, queries, persons, afters):
                result = await measure(scenario, hub, floor, args.seconds, args.warmup)
                result = replace(result, name=f"{result.name} {label}")
                print(
                    f"  {result.name}: hub {result.hub_requests} requests, floor {result.floor_requests} "
                    f"in {args.seconds:g} s each"
                )
                results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--persons", type=int, default=10_000, help="persons in the estate (default 10000)")
    add("--seconds", type=float, default=10.0, help="seconds per measurement (default 10)")
    add("--warmup", type=float, default=2.0, help="warm-up seconds per side and scenario (default 2)")
    add("--data-dir", type=Path, default=None, help="keep the estate here; reused when seeded earlier")
    args = parser.parse_args()
    print(f"read-graph benchmark: {args.persons} persons, as of {AS_OF.isoformat()}")
    try:
        asyncio.run(run(args))
    except BenchError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
