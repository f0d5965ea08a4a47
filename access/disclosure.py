"""Statistical disclosure control for workforce statistics: no count below the threshold is
shown, nor can one be worked out by subtraction.

Every statistics query is a slice of one table grouped by the requested dimensions *and* the
filtered ones (a filter fixes a dimension's value). In that table every line (the cells that
differ in one dimension only) sums to a count another query can show: the same query without
that dimension. So the hidden cells are audited as an attacker would: a line with one unknown
cell gives it away, which may give away another; a small cell given away, a line whose
unknown cells are given away one by one, or unknown cells adding up to less than the
threshold, each make the smallest shown cell of that line hidden too, until nothing small can
be worked out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

THRESHOLD = 5

Cell = tuple[str, ...]


def suppress(counts: Mapping[Cell, int], dimensions: int, threshold: int = THRESHOLD) -> set[Cell]:
    """The cells of a table (one value per dimension) whose counts must not be shown."""
    hidden = {cell for cell, count in counts.items() if count < threshold}
    lines = _lines(counts, dimensions)
    while hidden:
        recovered = _recoverable(hidden, lines)
        exposed = False
        for cells in lines:
            unknown = [c for c in cells if c in hidden and c not in recovered]
            leaked_small = any(c in recovered and counts[c] < threshold for c in cells)
            too_small = bool(unknown) and (len(unknown) == 1 or sum(counts[c] for c in unknown) < threshold)
            if leaked_small or too_small:
                shown = sorted((c for c in cells if c not in hidden), key=lambda c: (counts[c], c))
                if shown:
                    hidden.add(shown[0])
                    exposed = True
        if not exposed:
            return hidden
    return hidden


def _lines(counts: Mapping[Cell, int], dimensions: int) -> list[list[Cell]]:
    lines: list[list[Cell]] = []
    for dimension in range(dimensions):
        grouped: dict[Cell, list[Cell]] = defaultdict(list)
        for cell in counts:
            grouped[cell[:dimension] + cell[dimension + 1 :]].append(cell)
        lines += grouped.values()
    return lines


def _recoverable(hidden: set[Cell], lines: list[list[Cell]]) -> set[Cell]:
    """Hidden cells an attacker works out from shown cells and line totals, one by one."""
    recovered: set[Cell] = set()
    progress = True
    while progress:
        progress = False
        for cells in lines:
            unknown = [c for c in cells if c in hidden and c not in recovered]
            if len(unknown) == 1:
                recovered.add(unknown[0])
                progress = True
    return recovered
