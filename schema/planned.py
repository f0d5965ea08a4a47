"""The planned path: leaf fields answered by a plan made once per grant, not field by field.

graphql-core resolves every field through the same chain: a resolve-info object, the
extensions' `resolve` hooks (access control, the field budget), strawberry's wrapper, then
`complete_value`. Four fields in five of a typical answer are leaves read off a record the
adapters already mapped (`number`, `validTo`, `status`), for which that chain decides nothing
the grant did not decide already. This execution context keeps graphql-core for everything
else (objects, lists, resolvers with arguments, errors, mutations, the subscription,
introspection), and answers those leaves from a plan:

- per (schema, grant) and object type, the leaf fields the grant reads plainly
  (`AccessControl.reads_plainly`: type reached, field granted, no argument tested) whose
  resolver is strawberry's default attribute read, each with its serializer;
- per field at run time: the attribute read and serialized in a loop, its path noted for the
  audit exactly as the access hook notes it, one field of the budget spent.

Whatever the plan cannot answer as the chain would (a null on a non-null field, a value the
serializer refuses, a field past the budget) goes through graphql-core's own `execute_field`,
hooks and all, so its error is the one it always was. `tests/test_planned.py` runs documents
through both paths and compares answers, errors and audit records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
)
from graphql.execution.collect_fields import GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from access.policy import Grant
from resolvers.context import Context
from schema.access import AccessControl
from schema.limits import FieldBudget

# Fields answered by the plan and by graphql-core's chain, since the process started (the
# metrics read it): how much of the traffic the plan covers.
fields_answered: Counter[str] = Counter()

# A planned leaf: (the field's resolver, its serializer, whether null is allowed).
Leaf = tuple[Callable[..., Any], Callable[[Any], Any], bool]

_PLANS: dict[tuple[int, int], tuple[Grant, dict[str, dict[str, Leaf]]]] = {}


def _plan_of(schema: GraphQLSchema, grant: Grant) -> dict[str, dict[str, Leaf]]:
    """The plan of one grant on one schema: the plainly read leaves of each object type,
    filled in per type as the type is first met (grants live as long as their policy)."""
    key = (id(schema), id(grant))
    known = _PLANS.get(key)
    if known is not None and known[0] is grant:
        return known[1]
    plan: dict[str, dict[str, Leaf]] = {}
    _PLANS[key] = (grant, plan)
    return plan


def _plan_type(parent_type: GraphQLObjectType, access: AccessControl, context: Context) -> dict[str, Leaf]:
    leaves: dict[str, Leaf] = {}
    for name, definition in parent_type.fields.items():
        resolve = definition.resolve
        if definition.args or resolve is None or not getattr(resolve, "_is_default", False):
            continue  # a resolver of its own, or arguments: graphql-core's chain
        if not access.reads_plainly(context, (parent_type.name, name)):
            continue
        output = definition.type
        nullable = not isinstance(output, GraphQLNonNull)
        named = output.of_type if isinstance(output, GraphQLNonNull) else output
        if isinstance(named, GraphQLScalarType | GraphQLEnumType):
            leaves[name] = (resolve, named.serialize, nullable)
    return leaves


class PlannedExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution, with the plan answering the leaves it covers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The grant's plan, and the two hooks whose work it does; None: no plan, every field
        # through the chain (no hub context, or a hook the plan does not know).
        self._planned: tuple[dict[str, dict[str, Leaf]], AccessControl, FieldBudget] | None = None
        context = self.context_value
        if not isinstance(context, Context) or self.middleware_manager is None:
            return
        access = [hook for hook in self.middleware_manager.middlewares if isinstance(hook, AccessControl)]
        budget = [hook for hook in self.middleware_manager.middlewares if isinstance(hook, FieldBudget)]
        if len(access) == len(budget) == 1 and len(self.middleware_manager.middlewares) == 2:
            self._planned = (_plan_of(self.schema, context.grant), access[0], budget[0])

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if self._planned is None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        plan, access, budget = self._planned
        leaves = plan.get(parent_type.name)
        if leaves is None:
            leaves = plan[parent_type.name] = _plan_type(parent_type, access, self.context_value)
        type_name = parent_type.name
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        planned = 0
        try:
            for response_name, field_details_list in grouped_field_set.items():
                field_path = Path(path, response_name, type_name)
                node = field_details_list[0].node
                leaf = leaves.get(node.name.value)
                if leaf is not None and not node.arguments:
                    value = leaf[0](source_value, None)
                    if value is None:
                        answered = leaf[2]
                        serialized = None
                    else:
                        try:
                            serialized = leaf[1](value)
                        except Exception:  # the chain names the refusal, at this path
                            serialized = None
                        answered = serialized is not None and serialized is not Undefined
                    if answered and budget.spend():
                        access.note_leaf(field_path, node.name.value)
                        results[response_name] = serialized
                        planned += 1
                        continue
                result = self.execute_field(
                    parent_type, source_value, field_details_list, field_path, position_context
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        finally:
            fields_answered["plan"] += planned
            fields_answered["resolvers"] += len(results) - planned
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()
