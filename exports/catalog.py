"""The exports by name, with what each needs of its caller: an aggregate answers from
`workforceStatistics`'s grant (REPORTING), a person-level one from the grants of the graph's
fields it shows (the work-permit authority, an employer for its own staff)."""

from __future__ import annotations

from dataclasses import dataclass

from exports import expiring_by_week, expiring_permits, workforce
from exports.table import Opener


@dataclass(frozen=True)
class Export:
    name: str
    open: Opener
    # The graph's (type, field)s it answers from: the caller's grant must read every one.
    reads: tuple[tuple[str, str], ...]
    # What a row shows of its person, for the audit record; empty: an aggregate, no person.
    audited_fields: tuple[str, ...] = ()

    @property
    def person_level(self) -> bool:
        return bool(self.audited_fields)


EXPORTS = {
    export.name: export
    for export in (
        Export(
            "expiring-permits",
            expiring_permits.open_expiring_permits,
            expiring_permits.READS,
            expiring_permits.AUDITED_FIELDS,
        ),
        Export("expiring-permits-by-week", expiring_by_week.open_expiring_by_week, expiring_by_week.READS),
        Export("workforce", workforce.open_workforce, workforce.READS),
    )
}
