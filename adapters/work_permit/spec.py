"""The work-permit system as a plug-in: its reads the graph is built on."""

from __future__ import annotations

from adapters.relationships import KeyedRead, PersonRelationship
from adapters.spec import AgencySpec
from adapters.work_permit import APPLICANT_LINK, WorkPermitSystem

WORK_PERMITS = PersonRelationship(
    "work_permits", WorkPermitSystem, lambda s, today: lambda g: s.permits_by_applicant(g, today)
)
CURRENT_WORK_PERMIT = PersonRelationship(
    "current_work_permit",
    WorkPermitSystem,
    lambda s, today: lambda g: s.current_permit_by_applicant(g, today),
    many=False,
)
PERMIT_BY_NUMBER = KeyedRead(
    "permit_by_number",
    WorkPermitSystem,
    lambda s, today: lambda keys: s.current_permit_by_number(keys, today),
    APPLICANT_LINK,
)
PERMIT_BY_ID = KeyedRead(
    "permit_by_id",
    WorkPermitSystem,
    lambda s, today: lambda keys: s.permits_by_id(keys, today),
    APPLICANT_LINK,
)
PERMIT_BY_LETTER = KeyedRead(
    "permit_by_letter",
    WorkPermitSystem,
    lambda s, today: lambda keys: s.current_permit_by_letter(keys, today),
    APPLICANT_LINK,
)
# A period's steps: read under the period, whose person they share (PermitEvent.owner is XKID).
PERMIT_EVENTS = KeyedRead("permit_events", WorkPermitSystem, lambda s, _today: s.events_by_permit)
EMPLOYER_BY_CREDIT_CODE = KeyedRead(
    "employer_by_credit_code", WorkPermitSystem, lambda s, _today: s.employers_by_credit_code
)

SPEC = AgencySpec(
    name="WORK_PERMIT",
    description="The work-permit system: applicants and permit periods.",
    source=WorkPermitSystem,
    relationships=(
        WORK_PERMITS,
        CURRENT_WORK_PERMIT,
        PERMIT_BY_NUMBER,
        PERMIT_BY_ID,
        PERMIT_BY_LETTER,
        PERMIT_EVENTS,
        EMPLOYER_BY_CREDIT_CODE,
    ),
)
