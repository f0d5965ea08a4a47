"""Limits against abusive queries: depth, aliases and tokens (strawberry's own limiters) and
a cost limit that counts list fields by their page size, with the request's variables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.validation import ASTValidationRule
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.schema import validate_document

from resolvers.errors import Refusal
from resolvers.paging import DEFAULT_PAGE
from settings import Limits

# How strawberry's limiters word their refusals, and the code each gets.
LIMIT_CODES = (
    ("exceeds maximum operation depth", "QUERY_TOO_DEEP"),
    ("aliases found. Allowed:", "TOO_MANY_ALIASES"),
    ("Document contains more than", "TOO_MANY_TOKENS"),
)


def limit_code(message: str) -> str | None:
    return next((code for phrase, code in LIMIT_CODES if phrase in message), None)


class QueryTooCostly(Refusal):
    """A query whose cost exceeds the limit; carries its code on itself, not in its wording."""

    code = "QUERY_TOO_COSTLY"


def limit_extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    # The depth and alias rules are made once: strawberry's limiters made per request would
    # be new rule classes every time, which no validation cache can recognise.
    rules = (
        *QueryDepthLimiter(max_depth=limits.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    )
    validated: dict[str, list[GraphQLError]] = {}
    return [
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: CachedValidation(rules, validated),
        lambda: QueryCost(limits.max_cost),
    ]


class CachedValidation(SchemaExtension):
    """Validation with the limit rules, remembered by the document's text: a known document
    is neither validated nor hashed node by node again (the schema does not change)."""

    MAX_DOCUMENTS = 512

    def __init__(
        self, rules: tuple[type[ASTValidationRule], ...], validated: dict[str, list[GraphQLError]]
    ) -> None:
        self.rules = rules
        self.validated = validated

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        errors = self.validated.get(context.query or "")
        if errors is None and context.graphql_document is not None:
            errors = validate_document(
                context.schema._schema,  # type: ignore[attr-defined]
                context.graphql_document,
                (*context.validation_rules, *self.rules),
            )
            if len(self.validated) >= self.MAX_DOCUMENTS:
                self.validated.clear()
            self.validated[context.query or ""] = errors
        context.pre_execution_errors = errors
        yield


class QueryCost(SchemaExtension):
    """Refuses, before anything runs, a query whose cost exceeds the limit: each field costs
    1, and what a paged field selects counts as many times as its page size (`first`, or the
    default page when it is not given)."""

    def __init__(self, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.result is None:
            schema: GraphQLSchema = context.schema._schema  # type: ignore[attr-defined]
            cost = document_cost(
                schema, document.definitions, context.operation_name, context.variables or {}
            )
            if cost > self.max_cost:
                message = (
                    f"The query would cost {cost}, more than the limit of {self.max_cost}: "
                    "ask for smaller pages (`first`) or fewer nested lists."
                )
                context.result = ExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(
                            message,
                            original_error=QueryTooCostly(message),
                            extensions={"code": QueryTooCostly.code, "cost": cost, "limit": self.max_cost},
                        )
                    ],
                )
        yield


def document_cost(
    schema: GraphQLSchema, definitions: Any, operation_name: str | None, variables: dict[str, Any]
) -> int:
    fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    cost = 0
    for operation in operations[:1]:
        root = schema.get_root_type(operation.operation)
        if root is not None:
            values = _coerced(schema, operation, variables)
            cost += _selection_cost(schema, root, operation.selection_set, fragments, values)
    return cost


def _coerced(
    schema: GraphQLSchema, operation: OperationDefinitionNode, variables: dict[str, Any]
) -> dict[str, Any]:
    """The variables as execution will see them: operation defaults applied, `4.0` read as 4.
    Values that do not coerce are refused by execution itself; they count as given."""
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
    return coerced.coerced if isinstance(coerced, VariableValues) else variables


def _selection_cost(
    schema: GraphQLSchema,
    parent: Any,
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> int:
    if selection_set is None:
        return 0
    cost = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            name = selection.name.value
            if name.startswith("__"):
                continue
            fields = parent.fields if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) else {}
            definition = fields.get(name)
            if definition is None:
                continue
            child = _selection_cost(
                schema, get_named_type(definition.type), selection.selection_set, fragments, variables
            )
            multiplier = _page_size(selection, variables) if "first" in definition.args else 1
            cost += 1 + multiplier * child
        elif isinstance(selection, InlineFragmentNode):
            condition = (
                schema.get_type(selection.type_condition.name.value) if selection.type_condition else parent
            )
            cost += _selection_cost(schema, condition, selection.selection_set, fragments, variables)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                condition = schema.get_type(fragment.type_condition.name.value)
                cost += _selection_cost(schema, condition, fragment.selection_set, fragments, variables)
    return cost


def _page_size(field: FieldNode, variables: dict[str, Any]) -> int:
    for argument in field.arguments or ():
        if argument.name.value != "first":
            continue
        if isinstance(argument.value, IntValueNode):
            return max(1, int(argument.value.value))
        if isinstance(argument.value, VariableNode):
            value = variables.get(argument.value.name.value)
            return max(1, int(value)) if isinstance(value, int) else DEFAULT_PAGE
    return DEFAULT_PAGE
