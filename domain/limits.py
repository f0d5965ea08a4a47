"""Bounds on what one request may ask and do (settings.py reads them from the environment;
schema/limits.py and the gate apply them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask; the defaults let every contract query through."""

    max_document_bytes: int = 64 * 1024
    max_depth: int = 15
    max_aliases: int = 30
    max_tokens: int = 5000
    max_cost: int = 30_000
    # The expanded document's selections (every fragment counted at each spread), which is
    # also graphql-core's budget for comparing same-named fields; and its deepest nesting
    # through fields, inline fragments and spreads (what validation and execution recurse on).
    max_nodes: int = 5000
    max_nesting: int = 40
    # Fields resolved by one request (one subscription event), counted while it runs.
    max_resolved_fields: int = 50_000
    rate_limit: str = "1200/minute"
