"""How fast the synthetic estate is written: seeds five SQLite files in a temporary directory.

.venv/bin/python bench/seed_estate.py --persons 100000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.ext.asyncio import create_async_engine

from estate import EstateSummary, generate_estate
from settings import Settings


async def seed(directory: Path, persons: int, seed_value: int, as_of: date) -> EstateSummary:
    settings = Settings.for_directory(directory)
    engines = {agency: create_async_engine(url) for agency, url in settings.source_urls.items()}
    try:
        return await generate_estate(engines, persons, seed_value, as_of)
    finally:
        for engine in engines.values():
            await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 3, 1))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="estate-bench-") as directory:
        started = time.perf_counter()
        summary = asyncio.run(seed(Path(directory), args.persons, args.seed, args.as_of))
        seconds = time.perf_counter() - started
        size = sum(f.stat().st_size for f in Path(directory).glob("*.sqlite"))
    for table, count in summary.counts.items():
        print(f"{table:10} {count:>10,}")
    rows = summary.total_rows
    print(f"{args.persons:,} persons, {rows:,} rows, {size / 2**20:.0f} MiB in {seconds:.1f} s")
    print(f"{rows / seconds:,.0f} rows/s, {args.persons / seconds:,.0f} persons/s")


if __name__ == "__main__":
    main()
