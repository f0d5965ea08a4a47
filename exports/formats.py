"""The file formats an export is written in, batch by batch: what each batch adds to the
file is sent as it is made, so a writer holds one batch at most (Parquet: one row group per
batch, its footer at the end)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol, cast

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from exports.table import Column


class Writer(Protocol):
    def start(self) -> bytes: ...
    def batch(self, rows: Sequence[tuple[Any, ...]]) -> bytes: ...
    def end(self) -> bytes: ...


class CsvWriter:
    """RFC 4180 CSV with a header row; dates ISO 8601, a missing value empty."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = columns
        self.buffer = io.StringIO()
        self.csv = csv.writer(self.buffer, lineterminator="\r\n")

    def _taken(self) -> bytes:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text.encode()

    def start(self) -> bytes:
        self.csv.writerow([c.name for c in self.columns])
        return self._taken()

    def batch(self, rows: Sequence[tuple[Any, ...]]) -> bytes:
        self.csv.writerows(rows)
        return self._taken()

    def end(self) -> bytes:
        return b""


class NdjsonWriter:
    """One JSON object per line, keyed by column name; a missing value null."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.names = [c.name for c in columns]

    def start(self) -> bytes:
        return b""

    def batch(self, rows: Sequence[tuple[Any, ...]]) -> bytes:
        return b"".join(orjson.dumps(dict(zip(self.names, row, strict=True))) + b"\n" for row in rows)

    def end(self) -> bytes:
        return b""


ARROW_TYPES = {"string": pa.string(), "integer": pa.int64(), "date": pa.date32()}


class _Drained:
    """A write-only file whose bytes are taken away as they are written."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def taken(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


class ParquetWriter:
    """Parquet with one row group per batch, typed columns (dates as DATE, counts INT64)."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.schema = pa.schema([pa.field(c.name, ARROW_TYPES[c.kind]) for c in columns])
        self.sink = _Drained()
        # pyarrow calls only write, tell, flush and close of a Python file.
        self.writer = pq.ParquetWriter(cast(IO[bytes], self.sink), self.schema)

    def start(self) -> bytes:
        return self.sink.taken()

    def batch(self, rows: Sequence[tuple[Any, ...]]) -> bytes:
        if rows:
            arrays = [
                pa.array([row[i] for row in rows], type=field.type) for i, field in enumerate(self.schema)
            ]
            self.writer.write_batch(pa.record_batch(arrays, schema=self.schema))
        return self.sink.taken()

    def end(self) -> bytes:
        self.writer.close()
        return self.sink.taken()


@dataclass(frozen=True)
class Format:
    media_type: str
    extension: str
    writer: type[CsvWriter] | type[NdjsonWriter] | type[ParquetWriter]


FORMATS = {
    "csv": Format("text/csv; charset=utf-8", "csv", CsvWriter),
    "ndjson": Format("application/x-ndjson", "ndjson", NdjsonWriter),
    "parquet": Format("application/vnd.apache.parquet", "parquet", ParquetWriter),
}
