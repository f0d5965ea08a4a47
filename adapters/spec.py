"""An agency as a plug-in: what the hub needs to know to read it, configure it and link it.

Each agency's package declares one `AgencySpec` (adapters/<agency>/spec.py); the registry
(adapters/registry.py) lists the specs the hub runs with. Sources, settings, linking, the
estate, traces, metrics and readiness are built from the registered specs, so an
agency is added by registering its spec (with its part of the graph, schema/agencies.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol

from adapters.base import SqlSource
from adapters.relationships import Relationship
from domain.records import AgencyId


class EstatePart(Protocol):
    """An agency's part of the generated estate (estate/generator.py): rows of its own tables
    for each generated person (`worker`, an `estate.Worker`), drawn from its own random
    generator, so adding a part changes no other agency's row. The notice's five agencies are
    one story, told by estate/ itself; they have none."""

    def add_person(
        self, rng: random.Random, today: int, worker: Any, rows: dict[str, list[dict[str, Any]]]
    ) -> None:
        """Append the person's rows to `rows[table name]` (dates as ordinals, like `today`)."""


@dataclass(frozen=True)
class AgencySpec:
    """Its `id` (its source's `agency`) is the graph's `Agency` value and the label of its
    source everywhere; `name` gives its settings: `HUB_<NAME>_URL`,
    `HUB_TIMEOUT_<NAME>_SECONDS` and the SQLite file `<name>.sqlite` in the data directory.
    The source's `evidence()` is what the agency yields for linking; `relationships` are the
    reads the graph is built on; `estate` its part of the generated estate."""

    name: str
    description: str
    source: type[SqlSource]
    relationships: tuple[Relationship, ...] = ()
    estate: EstatePart | None = None

    @property
    def id(self) -> AgencyId:
        return self.source.agency

    @property
    def url_variable(self) -> str:
        return f"HUB_{self.name}_URL"

    @property
    def timeout_variable(self) -> str:
        return f"HUB_TIMEOUT_{self.name}_SECONDS"

    @property
    def file_name(self) -> str:
        return f"{self.name.lower()}.sqlite"
