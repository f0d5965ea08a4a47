"""The ids a caller (a gateway in front of the hub) sends with its request, adopted only when
well-formed: an `X-Request-Id` that is a UUID (what gateways and proxies generate) becomes the
request's id (in the answer, the log line and the audit record), the W3C `traceparent`'s trace
id the request's trace id. Anything else is ignored and the hub makes its own: free text in a
request id could carry a name or a permit number into the logs."""

from __future__ import annotations

import re
from collections.abc import Iterable

REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
# version "-" trace-id "-" parent-id "-" flags (https://www.w3.org/TR/trace-context/#traceparent-header).
TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of a header, by its lower-case name."""
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def request_id_of(value: str | None) -> str | None:
    """The caller's request id, in lower case, if it is a UUID."""
    if value is None or not REQUEST_ID.fullmatch(value.strip()):
        return None
    return value.strip().lower()


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a valid `traceparent` (version ff and all-zero ids are invalid)."""
    if traceparent is None:
        return None
    match = TRACEPARENT.fullmatch(traceparent.strip())
    if match is None:
        return None
    version, trace_id, parent_id, _flags = match.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id
