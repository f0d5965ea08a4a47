"""One process appending to an audit trail, for the tests of many writers on one chain.

    python -m tests.audit_appender URL WITNESS KEY_DIR NAME COUNT

It opens the trail, says `ready`, waits for a line on stdin (so that every writer starts at
once), appends COUNT records as COUNT concurrent responses would (its writer batches them),
and says `appended N` with how many became durable."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from audit.chain import AuditEntry
from audit.log import AUDIT_KEY, AuditLog, AuditUnavailable
from audit.witness import open_witness
from keys.files import load_or_create_key


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def append_all(url: str, witness: str, key_dir: Path, name: str, count: int) -> int:
    log = AuditLog.open(url, load_or_create_key(key_dir, AUDIT_KEY), open_witness(witness))
    try:
        await log.create_tables()
        say("ready")
        await asyncio.to_thread(sys.stdin.readline)

        async def one(i: int) -> bool:
            entry = AuditEntry(
                datetime.now(UTC), f"{name}-{i}", name, "EXIT_ENTRY", None, None, i, ("Person.id",)
            )
            try:
                await log.append([entry])
            except AuditUnavailable:
                return False
            return True

        return sum(await asyncio.gather(*(one(i) for i in range(count))))
    finally:
        await log.close()


if __name__ == "__main__":
    url, witness, key_dir, name, count = sys.argv[1:6]
    durable = asyncio.run(append_all(url, witness, Path(key_dir), name, int(count)))
    say(f"appended {durable}")
