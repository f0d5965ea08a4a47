"""Every error leaves the hub with an `extensions.code`; nothing unexpected leaves it unmasked.

Client mistakes name the argument and the rule; unreadable legacy rows name the agency and
the record; anything else is masked (no stack trace, SQL or legacy message reaches a client)
and logged by code and path only, never with personal data.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension

from domain.errors import AdapterError, ClientError, ErrorCode, Refusal, SourceDataInvalid, SourceUnavailable
from domain.records import DataProblem
from schema.limits import limit_code

log = logging.getLogger("hub.errors")

MASKED_MESSAGE = "Unexpected error; it has been logged."


def problem_extensions(problem: DataProblem) -> dict[str, Any]:
    return {
        "code": ErrorCode.SOURCE_DATA_INVALID,
        "agency": str(problem.agency),
        "recordKey": problem.record_key,
        "field": problem.field,
    }


def shaped(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if original is None:
        if (error.extensions or {}).get("code"):
            return error  # coded where it was raised
        code = limit_code(error.message)
        if code is not None:
            return _with(error, error.message, {"code": code})
        if isinstance(error, GraphQLSyntaxError):
            return _with(error, error.message, {"code": ErrorCode.GRAPHQL_PARSE_FAILED})
        # graphql-core's own findings: the document's, or the variables' values.
        about_variables = error.message.startswith("Variable '$") or not error.locations
        code = ErrorCode.BAD_USER_INPUT if about_variables else ErrorCode.GRAPHQL_VALIDATION_FAILED
        return _with(error, error.message, {**(error.extensions or {}), "code": code})
    if isinstance(original, GraphQLError):
        # graphql-core's own rejection of an argument value (a @oneOf violation, a bad enum).
        return _with(error, error.message, {"code": ErrorCode.BAD_USER_INPUT})
    if isinstance(original, ClientError):
        return _with(error, str(original), {"code": original.code, "field": original.field})
    if isinstance(original, Refusal):
        field = getattr(original, "field", None)
        return _with(error, str(original), {"code": original.code, **({"field": field} if field else {})})
    if isinstance(original, SourceDataInvalid):
        return _with(error, str(original), problem_extensions(original.problem))
    if isinstance(original, AdapterError):
        # A SourceUnavailable's message says why (budget, breaker, connection) and nothing more.
        unavailable = isinstance(original, SourceUnavailable)
        message = str(original) if unavailable else f"The {original.agency} source could not answer."
        return _with(error, message, {"code": ErrorCode.SOURCE_UNAVAILABLE, "agency": str(original.agency)})
    log.error("unexpected %s at %s", type(original).__name__, error.path, exc_info=original)
    return _with(error, MASKED_MESSAGE, {"code": ErrorCode.INTERNAL_SERVER_ERROR})


def with_code(error: GraphQLError) -> GraphQLError:
    """The error as it is when it already has a code, else shaped (masked if unexpected)."""
    return error if (error.extensions or {}).get("code") else shaped(error)


def _with(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def shape_all(
    errors: Iterable[GraphQLError] | None,
    problems: list[tuple[tuple[str | int, ...], DataProblem]] | None = None,
) -> list[GraphQLError] | None:
    """An answer's errors, each with its code (one already coded is kept as it is, so nothing is
    shaped twice), and the problems found in values that still answered, which are taken; in
    the document's order."""
    shaped_errors = [with_code(error) for error in errors or ()]
    for path, problem in problems or ():
        shaped_errors.append(
            GraphQLError(problem.describe(), path=list(path), extensions=problem_extensions(problem))
        )
    if problems:
        problems.clear()
    # graphql-core lists errors as its awaitables settle, which varies from run to run: the same
    # request answers its errors in one order, the document's (then the path's).
    shaped_errors.sort(key=_document_order)
    return shaped_errors or None


_NO_LOCATION = (sys.maxsize, sys.maxsize)


def _document_order(error: GraphQLError) -> tuple[tuple[int, int], tuple[tuple[int, int | str], ...]]:
    first = error.locations[0] if error.locations else None
    where = (first.line, first.column) if first is not None else _NO_LOCATION
    # A list index sorts before a field name at the same depth (they never meet on one parent).
    path = tuple((0, step) if isinstance(step, int) else (1, step) for step in error.path or ())
    return where, path


class ShapeErrors(SchemaExtension):
    """Gives every error its code, and adds the problems found in values that still answered."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None:
            result.errors = shape_all(
                result.errors, getattr(self.execution_context.context, "problems", None)
            )


class SourceTraceReport(SchemaExtension):
    """`extensions.sources` with each source's statement count and time, when the request asked."""

    def get_results(self) -> dict[str, Any]:
        trace = getattr(self.execution_context.context, "trace", None)
        return {"sources": trace.report()} if trace is not None else {}
