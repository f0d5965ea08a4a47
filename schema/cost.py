"""What a query may cost at most, counted on the expanded document before anything runs.

Every field costs 1, and what a field selects counts as many times as the field may answer
items: a paged field its page (`first`, else the default page), federation's `_entities` its
representations, an unpaged list its worst size (`WORST_SIZES`), `workforceStatistics` its
worst number of cells and a statistics row's `keys` the dimensions asked for. Aliases are
fields of their own; a fragment counts at each spread, its cost taken once
(schema/expansion.py) so counting stays linear in the document.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from graphql import (
    EnumValueNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
)
from graphql.execution.values import VariableValues, get_variable_values

from domain.records import StatisticsDimension, WorkPermitStatus
from opaque.cursors import DEFAULT_PAGE
from schema.expansion import Flat, Walk

STATISTICS = ("Query", "workforceStatistics")
ENTITIES = ("Query", "_entities")  # federation's: as many items as representations given
STATISTICS_KEYS = ("StatisticsRow", "keys")

# How many items an unpaged list may hold for one parent, generously above what the agencies'
# records show: a person's passports over a working life, permit periods (the first, yearly
# extensions, changes) and the events of one period, visas, insurance participations (five
# insurances, a few employers), residence permits, and links (a few records per agency).
WORST_SIZES: dict[tuple[str, str], int] = {
    ("Person", "passports"): 5,
    ("Person", "identityLinks"): 20,
    ("Person", "workPermits"): 10,
    ("WorkPermit", "history"): 10,
    ("Person", "visas"): 10,
    ("Person", "insuranceParticipations"): 20,
    ("Person", "residencePermits"): 5,
}
WORST_LIST = 10  # any other unpaged list of objects (a payload's userErrors, ...)

# The most values a statistics dimension can take, NONE included; EMPLOYER has no bound but
# the number of persons. A table has at most as many cells as persons (no empty cell is
# returned), and at most the product of its dimensions' values.
CARDINALITIES: dict[str, int | None] = {
    StatisticsDimension.NATIONALITY.value: 250,  # ISO 3166-1 alpha-3 (249) and one spare
    StatisticsDimension.TALENT_CATEGORY.value: 4,  # A, B, C, NONE
    StatisticsDimension.PERMIT_STATUS.value: len(WorkPermitStatus) + 1,
    StatisticsDimension.WORK_DISTRICT.value: 17,  # Beijing's 16 districts, NONE
    StatisticsDimension.EMPLOYER.value: None,
    StatisticsDimension.INSURED.value: 2,
}


# The filter fields that fix a dimension to one value, by GraphQL and by Python name.
FILTERED: dict[str, str] = {
    "nationality": StatisticsDimension.NATIONALITY.value,
    "permitStatus": StatisticsDimension.PERMIT_STATUS.value,
    "category": StatisticsDimension.TALENT_CATEGORY.value,
    "employerCreditCode": StatisticsDimension.EMPLOYER.value,
    "workDistrict": StatisticsDimension.WORK_DISTRICT.value,
    "insured": StatisticsDimension.INSURED.value,
}
PYTHON_NAMES = {
    "permitStatus": "permit_status",
    "employerCreditCode": "employer_credit_code",
    "workDistrict": "work_district",
}


def statistics_cells(dimensions: list[str], persons: int, fixed: frozenset[str] = frozenset()) -> int:
    """The most rows a table of these dimensions answers: a dimension the filter fixes has
    one value in them."""
    worst = [1 if d in fixed else CARDINALITIES.get(d) for d in dimensions]
    if any(w is None for w in worst):
        return max(persons, 1)
    return max(min(math.prod(w for w in worst if w is not None), persons), 1)


def uses_statistics(walked: Walk) -> bool:
    """Whether the document asks for statistics anywhere (their cost needs the persons count)."""
    flats = [flat for _, flat in walked.operations] + [flat for _, flat in walked.fragments.values()]
    return any(
        isinstance(s, FieldNode) and s.name.value == STATISTICS[1] for flat in flats for s in flat.selections
    )


def document_cost(
    schema: GraphQLSchema,
    walked: Walk,
    operation_name: str | None,
    variables: Mapping[str, Any],
    persons: int,
) -> int:
    """The cost of the operation that would run (the named one, else the first), with the
    request's variables; `persons` bounds the cells of statistics. The walk must be free of
    fragment cycles (schema/limits.py refuses those first)."""
    operations = [
        (operation, flat)
        for operation, flat in walked.operations
        if not operation_name or (operation.name and operation.name.value == operation_name)
    ]
    if not operations:
        return 0
    operation, flat = operations[0]
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    counter = _Counter(schema, _coerced(schema, operation, variables), persons)
    for name in walked.order:
        fragment, fragment_flat = walked.fragments[name]
        condition = schema.get_type(fragment.type_condition.name.value)
        counter.fragments[name] = counter.cost(fragment_flat, condition)
    return counter.cost(flat, root)


def _coerced(
    schema: GraphQLSchema, operation: OperationDefinitionNode, variables: Mapping[str, Any]
) -> Mapping[str, Any]:
    """The variables as execution will see them: operation defaults applied, `4.0` read as 4.
    Values that do not coerce are refused by execution itself; they count as given."""
    coerced = get_variable_values(schema, operation.variable_definitions or (), dict(variables))
    return coerced.coerced if isinstance(coerced, VariableValues) else variables


class _Counter:
    def __init__(self, schema: GraphQLSchema, variables: Mapping[str, Any], persons: int) -> None:
        self.schema = schema
        self.variables = variables
        self.persons = persons
        self.fragments: dict[str, int] = {}

    def cost(self, flat: Flat, root: GraphQLNamedType | None) -> int:
        """Types flow down in pre-order (each selection's parent type is known when it is
        reached), costs fold up from the last selection, as in schema/expansion.py."""
        count = len(flat.selections)
        parent_types: list[GraphQLNamedType | None] = [None] * count
        inner_types: list[GraphQLNamedType | None] = [None] * count
        fields: list[GraphQLField | None] = [None] * count
        # Under a statistics field: its dimensions, which its rows' `keys` answer one by one.
        dimensions: list[list[str] | None] = [None] * count
        fixed: list[frozenset[str]] = [frozenset()] * count
        for index, selection in enumerate(flat.selections):
            up = flat.parents[index]
            parent = root if up < 0 else inner_types[up]
            parent_types[index] = parent
            dimensions[index] = None if up < 0 else dimensions[up]
            if isinstance(selection, FieldNode):
                own = parent.fields if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) else {}
                field = None if selection.name.value.startswith("__") else own.get(selection.name.value)
                fields[index] = field
                inner_types[index] = get_named_type(field.type) if field is not None else None
                if parent is not None and (parent.name, selection.name.value) == STATISTICS:
                    dimensions[index] = self._dimensions(selection)
                    fixed[index] = self._fixed(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner_types[index] = self.schema.get_type(condition.name.value) if condition else parent
        inner = [0] * (count + 1)
        for index in range(count - 1, -1, -1):
            selection = flat.selections[index]
            if isinstance(selection, FragmentSpreadNode):
                own_cost = self.fragments.get(selection.name.value, 0)
            elif isinstance(selection, InlineFragmentNode):
                own_cost = inner[index]
            else:
                field = fields[index]
                parent = parent_types[index]
                if field is None or parent is None:
                    own_cost = 0  # introspection, or a field validation refuses
                else:
                    assert isinstance(selection, FieldNode)
                    items = self._items(selection, parent.name, field, dimensions[index], fixed[index])
                    own_cost = 1 + items * inner[index]
            up = flat.parents[index]
            inner[up if up >= 0 else count] += own_cost
        return inner[count]

    def _items(
        self,
        node: FieldNode,
        parent: str,
        field: GraphQLField,
        dimensions: list[str] | None,
        fixed: frozenset[str],
    ) -> int:
        """How many times the field's selection may be answered; `dimensions` are those of
        the statistics the field is under (None: none, or not known in a fragment), `fixed`
        those its filter fixes."""
        key = (parent, node.name.value)
        if key == STATISTICS:
            return statistics_cells(dimensions or [], self.persons, fixed)
        if key == STATISTICS_KEYS:
            return len(CARDINALITIES) if dimensions is None else len(dimensions)
        if key == ENTITIES:
            return self._representations(node)
        if "first" in field.args:
            return self._page_size(node)
        if parent.endswith("Connection") and node.name.value == "edges":
            return 1  # the page is counted on the paged field above
        listed = isinstance(get_nullable_type(field.type), GraphQLList)
        if listed and not is_leaf_type(get_named_type(field.type)):
            return WORST_SIZES.get(key, WORST_LIST)
        return 1

    def _argument(self, node: FieldNode, name: str) -> ValueNode | None:
        return next((a.value for a in node.arguments or () if a.name.value == name), None)

    def _representations(self, node: FieldNode) -> int:
        value = self._argument(node, "representations")
        if isinstance(value, ListValueNode):
            return max(1, len(value.values))
        if isinstance(value, VariableNode):
            given = self.variables.get(value.name.value)
            return max(1, len(given)) if isinstance(given, list) else 1
        return 1

    def _page_size(self, node: FieldNode) -> int:
        value = self._argument(node, "first")
        if isinstance(value, IntValueNode):
            return max(1, int(value.value))
        if isinstance(value, VariableNode):
            given = self.variables.get(value.name.value)
            return max(1, given) if isinstance(given, int) else DEFAULT_PAGE
        return DEFAULT_PAGE

    def _dimensions(self, node: FieldNode) -> list[str]:
        """The `groupBy` dimensions by name; any it cannot read count as the unbounded one."""
        value = self._argument(node, "groupBy")
        if isinstance(value, VariableNode):
            given = self.variables.get(value.name.value)
            items = given if isinstance(given, list) else [given]
            return [str(getattr(item, "value", item)) for item in items if item is not None]
        if isinstance(value, ListValueNode):
            unbounded = StatisticsDimension.EMPLOYER.value
            return [v.value if isinstance(v, EnumValueNode) else unbounded for v in value.values]
        if isinstance(value, EnumValueNode):
            return [value.value]  # a single value stands for a list of one
        return [StatisticsDimension.EMPLOYER.value]

    def _fixed(self, node: FieldNode) -> frozenset[str]:
        """The dimensions the `filter` fixes to one value (given, and not null)."""
        value = self._argument(node, "filter")
        fixed: set[str] = set()
        if isinstance(value, ObjectValueNode):
            for item in value.fields:
                given = item.value
                if isinstance(given, VariableNode):
                    known = self.variables.get(given.name.value) is not None
                else:
                    known = not isinstance(given, NullValueNode)
                if known and item.name.value in FILTERED:
                    fixed.add(FILTERED[item.name.value])
        elif isinstance(value, VariableNode):
            supplied = self.variables.get(value.name.value)
            for name, dimension in FILTERED.items():
                field = (
                    supplied.get(name)
                    if isinstance(supplied, dict)
                    else getattr(supplied, PYTHON_NAMES.get(name, name), None)
                )
                if field is not None:
                    fixed.add(dimension)
        return frozenset(fixed)
