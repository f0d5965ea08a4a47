"""`hub export`'s side of an export: GET /exports/<name> streamed into a file, with a
progress bar on stderr (rows against the hub's `X-Export-Rows` for CSV and NDJSON, bytes for
Parquet). The file appears only once the transfer is complete; a refusal prints the hub's
message, and a cut transfer (the hub stops a stream whose audit it cannot write) leaves no file."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

CHUNK = 64 * 1024
LINE_FORMATS = {"csv": 1, "ndjson": 0}  # each format's header lines
ROWS_HEADER = "x-export-rows"


class DownloadFailed(Exception):
    """What went wrong, in words for the person at the command line."""


@dataclass(frozen=True)
class ExportRequest:
    base_url: str
    name: str
    file_format: str
    params: Sequence[tuple[str, str]]
    token: str
    purpose: str | None = None

    def url(self) -> str:
        query = urlencode([("format", self.file_format), *self.params])
        return f"{self.base_url.rstrip('/')}/exports/{quote(self.name)}?{query}"

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            **({"X-Purpose": self.purpose} if self.purpose else {}),
        }


def download(export: ExportRequest, output: Path, console: Console) -> int:
    """The export written to `output`; answers how many rows (or bytes, for Parquet) came."""
    partial = output.with_name(output.name + ".part")
    try:
        with urllib.request.urlopen(
            urllib.request.Request(export.url(), headers=export.headers())
        ) as response:
            rows = response.headers.get(ROWS_HEADER)
            received = _stream(response, partial, export, int(rows) if rows else None, console)
    except urllib.error.HTTPError as error:
        raise DownloadFailed(f"the hub refused ({error.code}): {_message(error.read())}") from None
    except (http.client.IncompleteRead, http.client.HTTPException, OSError) as error:
        partial.unlink(missing_ok=True)
        raise DownloadFailed(f"the transfer was cut ({type(error).__name__}); no file was written") from None
    partial.replace(output)
    return received


def _stream(
    response: http.client.HTTPResponse,
    partial: Path,
    export: ExportRequest,
    rows: int | None,
    console: Console,
) -> int:
    header_lines = LINE_FORMATS.get(export.file_format)
    counting: ProgressColumn = MofNCompleteColumn() if header_lines is not None else DownloadColumn()
    columns = (TextColumn("{task.description}"), BarColumn(), counting, TimeElapsedColumn())
    with Progress(*columns, console=console) as progress, partial.open("wb") as out:
        task = progress.add_task(export.name, total=rows if header_lines is not None else None)
        lines = 0
        received = 0
        while chunk := response.read(CHUNK):
            out.write(chunk)
            received += len(chunk)
            if header_lines is not None:
                lines += chunk.count(b"\n")
                progress.update(task, completed=max(lines - header_lines, 0))
            else:
                progress.update(task, completed=received)
        progress.update(task, total=progress.tasks[0].completed)
    return max(lines - header_lines, 0) if header_lines is not None else received


def _message(body: bytes) -> str:
    """The first error message of the hub's JSON refusal, else the body's start."""
    try:
        return str(json.loads(body)["errors"][0]["message"])
    except (ValueError, KeyError, IndexError, TypeError):
        return body.decode("utf-8", "replace")[:200]
