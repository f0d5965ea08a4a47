"""Insurance enrollment, the physical card and the electronic card (DOMAIN.md workflows 3, 5
and 6): the social insurance agency's and the card service's records change together, or
neither does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from access.activation import ACTIVATION_CODE, codes_of, new_code
from access.attestation import AttestationRejected, Verifiers
from adapters.card_service import CARD_LINK, ELECTRONIC_CARD_LINK
from adapters.card_service import writes as card_writes
from adapters.identifiers import DISTRICT_CODE
from adapters.social_insurance import INSURED_LINK
from adapters.social_insurance import writes as si_writes
from domain.errors import UserErrorCode
from domain.evidence import IdentifierKind
from domain.records import (
    SHANGHAI,
    Agency,
    CallerRole,
    CardStatus,
    ElectronicCard,
    ElectronicCardStatus,
    InsuredPerson,
    NotificationKind,
    WorkPermit,
    WorkPermitStatus,
)
from identity.names import fold_diacritics, name_words
from identity.store import INDEX
from identity.tables import ElectronicCardRevocation, table_of
from workflows.engine import HUB_STORE, Journal, UserFailure, readable
from workflows.exit_entry import years_after
from workflows.hub_records import add_identifier, announce, link_record, refile_record
from workflows.permits import PermitWork

CARD_YEARS = 10
# The permit an e-card is registered on: right after entry (notice issued) or once valid.
REGISTRABLE = (WorkPermitStatus.NOTICE_ISSUED, WorkPermitStatus.VALID)
SIGNED = ElectronicCardStatus.SIGNED
REVOCATION = table_of(ElectronicCardRevocation)


@dataclass(frozen=True)
class Bound:
    """The party a caller's token is bound to, which limits what it may enroll."""

    role: CallerRole
    person_id: int | None
    employer: str | None


async def enroll(
    work: PermitWork, journal: Journal, arguments: dict[str, Any], bound: Bound
) -> dict[str, Any]:
    permit = await work.current_period(arguments["workPermitNumber"], ["input", "workPermitNumber"])
    person_id = await work.person_of(permit)
    if bound.role is CallerRole.CARDHOLDER and person_id != bound.person_id:
        raise UserFailure(
            UserErrorCode.FORBIDDEN, "A cardholder enrolls only themselves.", ["input", "workPermitNumber"]
        )
    credit_code = arguments["employerCreditCode"].strip().upper()
    if bound.role is CallerRole.EMPLOYER and credit_code != bound.employer:
        raise UserFailure(
            UserErrorCode.FORBIDDEN,
            "An employer enrolls only its own employees.",
            ["input", "employerCreditCode"],
        )
    if permit.status is not WorkPermitStatus.VALID:
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE,
            f"Enrollment needs a valid permit; this one is {permit.status.value}.",
            ["input", "workPermitNumber"],
        )
    if permit.employer is None or permit.employer.credit_code != credit_code:
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE, "The permit names another employer.", ["input", "employerCreditCode"]
        )
    district = arguments["insuringDistrict"].strip()
    if not DISTRICT_CODE.match(district):
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            "Must be a 6-digit GB/T 2260 division code.",
            ["input", "insuringDistrict"],
        )
    evidence = {k: v for k, v in arguments["evidence"].items() if v is not None}
    ((kind, value),) = evidence.items()
    await _check_evidence(work, permit, person_id, kind, value)
    assert person_id is not None
    links = (await work.store.links_by_person([person_id]))[0]
    if links.owners(Agency.SOCIAL_INSURANCE):
        # Enrolled already: the existing number answers, and nothing is written twice.
        insured: object = (
            await work.sources.insurance.insured_by_person([links.owners(Agency.SOCIAL_INSURANCE)])
        )[0]
        cards = (
            (await work.sources.cards.cards_by_person([links.owners(Agency.CARD_SERVICE)]))[0]
            if links.owners(Agency.CARD_SERVICE)
            else []
        )
        return {
            "person": person_id,
            "card": cards[0].key if cards else None,
            "ssn": getattr(insured, "social_security_number", None),
        }
    person = (await work.store.persons_by_id([person_id]))[0]
    passports = (await work.store.passports_by_person([person_id]))[0]
    assert person is not None
    passport = next((p for p in passports if p.current), passports[0])
    name = " ".join(p for p in (person.given_names, person.surname) if p)
    async with journal.writing(Agency.SOCIAL_INSURANCE.value) as conn:
        employer = await si_writes.employer_number(journal, conn, credit_code, permit.employer.name)
        number = await si_writes.new_social_security_number(
            conn, person.nationality, district, person.birth_date
        )
        insured = await si_writes.enroll(
            journal,
            conn,
            number=number,
            folded_name=fold_diacritics(name),
            sex=person.sex,
            birth_date=person.birth_date,
            nationality=person.nationality,
            passport_number=passport.number,
            employer=employer,
            today=work.today,
        )
    async with journal.writing(Agency.CARD_SERVICE.value) as conn:
        card = await card_writes.order_card(journal, conn, number, fold_diacritics(name).upper())
        # An e-card registered right after entry now carries the new number (DOMAIN.md).
        registered = await card_writes.attach_social_security_number(journal, conn, permit.number, number)
    for card_id in registered:
        await refile_record(journal, ELECTRONIC_CARD_LINK, card_id, number)
    await link_record(
        journal, person_id, Agency.SOCIAL_INSURANCE, INSURED_LINK, str(insured), str(insured), "enrollment"
    )
    await link_record(journal, person_id, Agency.CARD_SERVICE, CARD_LINK, card, number, "enrollment")
    await add_identifier(journal, IdentifierKind.SOCIAL_SECURITY_NUMBER, number, person_id)
    await add_identifier(journal, IdentifierKind.CARD_NUMBER, card, person_id)
    async with journal.writing(HUB_STORE) as conn:
        await journal.update(conn, HUB_STORE, INDEX, {"person_id": person_id}, {"insured": True})
    message = "You are enrolled in pension, unemployment, medical, work-injury and maternity insurance."
    await announce(journal, work.store, person_id, NotificationKind.ENROLLED, message)
    return {"person": person_id, "card": card, "ssn": number}


async def activate_card(work: PermitWork, journal: Journal, card_number: str) -> dict[str, Any]:
    number = card_number.strip().upper()
    field = ["input", "cardNumber"]
    card = readable((await work.sources.cards.cards_by_number([number]))[0], "card", field)
    if card is None:
        raise UserFailure(UserErrorCode.NOT_FOUND, "No card has this number.", field)
    if card.status is not CardStatus.PENDING_PRODUCTION:
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE,
            "Only a card pending production is activated.",
            ["input", "cardNumber"],
        )
    holder = card.owner
    person_id = (await work.store.person_ids_by_owner([(CARD_LINK, holder)]))[0]
    async with journal.writing(Agency.CARD_SERVICE.value) as conn:
        await card_writes.activate_card(
            journal, conn, number, work.today, years_after(work.today, CARD_YEARS)
        )
        await card_writes.link_electronic_cards(journal, conn, holder, number)
    if person_id is not None:
        applicants = (await work.store.links_by_person([person_id]))[0].owners(Agency.WORK_PERMIT_SYSTEM)
        permit = (
            (await work.sources.work_permits.current_permit_by_applicant([applicants], work.today))[0]
            if applicants
            else None
        )
        if isinstance(permit, WorkPermit) and permit.status is WorkPermitStatus.VALID:
            await work.carry_onto_cards(journal, person_id, permit.number, permit.status, permit.valid_to)
    message = f"Your social security card {number} is in use."
    await announce(journal, work.store, person_id, NotificationKind.CARD_ISSUED, message)
    return {"card": number}


async def register_electronic_card(
    work: PermitWork, journal: Journal, arguments: dict[str, Any], verifiers: Verifiers, issued_to: str
) -> dict[str, Any]:
    """The e-card, signed after the real-name check here and the real-person check the
    provider attests; answers its id, its person and a one-time activation code for the
    person's app (access/activation.py)."""
    identifier = {k: v for k, v in arguments["identifier"].items() if v is not None}
    ((kind, value),) = identifier.items()
    reference = _real_person_checked(verifiers, arguments["verification"], frozenset({value.strip().upper()}))
    lookup = (
        IdentifierKind.WORK_PERMIT_NUMBER
        if kind == "workPermitNumber"
        else IdentifierKind.SOCIAL_SECURITY_NUMBER
    )
    person_id = (await work.store.person_ids_by_identifier([(lookup.value, value.strip().upper())]))[0]
    if person_id is None:
        raise UserFailure(
            UserErrorCode.NOT_FOUND, "Nobody is found by this number.", ["input", "identifier", kind]
        )
    links = (await work.store.links_by_person([person_id]))[0]
    names = await _recorded_names(work, links)
    given = " ".join(p for p in (arguments["name"]["surname"], arguments["name"].get("givenNames")) if p)
    if name_words(given) not in names:
        raise UserFailure(
            UserErrorCode.VERIFICATION_FAILED,
            "The name does not match the permit or insurance record.",
            ["input", "name"],
        )
    ssn = await _social_security_number(work, links)
    permit = await _registering_permit(work, links, kind, value, enrolled=ssn is not None)
    permit_number = permit.number if permit is not None else None
    owners = (*links.owners(Agency.CARD_SERVICE), *((permit_number,) if permit_number else ()))
    signed = next(
        (c for c in (await work.sources.cards.electronic_cards_by_person([owners]))[0] if c.status is SIGNED),
        None,
    )
    if signed is not None:
        raise UserFailure(
            UserErrorCode.CONFLICT,
            f"This person's e-card {signed.key} is signed already: revoke it first, or reissue its"
            " activation code for a new phone (reissueActivationCode).",
            ["input", "identifier", kind],
        )
    cards = (await work.sources.cards.cards_by_person([(ssn,)]))[0] if ssn else []
    in_use = next((c.number for c in cards if c.status is CardStatus.IN_USE), None)
    async with journal.writing(Agency.CARD_SERVICE.value) as conn:
        card_id = await card_writes.register_electronic_card(
            journal,
            conn,
            holder=ssn or "",  # empty until enrollment: the notice lets a newcomer register first
            card_number=in_use,
            permit_number=permit_number,
            signed_at=datetime.now(SHANGHAI),
            method=arguments["verification"]["method"],
            reference=reference,
        )
    owner = ssn or permit_number or ""
    await link_record(
        journal, person_id, Agency.CARD_SERVICE, ELECTRONIC_CARD_LINK, card_id, owner, "registration"
    )
    code = new_code(person_id, card_id, issued_to)
    async with journal.writing(HUB_STORE) as conn:
        await journal.insert(conn, HUB_STORE, ACTIVATION_CODE, code.row, ["code_hash"])
    return {"electronicCard": card_id, "person": person_id, "activationCode": code.code}


def _real_person_checked(
    verifiers: Verifiers, verification: dict[str, Any], identifiers: frozenset[str]
) -> str:
    """The check's reference, once the provider's attestation proves that check passed for
    the person known by one of `identifiers`."""
    reference: str = verification["reference"].strip()
    if not reference:
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            "The verification's reference is required.",
            ["input", "verification", "reference"],
        )
    try:
        verifiers.verify(
            verification["attestation"].strip(),
            method=verification["method"],
            reference=reference,
            identifier=identifiers,
        )
    except AttestationRejected as rejected:
        raise UserFailure(
            UserErrorCode.VERIFICATION_FAILED,
            f"The real-person check is not proven: {rejected}.",
            ["input", "verification", "attestation"],
        ) from None
    return reference


async def _signed_card(work: PermitWork, card_id: str) -> tuple[ElectronicCard, int | None]:
    """A signed e-card named by the input, and its person."""
    field = ["input", "electronicCardId"]
    key = work.electronic_card_key(card_id, field)
    card = (await work.sources.cards.electronic_cards_by_id([key]))[0]
    if not isinstance(card, ElectronicCard):
        raise UserFailure(UserErrorCode.NOT_FOUND, "No e-card has this id.", field)
    if card.status is not SIGNED:
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE, f"The e-card is {card.status.value}, not signed.", field
        )
    person_id = (await work.store.person_ids_by_owner([(ELECTRONIC_CARD_LINK, card.owner)]))[0]
    return card, person_id


async def _revoke_codes(journal: Journal, card_id: str, now: datetime) -> None:
    """Every code of the e-card dies, and with it every cardholder token one became."""
    async with journal.writing(HUB_STORE) as conn:
        for code_hash in await codes_of(conn, card_id):
            await journal.update(
                conn, HUB_STORE, ACTIVATION_CODE, {"code_hash": code_hash}, {"revoked_at": now}
            )


async def revoke_electronic_card(
    work: PermitWork, journal: Journal, card_id: str, reason: str, revoked_by: str
) -> dict[str, Any]:
    """The e-card revoked (QFZT 2), the reason kept in the hub store, its codes and the
    cardholder tokens they became revoked with it; a new registration makes a new e-card."""
    if not reason.strip():
        raise UserFailure(
            UserErrorCode.INVALID_INPUT, "Give the reason for the revocation.", ["input", "reason"]
        )
    card, person_id = await _signed_card(work, card_id)
    now = datetime.now(UTC)
    async with journal.writing(Agency.CARD_SERVICE.value) as conn:
        await card_writes.revoke_electronic_card(journal, conn, card.key)
    async with journal.writing(HUB_STORE) as conn:
        row = {
            "electronic_card": card.key,
            "reason": reason.strip(),
            "revoked_at": now,
            "revoked_by": revoked_by,
        }
        await journal.insert(conn, HUB_STORE, REVOCATION, row, ["electronic_card"])
    await _revoke_codes(journal, card.key, now)
    return {"electronicCard": card.key, "person": person_id}


async def reissue_activation_code(
    work: PermitWork, journal: Journal, arguments: dict[str, Any], verifiers: Verifiers, issued_to: str
) -> dict[str, Any]:
    """A new activation code for a signed e-card (a lost or new phone), after a new real-person
    check of the person it carries; earlier codes and the tokens they became are revoked."""
    card, person_id = await _signed_card(work, arguments["electronicCardId"])
    known_by = frozenset(n for n in (card.work_permit_number, card.owner) if n)
    _real_person_checked(verifiers, arguments["verification"], known_by)
    if person_id is None:
        raise UserFailure(
            UserErrorCode.NOT_FOUND,
            "The e-card belongs to nobody the hub knows.",
            ["input", "electronicCardId"],
        )
    await _revoke_codes(journal, card.key, datetime.now(UTC))
    code = new_code(person_id, card.key, issued_to)
    async with journal.writing(HUB_STORE) as conn:
        await journal.insert(conn, HUB_STORE, ACTIVATION_CODE, code.row, ["code_hash"])
    return {"electronicCard": card.key, "person": person_id, "activationCode": code.code}


async def _registering_permit(
    work: PermitWork, links: Any, kind: str, value: str, enrolled: bool
) -> WorkPermit | None:
    """The permit the e-card will carry, the person's current period: the very permit named
    when registering by its number; before enrollment (right after entry, DOMAIN.md) it must be
    notice issued or valid, since it is all the e-card is filed under."""
    field = ["input", "identifier", kind]
    applicants = links.owners(Agency.WORK_PERMIT_SYSTEM)
    found = (
        (await work.sources.work_permits.current_permit_by_applicant([applicants], work.today))[0]
        if applicants
        else None
    )
    permit = found if isinstance(found, WorkPermit) else None
    if kind == "workPermitNumber" and (permit is None or permit.number != value.strip()):
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE, "This is not the person's current permit number.", field
        )
    if not enrolled and (permit is None or permit.status not in REGISTRABLE):
        status = permit.status.value if permit is not None else "none"
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE,
            f"Before enrollment an e-card needs a notice-issued or valid permit, not {status}.",
            field,
        )
    return permit


async def _social_security_number(work: PermitWork, links: Any) -> str | None:
    """The person's social security number, if they are enrolled."""
    insured = links.owners(Agency.SOCIAL_INSURANCE)
    if not insured:
        return None
    found = (await work.sources.insurance.insured_by_person([insured]))[0]
    return found.social_security_number if isinstance(found, InsuredPerson) else None


async def is_named_holder(work: PermitWork, person_id: int, name: dict[str, Any], permit_number: str) -> bool:
    """Whether the name (checked as at registration) and the permit number are this person's."""
    kind = IdentifierKind.WORK_PERMIT_NUMBER.value
    found = (await work.store.person_ids_by_identifier([(kind, permit_number.strip())]))[0]
    if found != person_id:
        return False
    links = (await work.store.links_by_person([person_id]))[0]
    given = " ".join(p for p in (name["surname"], name.get("givenNames")) if p)
    return name_words(given) in await _recorded_names(work, links)


async def _recorded_names(work: PermitWork, links: Any) -> set[tuple[str, ...]]:
    names: set[tuple[str, ...]] = set()
    applicants = links.owners(Agency.WORK_PERMIT_SYSTEM)
    if applicants:
        names |= {name_words(n) for n in await work.sources.work_permits.names_by_applicant(applicants)}
    insured = links.owners(Agency.SOCIAL_INSURANCE)
    if insured:
        names |= {name_words(n) for n in await work.sources.insurance.names_by_insured(insured)}
    return names


async def _check_evidence(
    work: PermitWork, permit: WorkPermit, person_id: int | None, kind: str, value: str
) -> None:
    field = ["input", "evidence", kind]
    if kind == "notificationLetterNumber":
        work.check_letter(permit, value, field)
    else:
        await work.check_electronic_card(permit, person_id, value, field)
