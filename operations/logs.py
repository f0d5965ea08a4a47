"""Structured logs: one JSON object per line (python-json-logger), through the standard
logging module, for the hub's own loggers and uvicorn's alike.

Every line has `time` (UTC, RFC 3339), `level`, `logger` and `message`; a line logged while a
request is being answered also has its `request_id`. The request line itself (`hub.request`,
operations/requests.py) adds the caller's client, role and purpose, the status, the duration and
each source's statement count and time. Nothing personal is ever logged: no query document,
variables, response body, name, identifier or case reference; a CARDHOLDER token issued at
registration names its person after `/cardholder/`, and that part is cut from the client.

Exceptions are logged by type and stack frames (file, line, function) only, never by message:
a message may quote the value that failed (a permit number, a document a client sent). The same
text quoted in the line's message (asyncio's "Task exception was never retrieved" shows the
exception's repr) is replaced by the exception's type. uvicorn's WebSocket lines lose the
client's address and the query string.
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from pythonjsonlogger.orjson import OrjsonFormatter

from domain.records import CallerRole
from tracing.request import current_request

if TYPE_CHECKING:
    from access.caller import Caller

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# Libraries whose debug (or info) lines carry statements with their parameters, or URLs: they
# log warnings and errors only, whatever the hub's level, so DEBUG never leaks personal data.
LIBRARIES = ("aiosqlite", "asyncpg", "sqlalchemy", "httpx", "httpcore", "urllib3", "opentelemetry")


class JsonLines(OrjsonFormatter):
    """`{"time": ..., "level": ..., "logger": ..., "message": ..., <extra fields>}` per line."""

    def __init__(self) -> None:
        super().__init__(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def formatException(
        self, ei: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
    ) -> str:
        return outline(ei[1]) if ei[1] is not None else ""

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        if isinstance(log_record.get("message"), str):
            log_record["message"] = _message(record, log_record["message"])

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        log_data.pop("color_message", None)  # uvicorn's terminal copy of the message
        return log_data


CAUSE = "The above exception was the direct cause of the following exception:"
CONTEXT = "During handling of the above exception, another exception occurred:"


def outline(error: BaseException) -> str:
    """A traceback without messages or source lines: the exceptions of the chain, oldest first
    as Python prints them, each by its frames (file, line, function) and its type."""
    newest_first: list[tuple[BaseException, str | None]] = []  # each with how its older one led to it
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None:
        seen.add(id(current))
        older, how = None, None
        if current.__cause__ is not None:
            older, how = current.__cause__, CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            older, how = current.__context__, CONTEXT
        if older is not None and id(older) in seen:
            older, how = None, None
        newest_first.append((current, how))
        current = older
    parts: list[str] = []
    for exception, how in reversed(newest_first):
        if how:
            parts.append(how)
        frames = traceback.StackSummary.extract(
            traceback.walk_tb(exception.__traceback__), lookup_lines=False
        )
        lines = ["Traceback (most recent call last):"] if frames else []
        lines += [f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}' for frame in frames]
        lines.append(f"{_type_name(exception)} (message not logged)")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _type_name(error: BaseException) -> str:
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _message(record: logging.LogRecord, message: str) -> str:
    """The line's message without what it may quote of a client's request or an exception."""
    if (
        record.name.startswith("uvicorn")
        and isinstance(record.msg, str)
        and '"WebSocket %s"' in record.msg
        and isinstance(record.args, tuple)
        and len(record.args) >= 2
    ):
        path = str(record.args[1]).split("?", 1)[0]
        message = record.msg % ("-", path, *record.args[2:])
    error = record.exc_info[1] if record.exc_info else None
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        for text in (repr(error), str(error)):
            if text.strip():
                message = message.replace(text, _type_name(error))
        error = error.__cause__ or error.__context__
    return message


class RequestIdFilter(logging.Filter):
    """Adds the id of the request being answered to every line logged meanwhile."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            current = current_request.get()
            if current is not None:
                record.request_id = current.request_id
        return True


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """JSON lines on stderr (or `stream`) for every logger, at `level` and above."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.setLevel(logging.NOTSET)  # the root's level; uvicorn.run sets its own
        uvicorn_logger.propagate = True
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler


def client_of(caller: Caller | None) -> str | None:
    """The client a log line names: the token's subject, less any person it names."""
    if caller is None:
        return None
    subject = caller.subject
    if caller.role is CallerRole.CARDHOLDER:
        subject = subject.split("/cardholder/", 1)[0]
    return subject[:100] or None


def request_fields(record: Any, caller: Caller | None) -> dict[str, Any]:
    """The fields of a request's log line."""
    fields: dict[str, Any] = {
        "request_id": record.request_id,
        "method": record.method,
        "route": record.route,
        "operation": record.operation,
        "status": record.status,
        "duration_ms": round(record.seconds * 1000, 1),
        "client": client_of(caller),
        "role": caller.role.value if caller is not None and caller.authenticated else None,
        "purpose": caller.purpose if caller is not None else None,
        "sources": record.trace.report(),
    }
    if record.errors:
        counted: dict[str, int] = {}
        for code, _agency in record.errors:
            counted[code] = counted.get(code, 0) + 1
        fields["errors"] = counted
    if record.trace_id:
        fields["trace_id"] = record.trace_id
    return fields
