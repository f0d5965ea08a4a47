"""Writing the estate: one connection per agency, tables created if missing, a refusal when
the estate is not empty, and chunked Core inserts in a fixed order (so SQLite files come out
byte-identical for the same arguments)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, MetaData, inspect, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import CreateIndex, CreateTable

from adapters.base import insert_rows
from adapters.registry import DEFAULT_AGENCIES
from adapters.spec import AgencySpec
from domain.records import AgencyId
from estate.formats import Rows

_INSERT_CHUNK = 20_000


class EstateWriter:
    """Holds one connection per agency for the whole run; each flush is one transaction per agency."""

    def __init__(
        self, engines: Mapping[AgencyId, AsyncEngine], agencies: Sequence[AgencySpec] = DEFAULT_AGENCIES
    ) -> None:
        missing = [spec.id for spec in agencies if spec.id not in engines]
        if missing:
            raise ValueError(f"no database engine given for {', '.join(missing)}")
        self._engines = engines
        self._metadata: dict[AgencyId, MetaData] = {spec.id: spec.source.metadata for spec in agencies}
        # Insert order within an agency: the order the tables are declared in.
        self._tables = {agency: tuple(m.tables.values()) for agency, m in self._metadata.items()}
        self.table_names = tuple(t.name for tables in self._tables.values() for t in tables)
        self._connections: dict[AgencyId, AsyncConnection] = {}
        self._synchronous: dict[AgencyId, int] = {}
        self.counts: dict[str, int] = dict.fromkeys(self.table_names, 0)

    def empty_rows(self) -> Rows:
        return {name: [] for name in self.table_names}

    async def open(self) -> None:
        """Create missing tables; refuse unless every table is empty."""
        for agency, metadata in self._metadata.items():
            conn = await self._engines[agency].connect()
            self._connections[agency] = conn
            if conn.dialect.name == "sqlite":  # a seed is rebuilt, not recovered: skip the fsyncs
                self._synchronous[agency] = int(
                    (await conn.exec_driver_sql("PRAGMA synchronous")).scalar_one()
                )
                await conn.exec_driver_sql("PRAGMA synchronous=OFF")
            await conn.run_sync(_create_tables, metadata)
            await conn.commit()
        for agency, conn in self._connections.items():
            for table in self._tables[agency]:
                if (await conn.execute(select(literal(1)).select_from(table).limit(1))).first() is not None:
                    await conn.rollback()
                    raise ValueError(
                        f"the {agency} database already holds rows in {table.name}: refusing to seed "
                        "over an existing estate; wipe the databases first"
                    )
            await conn.rollback()

    async def flush(self, rows: Rows) -> None:
        """Insert and forget the rows collected so far."""
        for agency, conn in self._connections.items():
            pending = [(t, rows[t.name]) for t in self._tables[agency] if rows[t.name]]
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
