"""Statistical disclosure control for workforce statistics: no count below the threshold is
shown, and no shown count lets a suppressed one be recovered by subtraction.

Every statistics query is a slice of one table grouped by the requested dimensions *and* the
filtered ones (a filter fixes a dimension's value). In that table every line (the cells that
differ in one dimension only) sums to a count another query can show (the same query without
that dimension). So in every line with a suppressed cell, at least two cells are suppressed
and together they count at least the threshold; where that is impossible, the line's own
total is itself below the threshold and is suppressed by the first rule where it is shown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

THRESHOLD = 5

Cell = tuple[str, ...]


def suppress(counts: Mapping[Cell, int], dimensions: int, threshold: int = THRESHOLD) -> set[Cell]:
    """The cells of a table (one value per dimension) whose counts must not be shown."""
    hidden = {cell for cell, count in counts.items() if count < threshold}
    changed = bool(hidden)
    while changed:
        changed = False
        for dimension in range(dimensions):
            lines: dict[Cell, list[Cell]] = defaultdict(list)
            for cell in counts:
                lines[cell[:dimension] + cell[dimension + 1 :]].append(cell)
            for cells in lines.values():
                changed |= _protect_line(cells, counts, hidden, threshold)
    return hidden


def _protect_line(cells: list[Cell], counts: Mapping[Cell, int], hidden: set[Cell], threshold: int) -> bool:
    """Hide the smallest shown cells of a line until its hidden cells can neither be told
    apart nor add up to less than the threshold."""
    in_line = [c for c in cells if c in hidden]
    if not in_line:
        return False
    shown = sorted((c for c in cells if c not in hidden), key=lambda c: (counts[c], c))
    changed = False
    while (len(in_line) == 1 or sum(counts[c] for c in in_line) < threshold) and shown:
        cell = shown.pop(0)
        hidden.add(cell)
        in_line.append(cell)
        changed = True
    return changed
