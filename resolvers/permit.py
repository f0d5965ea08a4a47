"""Resolvers of work permits, their history, holder and employer."""

from __future__ import annotations

from typing import Any

from adapters.social_insurance.spec import INSURED_EMPLOYER_BY_CREDIT_CODE
from adapters.work_permit.spec import (
    CURRENT_WORK_PERMIT,
    EMPLOYER_BY_CREDIT_CODE,
    PERMIT_BY_NUMBER,
    PERMIT_EVENTS,
    WORK_PERMITS,
)
from domain.records import Employer, Page, WorkPermit, WorkPermitStatus
from identity.store import PersonCore
from opaque.cursors import page_size
from resolvers.context import Info
from resolvers.fetch import deliver, person_current, person_related
from resolvers.verification import signing_keys

EMPLOYER_PERMITS = "employer_permits"


async def by_number(info: Info, number: str) -> WorkPermit | None:
    found: WorkPermit | None = await info.context.loaders.keyed(PERMIT_BY_NUMBER).load(number.strip())
    return deliver(info, found)


async def history(info: Info, permit: WorkPermit) -> Any:
    return deliver(info, await info.context.loaders.keyed(PERMIT_EVENTS).load(permit.key))


async def holder(info: Info, permit: WorkPermit) -> PersonCore | None:
    person_id = permit.person_id
    return await info.context.loaders.person_by_id.load(person_id) if person_id is not None else None


def employer(info: Info, permit: WorkPermit) -> Employer | None:
    return deliver(info, permit.employer)


async def qr_code(info: Info, permit: WorkPermit) -> str | None:
    """A QR code signed now, valid 24 hours, for a permit valid today; null for any other
    status (there is nothing to verify)."""
    if permit.status is not WorkPermitStatus.VALID:
        return None
    person_id = permit.person_id
    if person_id is None:
        return None
    return signing_keys(info).issue_qr(permit.number, info.context.ids.encode("Person", person_id))


async def employer_by_credit_code(info: Info, credit_code: str) -> Employer | None:
    """The employer as its newest permit names it, else as social insurance registers it."""
    code = credit_code.strip()
    found: Employer | None = await info.context.loaders.keyed(EMPLOYER_BY_CREDIT_CODE).load(code)
    if found is None:
        found = await info.context.loaders.keyed(INSURED_EMPLOYER_BY_CREDIT_CODE).load(code)
    return deliver(info, found)


async def employer_permits(
    info: Info, employer: Employer, first: int | None, after: str | None
) -> tuple[Page[Any], str]:
    size = page_size(first)
    position = info.context.cursors.decode(EMPLOYER_PERMITS, after)
    page = await info.context.loaders.employer_permits.load((employer.credit_code, size, position))
    return page, EMPLOYER_PERMITS


async def person_work_permit(info: Info, person: PersonCore) -> Any:
    return await person_current(info, CURRENT_WORK_PERMIT, person.id)


async def person_work_permits(info: Info, person: PersonCore) -> Any:
    return await person_related(info, WORK_PERMITS, person.id)
