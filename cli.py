"""The `hub` command: run the server, seed the demo estate, link identities, export the schema."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from datetime import date
from typing import TextIO

from settings import Settings

DEMO_PERSONS = 3000
DEMO_SEED = 20241201


def progress_printer(stream: TextIO = sys.stderr) -> Callable[[str, int, int], None]:
    """A progress callback: one line per phase, rewritten in place as it advances."""
    state: dict[str, object] = {"phase": "", "last": 0.0, "open": False}

    def report(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        finished = done >= total
        if phase != state["phase"] and state["open"]:
            print(file=stream)  # close the previous phase's line
        if phase != state["phase"] or finished or now - float(state["last"]) > 0.5:  # type: ignore[arg-type]
            print(f"\r  {phase}: {done}/{total}", end="\n" if finished else "", file=stream, flush=True)
            state.update(phase=phase, last=now, open=not finished)

    return report


async def _seed(settings: Settings, persons: int, seed: int, as_of: date, replace: bool) -> None:
    from adapters import Sources
    from estate import generate_estate
    from identity.store import HubStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sources = Sources.open(settings.source_urls)
    try:
        if replace:
            for source in sources.all():
                await source.drop_tables()
            store = HubStore.open(settings.store_url)
            await store.drop_tables()
            await store.close()
        started = time.monotonic()
        print(f"seeding {persons} persons (seed {seed}, as of {as_of.isoformat()})", file=sys.stderr)
        summary = await generate_estate(
            {s.agency: s.engine for s in sources.all()},
            persons,
            seed,
            as_of,
            progress_printer(),
        )
        print(f"seeded {summary.total_rows} rows in {time.monotonic() - started:.1f} s", file=sys.stderr)
    finally:
        await sources.close()
    await _link(settings)


async def _link(settings: Settings) -> None:
    from adapters import Sources
    from identity.linking import link_estate
    from identity.store import HubStore

    sources = Sources.open(settings.source_urls)
    store = HubStore.open(settings.store_url)
    try:
        await store.create_tables()
        started = time.monotonic()
        report = await link_estate(sources, store, progress_printer())
        print(f"{report.summary()} in {time.monotonic() - started:.1f} s")
        for bad in report.unmappable[:20]:
            print(f"  unreadable: {bad}")
    finally:
        await sources.close()
        await store.close()


async def _estate_exists(settings: Settings) -> bool:
    from sqlalchemy import inspect

    from adapters import Sources

    sources = Sources.open(settings.source_urls)
    try:
        async with sources.work_permits.engine.connect() as conn:
            return await conn.run_sync(lambda sync: inspect(sync).has_table("WP_SQR"))
    finally:
        await sources.close()


async def _sample_permit_number(settings: Settings) -> str | None:
    from identity.store import HubStore

    store = HubStore.open(settings.store_url)
    try:
        await store.create_tables()
        return await store.sample_permit_number()
    finally:
        await store.close()


def _run(settings: Settings, host: str, port: int, demo: bool) -> None:
    import uvicorn

    from app import create_app

    if demo and not asyncio.run(_estate_exists(settings)):
        print("no legacy databases yet: seeding the demo estate", file=sys.stderr)
        asyncio.run(_seed(settings, DEMO_PERSONS, DEMO_SEED, settings.today(), replace=False))
    print(f"GraphiQL at http://{host}:{port}/graphql", file=sys.stderr)
    sample = asyncio.run(_sample_permit_number(settings))
    if sample:
        print(
            "try docs/examples/agency-desk.graphql with the variables "
            f'{{"lookup": {{"workPermitNumber": "{sample}"}}}}',
            file=sys.stderr,
        )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="serve the graph (GraphiQL at /graphql)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--demo", action="store_true", help="seed the demo estate first when there is none")

    seed = commands.add_parser("seed", help="generate the five legacy databases, then link them")
    seed.add_argument("--persons", type=int, required=True)
    seed.add_argument("--seed", type=int, required=True)
    seed.add_argument("--as-of", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
    seed.add_argument(
        "--replace", action="store_true", help="drop existing legacy tables and the hub store first"
    )

    commands.add_parser("link", help="link agency records to persons in the hub store")
    commands.add_parser("export-schema", help="print the schema's SDL")

    args = parser.parse_args(argv)
    settings = Settings.from_environment()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    match args.command:
        case "run":
            _run(settings, args.host, args.port, args.demo)
        case "seed":
            if args.persons < 1:
                parser.error("--persons must be at least 1")
            if not args.replace and asyncio.run(_estate_exists(settings)):
                parser.error(
                    f"the legacy databases in {settings.data_dir} already hold an estate; add --replace"
                )
            asyncio.run(
                _seed(settings, args.persons, args.seed, args.as_of or settings.today(), args.replace)
            )
        case "link":
            asyncio.run(_link(settings))
        case "export-schema":
            from schema import export_sdl

            sys.stdout.write(export_sdl())
    return 0


if __name__ == "__main__":
    sys.exit(main())
