"""The expanded document, measured without expanding it.

A fragment spread stands for its fragment's whole selection, so a document of a few hundred
bytes can stand for millions of fields (fragments that each spread the next twice). Every
measure here is taken once per fragment and reused at each spread, in the fragments'
dependency order, so the work is linear in the document as written, never in its expansion;
the walk is iterative, so no nesting or chain of fragments can exhaust the interpreter's
stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
)

Definition = OperationDefinitionNode | FragmentDefinitionNode


@dataclass(frozen=True, slots=True)
class Flat:
    """A definition's selections in pre-order, each with the index of the selection it is in
    (-1 at the top), so that folding them from the end sees every child before its parent."""

    selections: tuple[SelectionNode, ...]
    parents: tuple[int, ...]
    spreads: frozenset[str]


def flatten(definition: Definition) -> Flat:
    selections: list[SelectionNode] = []
    parents: list[int] = []
    spreads: set[str] = set()
    stack: list[tuple[SelectionNode, int]] = [(s, -1) for s in reversed(definition.selection_set.selections)]
    while stack:
        selection, parent = stack.pop()
        index = len(selections)
        selections.append(selection)
        parents.append(parent)
        if isinstance(selection, FragmentSpreadNode):
            spreads.add(selection.name.value)
        elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set is not None:
            stack.extend((child, index) for child in reversed(selection.selection_set.selections))
    return Flat(tuple(selections), tuple(parents), frozenset(spreads))


@dataclass(frozen=True)
class Walk:
    """The document's definitions flattened once, and its fragments in dependency order (each
    after the fragments it spreads), or the cycle that makes such an order impossible."""

    operations: tuple[tuple[OperationDefinitionNode, Flat], ...]
    fragments: dict[str, tuple[FragmentDefinitionNode, Flat]]
    order: tuple[str, ...]
    cycle: tuple[str, ...] | None

    @property
    def visited(self) -> int:
        """How many selections the walk looked at: the document as written."""
        return sum(len(flat.selections) for _, flat in (*self.operations, *self.fragments.values()))


def walk(document: DocumentNode) -> Walk:
    operations = tuple(
        (d, flatten(d)) for d in document.definitions if isinstance(d, OperationDefinitionNode)
    )
    # As graphql-core looks fragments up: by name, the last definition of a name winning.
    fragments = {
        d.name.value: (d, flatten(d)) for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    order, cycle = _dependency_order({name: flat.spreads for name, (_, flat) in fragments.items()})
    return Walk(operations, fragments, order, cycle)


def _dependency_order(spreads: dict[str, frozenset[str]]) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """Depth-first, with an explicit stack: the fragments each after those it spreads, or a
    cycle (the fragments on it, from the first one entered again)."""
    done: set[str] = set()
    order: list[str] = []
    for start in spreads:
        if start in done:
            continue
        path = [start]
        on_path = {start}
        pending = [iter(sorted(spreads[start]))]
        while pending:
            name = next((n for n in pending[-1] if n in spreads and n not in done), None)
            if name is None:
                pending.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                order.append(finished)
            elif name in on_path:
                return tuple(order), tuple(path[path.index(name) :])
            else:
                path.append(name)
                on_path.add(name)
                pending.append(iter(sorted(spreads[name])))
    return tuple(order), None


@dataclass(frozen=True, slots=True)
class Tally:
    """A selection's measures once expanded.

    nodes: selections, every fragment spread standing for its fragment's (capped);
    aliases: aliased fields, so counted (capped);
    depth: field nesting, as strawberry's depth limiter counts it (a field with a selection
    adds a level; introspection fields add none);
    nesting: levels on the longest path, fields, inline fragments and spreads alike: what the
    recursions of validation and execution go through.
    """

    nodes: int = 0
    aliases: int = 0
    depth: int = 0
    nesting: int = 0


@dataclass(frozen=True)
class Measure:
    nodes: int
    aliases: int
    depths: dict[str, int]  # per operation, by name ("anonymous" for one without)
    nesting: int
    visited: int
    cycle: tuple[str, ...] | None


def measure(walked: Walk, cap: int) -> Measure:
    """The document's expanded size, its aliases, each operation's depth and the deepest
    nesting; `nodes` and `aliases` stop counting at `cap`."""
    if walked.cycle is not None:
        return Measure(0, 0, {}, 0, walked.visited, walked.cycle)
    known: dict[str, Tally] = {}
    for name in walked.order:
        known[name] = _tally(walked.fragments[name][1], known, cap)
    tallies = [(operation, _tally(flat, known, cap)) for operation, flat in walked.operations]
    return Measure(
        nodes=min(cap, sum(t.nodes for _, t in tallies)),
        aliases=min(cap, sum(t.aliases for _, t in tallies)),
        depths={(o.name.value if o.name else "anonymous"): t.depth for o, t in tallies},
        nesting=max((t.nesting for _, t in tallies), default=0),
        visited=walked.visited,
        cycle=None,
    )


def _tally(flat: Flat, fragments: dict[str, Tally], cap: int) -> Tally:
    """Folds the selections from the last: each one's children are summed (nodes, aliases)
    or maxed (depth, nesting) into `inner` before the selection itself is reached."""
    count = len(flat.selections)
    inner = [Tally() for _ in range(count + 1)]  # the last slot: the definition's own selection set
    for index in range(count - 1, -1, -1):
        selection = flat.selections[index]
        below = inner[index]
        if isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value, Tally())
            own = Tally(1 + fragment.nodes, fragment.aliases, fragment.depth, 1 + fragment.nesting)
        elif isinstance(selection, InlineFragmentNode):
            own = Tally(1 + below.nodes, below.aliases, below.depth, 1 + below.nesting)
        else:
            assert isinstance(selection, FieldNode)
            counted = selection.selection_set is not None and not selection.name.value.startswith("__")
            own = Tally(
                1 + below.nodes,
                below.aliases + (1 if selection.alias else 0),
                1 + below.depth if counted else 0,
                1 + below.nesting,
            )
        parent = flat.parents[index]
        slot = inner[parent] if parent >= 0 else inner[count]
        inner[parent if parent >= 0 else count] = Tally(
            min(cap, slot.nodes + own.nodes),
            min(cap, slot.aliases + own.aliases),
            max(slot.depth, own.depth),
            max(slot.nesting, own.nesting),
        )
    return inner[count]
