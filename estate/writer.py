"""Writing the estate: one connection per agency, tables created if missing, a refusal when
the estate is not empty, and chunked Core inserts in a fixed order (so SQLite files come out
byte-identical for the same arguments)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, MetaData, Table, inspect, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import CreateIndex, CreateTable

from adapters.base import insert_rows
from adapters.beijing_pass import tables as beijing_pass
from adapters.card_service import tables as card_service
from adapters.exit_entry import tables as exit_entry
from adapters.social_insurance import tables as social_insurance
from adapters.work_permit import tables as work_permit
from domain.records import Agency
from estate.formats import Rows

METADATA: dict[Agency, MetaData] = {
    Agency.WORK_PERMIT_SYSTEM: work_permit.metadata,
    Agency.SOCIAL_INSURANCE: social_insurance.metadata,
    Agency.CARD_SERVICE: card_service.metadata,
    Agency.EXIT_ENTRY: exit_entry.metadata,
    Agency.BEIJING_PASS: beijing_pass.metadata,
}
# Insert order within an agency: the order the tables are declared in.
TABLES: dict[Agency, tuple[Table, ...]] = {a: tuple(m.tables.values()) for a, m in METADATA.items()}
TABLE_NAMES: tuple[str, ...] = tuple(t.name for tables in TABLES.values() for t in tables)
_INSERT_CHUNK = 20_000


def empty_rows() -> Rows:
    return {name: [] for name in TABLE_NAMES}


class EstateWriter:
    """Holds one connection per agency for the whole run; each flush is one transaction per agency."""

    def __init__(self, engines: Mapping[Agency, AsyncEngine]) -> None:
        missing = [a.value for a in Agency if a not in engines]
        if missing:
            raise ValueError(f"no database engine given for {', '.join(missing)}")
        self._engines = engines
        self._connections: dict[Agency, AsyncConnection] = {}
        self._synchronous: dict[Agency, int] = {}
        self.counts: dict[str, int] = dict.fromkeys(TABLE_NAMES, 0)

    async def open(self) -> None:
        """Create missing tables; refuse unless every table is empty."""
        for agency in Agency:
            conn = await self._engines[agency].connect()
            self._connections[agency] = conn
            if conn.dialect.name == "sqlite":  # a seed is rebuilt, not recovered: skip the fsyncs
                self._synchronous[agency] = int(
                    (await conn.exec_driver_sql("PRAGMA synchronous")).scalar_one()
                )
                await conn.exec_driver_sql("PRAGMA synchronous=OFF")
            await conn.run_sync(_create_tables, METADATA[agency])
            await conn.commit()
        for agency, conn in self._connections.items():
            for table in TABLES[agency]:
                if (await conn.execute(select(literal(1)).select_from(table).limit(1))).first() is not None:
                    await conn.rollback()
                    raise ValueError(
                        f"the {agency.value} database already holds rows in {table.name}: refusing to seed "
                        "over an existing estate; wipe the databases first"
                    )
            await conn.rollback()

    async def flush(self, rows: Rows) -> None:
        """Insert and forget the rows collected so far."""
        for agency, conn in self._connections.items():
            pending = [(t, rows[t.name]) for t in TABLES[agency] if rows[t.name]]
            if not pending:
                continue
            async with conn.begin():
                for table, batch in pending:
                    for k in range(0, len(batch), _INSERT_CHUNK):
                        await insert_rows(conn, table, batch[k : k + _INSERT_CHUNK])
                    self.counts[table.name] += len(batch)
                    batch.clear()

    async def close(self) -> None:
        for agency, conn in self._connections.items():
            if agency in self._synchronous and not conn.closed:
                await conn.exec_driver_sql(f"PRAGMA synchronous={self._synchronous[agency]}")
            await conn.close()
        self._connections.clear()


def _create_tables(conn: Connection, metadata: MetaData) -> None:
    """`metadata.create_all`, but indexes in name order: create_all walks a set of them, and
    the order they are created in shows in the file."""
    existing = set(inspect(conn).get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in existing:
            conn.execute(CreateTable(table))
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                conn.execute(CreateIndex(index))
