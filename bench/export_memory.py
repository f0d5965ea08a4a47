"""Peak memory of a person-level export (`expiring-permits`, every permit ending within a
year) from a small and a large estate: constant in the number of rows means the large one's
peak within 10 % of the small one's.

.venv/bin/python bench/export_memory.py                       # seeds var/export-bench once
.venv/bin/python bench/export_memory.py --persons 25000 250000 --format csv parquet

About 40 % of the estate's persons hold a valid permit ending within a year, so 25,000 and
250,000 persons give exports of about 10,000 and 100,000 rows. Each export runs in a process
of its own (its RSS peak is the process's), through the hub's ASGI app with its audit on,
its body counted and dropped as a client would read it; tracemalloc's peak is taken over the
request alone, the RSS peak (ru_maxrss) over the whole process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from access.tokens import TOKEN_KEY, TokenAuthority
from app import create_app
from domain.records import CallerRole
from keys.files import load_or_create_key
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 6, 15)
WITHIN_DAYS = 365
TARGET = 1.10


def seeded(estates: Path, persons: int) -> Path:
    """The estate of `persons` persons under `estates`, seeded (and linked) the first time."""
    directory = estates / f"persons-{persons}"
    if not (directory / "hub_store.sqlite").exists():
        print(f"seeding {persons:,} persons into {directory} (once)", file=sys.stderr)
        env = {**os.environ, "HUB_DATA_DIR": str(directory)}
        hub = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
        command = [*hub, "seed", "--persons", str(persons), "--seed", "1", "--as-of", AS_OF.isoformat()]
        subprocess.run([*command, "--replace"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return directory


async def export_once(directory: Path, file_format: str) -> dict[str, Any]:
    """One export through the app, in this process: rows, bytes, seconds and memory peaks."""
    settings = Settings.for_directory(directory, fixed_today=AS_OF)
    authority = TokenAuthority(load_or_create_key(directory, TOKEN_KEY))
    token = authority.issue(
        subject="bench-export",
        role=CallerRole.WORK_PERMIT_AUTHORITY,
        purposes=("permit-administration",),
        ttl=timedelta(hours=1),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        started = time.perf_counter()
        status, headers, size, lines = await _get(
            app,
            "/exports/expiring-permits",
            f"format={file_format}&withinDays={WITHIN_DAYS}",
            [(b"authorization", f"Bearer {token}".encode()), (b"x-purpose", b"permit-administration")],
        )
        seconds = time.perf_counter() - started
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    if status != 200:
        raise SystemExit(f"the export answered {status}")
    return {
        # CSV: the lines after its header; Parquet: the person index's count the hub announced.
        "rows": lines - 1 if file_format == "csv" else int(headers[b"x-export-rows"]),
        "bytes": size,
        "seconds": seconds,
        "tracemalloc_peak": peak,
        "rss_before_kib": rss_before,
        "rss_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


async def _get(
    app: Any, path: str, query: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[bytes, bytes], int, int]:
    """A GET through the ASGI app, its body's bytes and lines counted and dropped chunk by chunk."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
    }
    done = asyncio.Event()
    asked = False
    answer: dict[str, Any] = {"status": 0, "headers": {}, "size": 0, "lines": 0}

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays connected until the body has come
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = dict(message["headers"])
        elif message["type"] == "http.response.body":
            answer["size"] += len(message.get("body", b""))
            answer["lines"] += message.get("body", b"").count(b"\n")
            if not message.get("more_body", False):
                done.set()

    await app(scope, receive, send)
    done.set()
    return answer["status"], answer["headers"], answer["size"], answer["lines"]


def measured(directory: Path, file_format: str) -> dict[str, Any]:
    """export_once in a fresh process, so its RSS peak is the export's own."""
    command = [sys.executable, __file__, "--measure", str(directory), "--format", file_format]
    # No expiry check beside the export: its reads would be measured with it.
    env = {**os.environ, "HUB_NOTIFY_INTERVAL": "0"}
    output = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estates", type=Path, default=ROOT / "var" / "export-bench")
    parser.add_argument("--persons", type=int, nargs=2, default=[25_000, 250_000], metavar=("SMALL", "LARGE"))
    parser.add_argument(
        "--format", nargs="+", default=["csv", "parquet"], choices=["csv", "ndjson", "parquet"]
    )
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one export, in this process
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(asyncio.run(export_once(args.measure, args.format[0]))))
        return
    small, large = (seeded(args.estates, n) for n in args.persons)
    for file_format in args.format:
        results = [measured(small, file_format), measured(large, file_format)]
        for persons, r in zip(args.persons, results, strict=True):
            print(
                f"{file_format:8} {persons:>8,} persons {r['rows']:>8,} rows {r['bytes'] / 2**20:7.1f} MiB "
                f"in {r['seconds']:6.1f} s  tracemalloc peak {r['tracemalloc_peak'] / 2**20:6.2f} MiB  "
                f"RSS peak {r['rss_peak_kib'] / 1024:6.1f} MiB (at start {r['rss_before_kib'] / 1024:.1f})"
            )
        traced = results[1]["tracemalloc_peak"] / results[0]["tracemalloc_peak"]
        rss = results[1]["rss_peak_kib"] / results[0]["rss_peak_kib"]
        rows = results[1]["rows"] / results[0]["rows"]
        verdict = "constant" if max(traced, rss) <= TARGET else f"over the {TARGET:.2f} target"
        print(f"{file_format:8} ×{rows:.1f} rows: tracemalloc ×{traced:.3f}, RSS ×{rss:.3f} ({verdict})")


if __name__ == "__main__":
    main()
