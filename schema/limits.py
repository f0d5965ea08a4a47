"""Limits that bound a request's work before it starts, and while it runs.

Before graphql-core validates a document, its expansion is measured in linear work
(schema/expansion.py): a fragment cycle, a nesting deeper than `max_nesting`, more than
`max_nodes` selections, a depth over `max_depth` or more than `max_aliases` aliases is
refused without validating. graphql-core's comparison of same-named fields is metered by
its own budget, set to `max_nodes`. A valid document is then costed (schema/cost.py) with
the request's variables. All these are pre-execution errors, so HTTP answers them with no
data and WebSocket with an `error` message. While it runs, a request may resolve at most
`max_resolved_fields` fields. Tokens are counted by the parser (strawberry's limiter).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from graphql import ExecutionResult, GraphQLError, GraphQLSchema
from graphql.validation import ASTValidationRule, OverlappingFieldsCanBeMergedRule, ValidationContext
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import MaxTokensLimiter, SchemaExtension
from strawberry.schema.schema import validate_document

from domain.errors import ErrorCode, Refusal
from domain.limits import Limits
from schema.cost import document_cost, uses_statistics
from schema.expansion import Walk, measure, walk
from schema.text_rules import NoNulInText

if TYPE_CHECKING:
    from identity.store import HubStore

# How strawberry's token limiter words its refusal, and the code it gets.
LIMIT_CODES = (("Document contains more than", ErrorCode.TOO_MANY_TOKENS),)
# What graphql-core says when one of its budgets is spent (a RecursionError reads the same).
ABORTED = "Validation aborted."
# Statistics costed without a hub store (no such request runs) count as this many persons.
UNKNOWN_PERSONS = 1_000_000


def limit_code(message: str) -> str | None:
    return next((code for phrase, code in LIMIT_CODES if phrase in message), None)


class ResultTooLarge(Refusal):
    """A request that resolved more fields than its budget; it is answered without data."""

    code = ErrorCode.RESULT_TOO_LARGE


def limit_extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    # Made once: a rule class made per request could not be recognised by any cache.
    overlap = _budgeted_overlap_rule(limits.max_nodes)
    validated: dict[str, list[GraphQLError]] = {}
    persons = PersonCount()
    return [
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: DocumentLimits(limits, overlap, validated, persons),
        lambda: FieldBudget(limits.max_resolved_fields),
    ]


def _budgeted_overlap_rule(budget: int) -> type[ASTValidationRule]:
    class BudgetedOverlap(OverlappingFieldsCanBeMergedRule):
        """graphql-core's rule with its work meter set to the hub's node budget (its module
        default, 500,000 units, spends about a second of CPU on one document)."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.rule_context.remaining_complexity_budget = budget

    return BudgetedOverlap


class PersonCount:
    """The number of persons in the hub store's index, read at most once a minute per
    process: it bounds the cells of a statistics table, so its cost."""

    REFRESH_SECONDS = 60.0

    def __init__(self) -> None:
        self.known: tuple[HubStore, int, float] | None = None

    async def of(self, store: HubStore | None) -> int:
        if store is None:
            return UNKNOWN_PERSONS
        now = time.monotonic()
        if self.known is not None and self.known[0] is store and now - self.known[2] < self.REFRESH_SECONDS:
            return self.known[1]
        count = await store.indexed_persons()
        self.known = (store, count, now)
        return count


class DocumentLimits(SchemaExtension):
    """Measures, validates (remembered by the document's text: the schema does not change)
    and costs the document; every refusal is a pre-execution error with its code."""

    MAX_DOCUMENTS = 512

    def __init__(
        self,
        limits: Limits,
        overlap: type[ASTValidationRule],
        validated: dict[str, list[GraphQLError]],
        persons: PersonCount,
    ) -> None:
        self.limits = limits
        self.overlap = overlap
        self.validated = validated
        self.persons = persons

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is None:
            yield
            return
        schema: GraphQLSchema = context.schema._schema
        key = context.query or ""
        errors = self.validated.get(key)
        walked: Walk | None = None
        if errors is None:
            walked = walk(document)
            errors = self._refusals(walked)
            if not errors:
                rules = (
                    *(
                        self.overlap if rule is OverlappingFieldsCanBeMergedRule else rule
                        for rule in context.validation_rules
                    ),
                    NoNulInText,
                )
                errors = [self._coded(e) for e in validate_document(schema, document, rules)]
            if len(self.validated) >= self.MAX_DOCUMENTS:
                self.validated.clear()
            self.validated[key] = errors
        if not errors:
            walked = walked or walk(document)
            store = getattr(context.context, "store", None)
            persons = await self.persons.of(store) if uses_statistics(walked) else 0
            cost = document_cost(schema, walked, context.operation_name, context.variables or {}, persons)
            if cost > self.limits.max_cost:
                errors = [_too_costly(cost, self.limits.max_cost)]
        context.pre_execution_errors = errors
        yield

    def _refusals(self, walked: Walk) -> list[GraphQLError]:
        """The first limit the expanded document breaks, measured without expanding it."""
        limits = self.limits
        if walked.cycle is not None:
            return [_cycle(walked)]
        found = measure(walked, cap=limits.max_nodes + 1)
        if found.nesting > limits.max_nesting:
            message = (
                f"The document nests {found.nesting} levels deep through its fields and fragments, "
                f"more than the limit of {limits.max_nesting}: spread fragments less deeply."
            )
            return [
                _refusal(
                    message, ErrorCode.QUERY_TOO_COMPLEX, nesting=found.nesting, limit=limits.max_nesting
                )
            ]
        if found.nodes > limits.max_nodes:
            message = (
                f"The document expands to more than {limits.max_nodes} fields and fragments (a fragment "
                "counts at every spread), the limit: spread fewer fragments or ask for less."
            )
            return [_refusal(message, ErrorCode.QUERY_TOO_COMPLEX, limit=limits.max_nodes)]
        for name, depth in found.depths.items():
            if depth > limits.max_depth:
                message = (
                    f"'{name}' exceeds maximum operation depth of {limits.max_depth}: it is {depth} deep."
                )
                return [_refusal(message, ErrorCode.QUERY_TOO_DEEP, depth=depth, limit=limits.max_depth)]
        if found.aliases > limits.max_aliases:
            message = (
                f"The document has {found.aliases} aliases (a fragment counts at every spread), more than "
                f"the limit of {limits.max_aliases}."
            )
            return [
                _refusal(message, ErrorCode.TOO_MANY_ALIASES, aliases=found.aliases, limit=limits.max_aliases)
            ]
        return []

    def _coded(self, error: GraphQLError) -> GraphQLError:
        """graphql-core's abort when a budget is spent becomes a refusal naming the limit."""
        if not isinstance(error, ValidationAbortedError) or error.message != ABORTED:
            return error
        message = (
            "The document is too complex to validate (the same field asked for too often, or "
            f"fragments nested too deeply) within the limit of {self.limits.max_nodes} steps: ask for "
            "each field once."
        )
        return _refusal(message, ErrorCode.QUERY_TOO_COMPLEX, limit=self.limits.max_nodes)


def _refusal(message: str, code: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def _too_costly(cost: int, limit: int) -> GraphQLError:
    message = (
        f"The query would cost {cost}, more than the limit of {limit}: ask for smaller pages (`first`), "
        "fewer nested lists or fewer statistics dimensions."
    )
    return _refusal(message, ErrorCode.QUERY_TOO_COSTLY, cost=cost, limit=limit)


def _cycle(walked: Walk) -> GraphQLError:
    assert walked.cycle is not None
    first, *via = walked.cycle
    named = ", ".join(f"'{name}'" for name in via[:5]) + (f" and {len(via) - 5} more" if len(via) > 5 else "")
    message = f"Cannot spread fragment '{first}' within itself" + (f" via {named}." if via else ".")
    return GraphQLError(
        message, nodes=[walked.fragments[first][0]], extensions={"code": ErrorCode.GRAPHQL_VALIDATION_FAILED}
    )


class FieldBudget(SchemaExtension):
    """Counts the fields a request resolves; past the budget every further field fails at once
    (nothing more is read) and the request is answered with one RESULT_TOO_LARGE error and no
    data. A subscription's budget is per event."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.resolved = 0

    def resolve(self, _next: Callable[..., Any], root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        self.resolved += 1
        if self.resolved > self.limit:
            raise ResultTooLarge(self._message())
        return _next(root, info, *args, **kwargs)

    def spend(self) -> bool:
        """Count one field answered without this hook (the planned path); False once the
        budget is spent, when the field must go through `resolve` to fail."""
        if self.resolved >= self.limit:
            return False
        self.resolved += 1
        return True

    def on_execute(self) -> Iterator[None]:
        yield
        self._stop(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self._stop(result)
        self.resolved = 0
        yield

    def _stop(self, result: ExecutionResult | Any) -> None:
        if result is None or self.resolved <= self.limit:
            return
        result.data = None
        result.errors = [_refusal(self._message(), ResultTooLarge.code, limit=self.limit)]

    def _message(self) -> str:
        return (
            f"The answer would resolve more than {self.limit} fields, the limit: "
            "ask for smaller pages (`first`) or fewer nested lists."
        )
