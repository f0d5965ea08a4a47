"""How long publishing news to a city's foreigners takes, and what it costs the hub store.

.venv/bin/python bench/news.py [--persons 30000] [--postgres]

Seeds an estate of `--persons` persons (SQLite files in a temporary directory, or PostgreSQL
databases on HUB_TEST_POSTGRES with `--postgres`), then publishes news through the hub's ASGI
app as the work-permit authority, to everyone with a signed e-card and to one work district,
and prints per publish the recipients, the seconds and the statements each database ran
(`X-Hub-Trace`). Each figure is one run on this machine; the statement counts do not depend
on the number of recipients.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import func, select

from domain.records import CallerRole
from identity.store import NEWS, HubStore
from settings import Settings
from tests.conftest import AS_OF, caller_headers, seed_estate, serve
from tests.databases import postgres_settings

PUBLISH = (
    "mutation($input: PublishNewsInput!) { publishNews(input: $input) "
    "{ news { recipientCount } userErrors { code message } } }"
)


async def publish(
    http: httpx.AsyncClient, settings: Settings, headers: dict[str, str], arguments: dict[str, object]
) -> None:
    started = time.perf_counter()
    response = await http.post(
        "/graphql", json={"query": PUBLISH, "variables": {"input": arguments}}, headers=headers
    )
    seconds = time.perf_counter() - started
    body = response.json()
    answer = body["data"]["publishNews"]
    assert answer["userErrors"] == [], answer["userErrors"]
    store = HubStore.open(settings.store_url)
    try:
        async with store.engine.connect() as conn:
            exact = (
                await conn.execute(
                    select(func.max(NEWS.c.recipients)).where(NEWS.c.message == arguments["message"])
                )
            ).scalar_one()
    finally:
        await store.close()
    sources = ", ".join(f"{name} {s['statements']}" for name, s in body["extensions"]["sources"].items())
    audience = arguments.get("audience") or "everyone"
    print(f"  to {audience}: {exact:,} recipients in {seconds:.2f} s; statements: {sources}")


async def run(persons: int, postgres: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="news-bench-") as directory:
        databases = None
        if postgres:
            settings, databases = await postgres_settings(Path(directory), AS_OF)
        else:
            settings = Settings.for_directory(Path(directory), fixed_today=AS_OF)
        try:
            started = time.perf_counter()
            await seed_estate(settings, persons, 1)
            backend = "PostgreSQL" if postgres else "SQLite"
            print(f"{persons:,} persons seeded in {time.perf_counter() - started:.0f} s ({backend})")
            headers = {
                **caller_headers(settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration"),
                "X-Hub-Trace": "1",
            }
            async with serve(settings) as http:
                await publish(
                    http, settings, headers, {"message": "To every foreigner with a signed e-card."}
                )
                chaoyang: dict[str, object] = {
                    "message": "To Chaoyang.",
                    "audience": {"workDistrict": "110105"},
                }
                await publish(http, settings, headers, chaoyang)
        finally:
            if databases is not None:
                await databases.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=30_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.persons, args.postgres))


if __name__ == "__main__":
    main()
