"""The agencies the hub runs with, by an explicit list: the notice's five by default.

Whoever builds a hub with another agency passes its own list (a tuple of specs) to
`Settings`, and the agency's part of the graph to `build_schema`."""

from __future__ import annotations

from adapters.beijing_pass.spec import SPEC as BEIJING_PASS
from adapters.card_service.spec import SPEC as CARD_SERVICE
from adapters.exit_entry.spec import SPEC as EXIT_ENTRY
from adapters.social_insurance.spec import SPEC as SOCIAL_INSURANCE
from adapters.spec import AgencySpec
from adapters.work_permit.spec import SPEC as WORK_PERMIT

DEFAULT_AGENCIES: tuple[AgencySpec, ...] = (
    WORK_PERMIT,
    SOCIAL_INSURANCE,
    CARD_SERVICE,
    EXIT_ENTRY,
    BEIJING_PASS,
)
