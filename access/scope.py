"""The persons a scoped caller reaches: a cardholder itself, an employer its staff (those
whose current permit or insurance names its credit code)."""

from __future__ import annotations

from datetime import date

from access.caller import Caller, Scope
from adapters import Sources
from adapters.social_insurance import INSURED_LINK
from adapters.work_permit import APPLICANT_LINK, PermitCriteria
from domain.records import CallerRole
from identity.store import HubStore

EVERYONE = Scope()


NOBODY = Scope(person_ids=frozenset())


async def scope_of(caller: Caller, sources: Sources, store: HubStore, today: date) -> Scope:
    if not caller.authenticated:
        return NOBODY
    if caller.role is CallerRole.CARDHOLDER and caller.person_id is not None:
        return Scope(person_ids=frozenset({caller.person_id}))
    if caller.role is CallerRole.EMPLOYER and caller.employer:
        permit_holders = await sources.work_permits.applicant_keys_matching(
            PermitCriteria(employer_credit_code=caller.employer), today
        )
        insured = await sources.insurance.insured_keys_of_employer(caller.employer)
        staff = await store.person_ids_linked([(APPLICANT_LINK, permit_holders), (INSURED_LINK, insured)])
        return Scope(person_ids=frozenset(staff), employer=caller.employer)
    return EVERYONE
