"""The `hub` command: run the server, seed the demo estate, link identities, export the schema."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from access.issuing import IssuingError
from domain.records import CallerRole
from keys.data_dir import keep_private
from settings import Settings

if TYPE_CHECKING:
    from access.policy import Policy
    from identity.store import SamplePerson

DEMO_PERSONS = 3000
DEMO_SEED = 20241201
WS_ENVELOPE_BYTES = 4096  # a subscribe message around its payload: type, id, quotes


def progress_printer(stream: TextIO = sys.stderr) -> Callable[[str, int, int], None]:
    """A progress callback: one line per phase, rewritten in place as it advances."""
    state: dict[str, Any] = {"phase": "", "last": 0.0, "open": False}

    def report(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        finished = done >= total
        if phase != state["phase"] and state["open"]:
            print(file=stream)  # close the previous phase's line
        if phase != state["phase"] or finished or now - float(state["last"]) > 0.5:
            print(f"\r  {phase}: {done}/{total}", end="\n" if finished else "", file=stream, flush=True)
            state.update(phase=phase, last=now, open=not finished)

    return report


async def _seed(settings: Settings, persons: int, seed: int, as_of: date, replace: bool) -> None:
    from adapters import Sources
    from estate import generate_estate
    from identity.store import HubStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sources = Sources.open(settings.source_urls, agencies=settings.agencies)
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
            settings.agencies,
        )
        print(f"seeded {summary.total_rows} rows in {time.monotonic() - started:.1f} s", file=sys.stderr)
    finally:
        await sources.close()
    await _link(settings)


async def _link(settings: Settings) -> None:
    from adapters import Sources
    from identity.linking import link_estate
    from identity.store import HubStore

    sources = Sources.open(settings.source_urls, agencies=settings.agencies)
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
    from adapters import Sources

    sources = Sources.open(settings.source_urls, agencies=settings.agencies)
    try:
        return any([await source.has_tables() for source in sources.all()])
    finally:
        await sources.close()


async def _sample_person(settings: Settings) -> SamplePerson | None:
    from identity.store import HubStore

    store = HubStore.open(settings.store_url)
    try:
        await store.create_tables()
        return await store.sample_person(len(settings.agencies))
    finally:
        await store.close()


def _policy(settings: Settings) -> Policy:
    from access.policy import load_policy
    from schema import build_schema

    return load_policy(build_schema()._schema, settings.policy_path)


def workers_problem(settings: Settings, workers: int) -> str | None:
    """Why `hub run --workers N` cannot serve these settings correctly (None: it can)."""
    if workers < 1:
        return "--workers must be at least 1"
    if workers > 1 and settings.redis_url is None:
        return (
            f"--workers {workers}: the processes must share their rate limits, persisted queries and "
            "notifications; set HUB_REDIS_URL (e.g. redis://127.0.0.1:6379/0), or serve one worker"
        )
    return None


def _run(settings: Settings, host: str, port: int, demo: bool, workers: int = 1) -> None:
    import uvicorn

    from access.issuing import demo_tokens, demo_verifier_jwks
    from app import create_app
    from operations import configure_logging, share_between_workers

    # JSON lines for every logger, uvicorn's included; its access log gives way to the hub's own
    # request line (operations/requests.py), which names no person.
    configure_logging(settings.log_level)
    if demo and settings.verifier_jwks is None:
        # The demo trusts its own stand-in provider (`hub attest`), never a real hub.
        settings = replace(settings, verifier_jwks=demo_verifier_jwks(settings.data_dir))
        os.environ["HUB_VERIFIER_JWKS"] = settings.verifier_jwks or ""  # for the workers too
    app = create_app(settings)  # refuses to start on a policy that does not fit the schema
    if demo:
        if not asyncio.run(_estate_exists(settings)):
            print("no legacy databases yet: seeding the demo estate", file=sys.stderr)
            asyncio.run(_seed(settings, DEMO_PERSONS, DEMO_SEED, settings.today(), replace=False))
        sample = asyncio.run(_sample_person(settings))
        tokens = demo_tokens(
            settings.data_dir,
            _policy(settings),
            sample.person_id if sample else None,
            sample.employer_credit_code if sample else None,
            timedelta(hours=12),
        )
        print("\ndemo tokens (12 h); in GraphiQL's Headers tab paste e.g.", file=sys.stderr)
        print('  {"Authorization": "Bearer <token>", "X-Purpose": "<purpose>"}', file=sys.stderr)
        for issued in tokens:
            purpose = f"X-Purpose: {issued.purpose}" if issued.purpose else "no purpose needed"
            print(f"\n{issued.role.value} ({purpose}):\n  {issued.token}", file=sys.stderr)
        if sample:
            lookup = f'{{"lookup": {{"workPermitNumber": "{sample.permit_number}"}}}}'
            print(
                "\ntry docs/examples/cardholder.graphql with the CARDHOLDER token, and "
                f"docs/examples/agency-desk.graphql with the EXIT_ENTRY token and the variables {lookup}",
                file=sys.stderr,
            )
    print(f"\nGraphiQL at http://{host}:{port}/graphql", file=sys.stderr)
    # SIGTERM: uvicorn stops accepting, lets requests in flight finish for up to the grace, then
    # the lifespan drains workflow runs and the audit queue (operations/shutdown.py). uvicorn
    # raises the signal again once it is done; this handler takes it, so a clean stop exits 0.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    if workers > 1:
        # Each worker is a fresh process that builds the app from the environment (app.py
        # worker_app); uvicorn's supervisor restarts one that dies and stops all on SIGTERM.
        # Their metrics meet in one directory that /metrics of any worker aggregates.
        share_between_workers(settings.data_dir)
        app_or_factory: Any = "app:worker_app"
    else:
        app_or_factory = app
    uvicorn.run(
        app_or_factory,
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace,  # type: ignore[arg-type]  # uvicorn says int; float seconds work
        # No WebSocket frame may be larger than a request's document and its envelope: bigger
        # frames are closed with 1009 before they are read (uvicorn's default is 16 MiB).
        ws_max_size=settings.limits.max_document_bytes + WS_ENVELOPE_BYTES,
    )


async def _issue_token(settings: Settings, args: argparse.Namespace) -> str:
    from access.issuing import check_purposes, parse_ttl, resolve_person
    from access.tokens import TOKEN_KEY, TokenAuthority
    from adapters.identifiers import is_valid_credit_code
    from domain.records import CallerRole
    from identity.store import HubStore
    from keys.files import load_or_create_key
    from opaque.ids import GlobalIds
    from opaque.sealing import sealer

    role = CallerRole(args.role)
    if not args.subject.strip():
        raise IssuingError("--subject: name the client; the audit trail and the rate limit go by it")
    purposes = check_purposes(_policy(settings), role, args.purpose or [])
    person_id = None
    if role is CallerRole.CARDHOLDER:
        if not args.person:
            raise IssuingError("--person: a CARDHOLDER token is bound to one person")
        store = HubStore.open(settings.store_url)
        try:
            await store.create_tables()  # a data directory not linked yet simply finds nobody
            person_id = await resolve_person(store, GlobalIds(sealer(settings.data_dir)), args.person)
        finally:
            await store.close()
    if role is CallerRole.EMPLOYER and not (args.employer and is_valid_credit_code(args.employer)):
        raise IssuingError("--employer: an EMPLOYER token needs a valid Unified Social Credit Code")
    authority = TokenAuthority(load_or_create_key(settings.data_dir, TOKEN_KEY))
    return authority.issue(
        subject=args.subject.strip(),
        role=role,
        purposes=purposes,
        ttl=parse_ttl(args.ttl),
        person_id=person_id,
        employer=args.employer if role is CallerRole.EMPLOYER else None,
    )


async def _notify(settings: Settings) -> str:
    from adapters import Sources
    from identity.store import HubStore
    from notifications.doorbell import doorbell
    from notifications.expiry import write_expiry_notices
    from shared_state import SharedRedis

    sources = Sources.open(settings.source_urls, agencies=settings.agencies)
    store = HubStore.open(settings.store_url)
    shared = SharedRedis(settings.redis_url, settings.redis_prefix) if settings.redis_url else None
    try:
        await store.create_tables()
        today = settings.today()
        # With Redis, the servers' live subscribers hear of the notices at once.
        rings = doorbell.across_processes(store, shared)
        async with rings:
            report = await write_expiry_notices(sources, store, today)
        return report.summary(today)
    finally:
        await sources.close()
        await store.close()
        if shared is not None:
            await shared.close()


async def _verify_audit(settings: Settings) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from audit.log import AUDIT_KEY, AuditLog
    from audit.witness import open_witness
    from keys.files import load_or_create_key

    witness = open_witness(settings.witness_location())
    log = AuditLog.open(settings.audit_url, load_or_create_key(settings.data_dir, AUDIT_KEY), witness)
    try:
        await log.create_tables()
        findings = await log.verify()
        records, checkpoints = await log.counts()
        witnessed = await log.witnessed()
    except (OSError, SQLAlchemyError) as error:
        # Not verified is not tampered: say which part could not be read, by type only.
        print(
            f"audit trail not verified: the audit database or {witness.name} could not be read "
            f"({type(error).__name__})",
            file=sys.stderr,
        )
        return 2
    finally:
        await log.close()
    if findings:
        for finding in findings:
            print(f"TAMPERED: {finding}")
        return 1
    print(
        f"audit trail intact: {records} records, sealed by {checkpoints} signed checkpoints; "
        f"{witness.name} holds {witnessed or 0} of them"
    )
    return 0


# Options whose value may begin with "-": a global id (`hub token --person -Vq3...`) is
# url-safe base64, which argparse would take for an option and refuse.
def _export(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from rich.console import Console

    from exports.download import DownloadFailed, ExportRequest, download

    token = (
        args.token_file.read_text().strip() if args.token_file else os.environ.get("HUB_TOKEN", "").strip()
    )
    if not token:
        parser.error("export needs a token: set HUB_TOKEN or give --token-file")
    params = []
    for param in args.param:
        name, equals, value = param.partition("=")
        if not equals or not name:
            parser.error(f"--param {param!r}: must be name=value")
        params.append((name, value))
    request = ExportRequest(args.url, args.name, args.format, params, token, args.purpose)
    try:
        received = download(request, args.output, Console(stderr=True))
    except DownloadFailed as failed:
        print(f"hub export: {failed}", file=sys.stderr)
        return 1
    unit = "bytes" if args.format == "parquet" else "rows"
    print(f"{args.output}: {received} {unit}", file=sys.stderr)
    return 0


VALUED_OPTIONS = frozenset({"--person"})


def _joined_values(argv: list[str], options: frozenset[str]) -> list[str]:
    """`--person VALUE` as `--person=VALUE`, so that a VALUE beginning with "-" stays a value."""
    joined: list[str] = []
    pending: str | None = None
    for word in argv:
        if pending is not None:
            joined.append(f"{pending}={word}")
            pending = None
        elif word in options:
            pending = word
        else:
            joined.append(word)
    if pending is not None:
        joined.append(pending)  # argparse says the value is missing
    return joined


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hub", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="serve the graph (GraphiQL at /graphql)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--demo", action="store_true", help="seed the demo estate first when there is none")
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes on the one port (default 1; more need HUB_REDIS_URL)",
    )

    seed = commands.add_parser("seed", help="generate the five legacy databases, then link them")
    seed.add_argument("--persons", type=int, required=True)
    seed.add_argument("--seed", type=int, required=True)
    seed.add_argument("--as-of", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
    seed.add_argument(
        "--replace", action="store_true", help="drop existing legacy tables and the hub store first"
    )

    commands.add_parser("link", help="link agency records to persons in the hub store")

    token = commands.add_parser("token", help="issue a signed client token")
    token.add_argument("--role", required=True, choices=[r.value for r in CallerRole])
    token.add_argument("--subject", required=True, help="the client id the token names")
    token.add_argument("--purpose", action="append", help="a purpose the token allows (repeatable)")
    token.add_argument(
        "--person",
        help="CARDHOLDER: kind=value (workPermitNumber=..., passport=DEU:...), "
        "a Person's global id (Person.id) or a person id",
    )
    token.add_argument("--employer", help="EMPLOYER: the employer's Unified Social Credit Code")
    token.add_argument("--ttl", default="8h", help="lifetime: 90s, 30m, 8h, 7d (default 8h)")

    audit = commands.add_parser("audit", help="the audit trail")
    audit.add_argument(
        "action", choices=["verify"], help="verify: walk the hash chain and its signed checkpoints"
    )
    attest = commands.add_parser(
        "attest", help="sign a real-person attestation with the demo's stand-in verification provider"
    )
    attest.add_argument("--identifier", required=True, help="the permit or social security number registered")
    attest.add_argument("--reference", required=True, help="the check's reference (RZBH)")
    attest.add_argument("--method", default="FACE", choices=["FACE", "BANK", "COUNTER"])
    commands.add_parser("export-schema", help="print the schema's SDL")
    export = commands.add_parser(
        "export", help="download an export (GET /exports/NAME) to a file, token from HUB_TOKEN"
    )
    export.add_argument("name", help="expiring-permits, expiring-permits-by-week or workforce")
    export.add_argument("--format", default="csv", choices=["csv", "ndjson", "parquet"])
    export.add_argument("--output", required=True, type=Path, help="the file to write")
    export.add_argument("--url", default="http://127.0.0.1:8000", help="the hub (default %(default)s)")
    export.add_argument("--token-file", type=Path, help="read the token here instead of HUB_TOKEN")
    export.add_argument("--purpose", help="X-Purpose, for an agency role")
    export.add_argument(
        "--param", action="append", default=[], help="an export's parameter, name=value (repeatable)"
    )
    commands.add_parser(
        "notify", help="write a PERMIT_EXPIRING notice for each permit ending within 30 days (once each)"
    )

    args = parser.parse_args(_joined_values(sys.argv[1:] if argv is None else argv, VALUED_OPTIONS))
    settings = Settings.from_environment()
    keep_private(
        settings.data_dir, settings.private_files()
    )  # owner-only data directory and files, before anything is written
    match args.command:
        case "run":
            problem = workers_problem(settings, args.workers)
            if problem is not None:
                parser.error(problem)
            _run(settings, args.host, args.port, args.demo, args.workers)
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
        case "token":
            try:
                print(asyncio.run(_issue_token(settings, args)))
            except IssuingError as error:
                parser.error(str(error))
        case "audit":
            return asyncio.run(_verify_audit(settings))
        case "notify":
            if not asyncio.run(_estate_exists(settings)):
                parser.error(f"no work-permit database in {settings.data_dir}: seed or link one first")
            print(asyncio.run(_notify(settings)))
        case "attest":
            from access.issuing import demo_attestation

            print(demo_attestation(settings.data_dir, args.identifier, args.reference, args.method))
        case "export":
            return _export(parser, args)
        case "export-schema":
            from schema import export_sdl

            sys.stdout.write(export_sdl())
    return 0


if __name__ == "__main__":
    sys.exit(main())
