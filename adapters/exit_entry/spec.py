"""The exit-entry administration as a plug-in: its reads the graph is built on."""

from __future__ import annotations

from adapters.exit_entry import TRAVELLER_LINK, ExitEntry
from adapters.relationships import KeyedRead, PagedPersonRelationship, PersonRelationship
from adapters.spec import AgencySpec

VISAS = PersonRelationship("visas", ExitEntry, lambda s, _today: s.visas_by_person)
RESIDENCE_PERMITS = PersonRelationship(
    "residence_permits", ExitEntry, lambda s, today: lambda g: s.residence_permits_by_person(g, today)
)
ENTRIES = PagedPersonRelationship(
    "entries", ExitEntry, lambda s, groups, first, after, _today: s.entries_by_person(groups, first, after)
)
VISA_BY_NUMBER = KeyedRead("visa_by_number", ExitEntry, lambda s, _today: s.visas_by_number, TRAVELLER_LINK)
ENTRY_BY_KEY = KeyedRead("entry_by_key", ExitEntry, lambda s, _today: s.entries_by_key, TRAVELLER_LINK)
RESIDENCE_PERMIT_BY_NUMBER = KeyedRead(
    "residence_permit_by_number",
    ExitEntry,
    lambda s, today: lambda keys: s.residence_permits_by_number(keys, today),
    TRAVELLER_LINK,
)

SPEC = AgencySpec(
    name="EXIT_ENTRY",
    description="The exit-entry administration: visas, entries, residence.",
    source=ExitEntry,
    relationships=(
        VISAS,
        RESIDENCE_PERMITS,
        ENTRIES,
        VISA_BY_NUMBER,
        ENTRY_BY_KEY,
        RESIDENCE_PERMIT_BY_NUMBER,
    ),
)
