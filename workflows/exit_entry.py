"""Z visa, entry and residence permits (DOMAIN.md workflows 2 and 4), written to the
exit-entry administration and linked to the person in the hub's store at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from access.qr import QrRejected
from adapters.countries import ALPHA3
from adapters.exit_entry import TRAVELLER_LINK
from adapters.exit_entry import writes as ee_writes
from domain.errors import SourceDataInvalid, UserErrorCode
from domain.evidence import IdentifierKind
from domain.records import (
    Agency,
    NotificationKind,
    ResidencePermitStatus,
    VerificationChannel,
    WorkPermit,
    WorkPermitStatus,
)
from identity.linking import passport_identifier
from identity.names import normalise_passport
from workflows.engine import Journal, UserFailure, readable
from workflows.hub_records import add_identifier, announce, link_record
from workflows.permits import PermitWork

EE = Agency.EXIT_ENTRY.value
MIN_RESIDENCE = timedelta(days=90)
MAX_RESIDENCE_YEARS = 5
ENTRY_WINDOW = timedelta(days=30)
EXTEND_AHEAD = timedelta(days=30)
# How the holder's permit was checked, by the evidence the desk presented.
CHANNELS = {
    "notificationLetterNumber": VerificationChannel.SYSTEM,
    "electronicCardId": VerificationChannel.ELECTRONIC_CARD,
    "qrCode": VerificationChannel.QR_CODE,
}


@dataclass(frozen=True)
class Holder:
    person_id: int
    passport_number: str
    nationality: str


async def _holder(work: PermitWork, passport: dict[str, str]) -> Holder:
    number = normalise_passport(passport["number"])
    nationality = passport["nationality"].strip().upper()
    if nationality not in ALPHA3:
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            "Must be an ISO 3166-1 alpha-3 country code.",
            ["input", "passport", "nationality"],
        )
    found = (
        await work.store.person_ids_by_identifier(
            [(IdentifierKind.PASSPORT.value, passport_identifier(number, nationality))]
        )
    )[0]
    if found is None:
        raise UserFailure(
            UserErrorCode.NOT_FOUND,
            "No foreigner with a work permit holds this passport.",
            ["input", "passport"],
        )
    return Holder(found, number, nationality)


async def _traveller(work: PermitWork, journal: Journal, holder: Holder) -> str:
    """The holder's exit-entry person, registered (and linked) on first contact."""
    async with journal.writing(EE) as conn:
        known = await ee_writes.traveller_by_passport(conn, holder.passport_number, holder.nationality)
        if known is not None:
            traveller = known
        else:
            person = (await work.store.persons_by_id([holder.person_id]))[0]
            assert person is not None
            traveller = await ee_writes.register_traveller(
                journal,
                conn,
                surname=person.surname,
                given_names=person.given_names,
                sex=person.sex,
                birth_date=person.birth_date,
                nationality=holder.nationality,
                passport_number=holder.passport_number,
            )
    await link_record(
        journal,
        holder.person_id,
        Agency.EXIT_ENTRY,
        TRAVELLER_LINK,
        traveller,
        traveller,
        "passport and nationality",
    )
    return traveller


async def _current_permit(work: PermitWork, person_id: int) -> WorkPermit | None:
    applicants = (await work.store.links_by_person([person_id]))[0].owners(Agency.WORK_PERMIT_SYSTEM)
    if not applicants:
        return None
    found = (await work.sources.work_permits.current_permit_by_applicant([applicants], work.today))[0]
    return found if isinstance(found, WorkPermit) else None


async def issue_z_visa(work: PermitWork, journal: Journal, arguments: dict[str, Any]) -> dict[str, Any]:
    letter = arguments["notificationLetterNumber"].strip().upper()
    permit = (await work.sources.work_permits.current_permit_by_letter([letter], work.today))[0]
    if permit is None or isinstance(permit, SourceDataInvalid):
        raise UserFailure(
            UserErrorCode.NOT_FOUND,
            "No permit has this Notification Letter.",
            ["input", "notificationLetterNumber"],
        )
    if permit.status not in (WorkPermitStatus.NOTICE_ISSUED, WorkPermitStatus.VALID):
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE,
            f"A Z visa needs a notice-issued or valid permit; this one is {permit.status.value}.",
            ["input", "notificationLetterNumber"],
        )
    holder = await _holder(work, arguments["passport"])
    if holder.person_id != await work.person_of(permit):
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE,
            "The Notification Letter was issued for another passport's holder.",
            ["input", "passport"],
        )
    valid_to: date = arguments["validTo"]
    if valid_to <= work.today:
        raise UserFailure(UserErrorCode.INVALID_INPUT, "Must be after today.", ["input", "validTo"])
    traveller = await _traveller(work, journal, holder)
    async with journal.writing(EE) as conn:
        visa = await ee_writes.issue_visa(journal, conn, traveller, "Z", work.today, valid_to, letter)
    return {"visa": visa}


async def record_entry(work: PermitWork, journal: Journal, arguments: dict[str, Any]) -> dict[str, Any]:
    holder = await _holder(work, arguments["passport"])
    visa_number = arguments["visaNumber"].strip().upper()
    field = ["input", "visaNumber"]
    visa = readable((await work.sources.exit_entry.visas_by_number([visa_number]))[0], "visa", field)
    if visa is None:
        raise UserFailure(UserErrorCode.NOT_FOUND, "No visa has this number.", field)
    traveller = await _traveller(work, journal, holder)
    if visa.owner != traveller:
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE,
            "This visa was issued to another passport's holder.",
            ["input", "visaNumber"],
        )
    entered: date = arguments["enteredOn"]
    if entered > work.today or entered < visa.issued_on or (visa.valid_to and entered > visa.valid_to):
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE,
            "The entry must fall within the visa's validity, and not in the future.",
            ["input", "enteredOn"],
        )
    port = arguments["port"].strip().upper()
    if len(port) != 3 or not port.isalpha():
        raise UserFailure(
            UserErrorCode.INVALID_INPUT, "A port of entry is a 3-letter code such as PEK.", ["input", "port"]
        )
    async with journal.writing(EE) as conn:
        if await ee_writes.entry_recorded(conn, traveller, entered, port):
            raise UserFailure(
                UserErrorCode.CONFLICT, "This entry is recorded already.", ["input", "enteredOn"]
            )
        key = await ee_writes.record_entry(journal, conn, traveller, entered, port, visa_number)
    return {"entry": list(key)}


async def apply_for_residence(
    work: PermitWork, journal: Journal, arguments: dict[str, Any]
) -> dict[str, Any]:
    holder = await _holder(work, arguments["passport"])
    permit = await _current_permit(work, holder.person_id)
    evidence: dict[str, str] = {k: v for k, v in arguments["evidence"].items() if v is not None}
    ((kind, value),) = evidence.items()
    await _check_evidence(work, holder, permit, kind, value)
    assert permit is not None
    traveller = await _traveller(work, journal, holder)
    await _entered_on_z_visa(work, traveller)
    valid_to: date = arguments["validTo"]
    _check_residence_end(work, permit, work.today, valid_to)
    office = arguments["issuingOffice"].strip()
    if not office:
        raise UserFailure(UserErrorCode.INVALID_INPUT, "Name the issuing office.", ["input", "issuingOffice"])
    async with journal.writing(EE) as conn:
        number = await ee_writes.issue_residence_permit(
            journal, conn, traveller, work.today, valid_to, office, CHANNELS[kind]
        )
    await add_identifier(journal, IdentifierKind.RESIDENCE_PERMIT_NUMBER, number, holder.person_id)
    message = f"Your residence permit {number} is issued, valid until {valid_to}."
    await announce(journal, work.store, holder.person_id, NotificationKind.RESIDENCE_PERMIT_ISSUED, message)
    return {"residencePermit": number}


async def extend_residence(work: PermitWork, journal: Journal, arguments: dict[str, Any]) -> dict[str, Any]:
    number = arguments["residencePermitNumber"].strip().upper()
    field = ["input", "residencePermitNumber"]
    found = (await work.sources.exit_entry.residence_permits_by_number([number], work.today))[0]
    residence = readable(found, "residence permit", field)
    if residence is None:
        raise UserFailure(UserErrorCode.NOT_FOUND, "No residence permit has this number.", field)
    ends = residence.valid_to
    if residence.status is not ResidencePermitStatus.VALID:
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE,
            "Only a residence permit in force is extended.",
            ["input", "residencePermitNumber"],
        )
    if work.today > ends - EXTEND_AHEAD:
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE,
            "An extension is applied for at least 30 days before the permit expires.",
            ["input", "residencePermitNumber"],
        )
    person_id = (await work.store.person_ids_by_owner([(TRAVELLER_LINK, residence.owner)]))[0]
    permit = await _current_permit(work, person_id) if person_id else None
    if permit is None or permit.status is not WorkPermitStatus.VALID:
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE,
            "The holder has no valid work permit.",
            ["input", "residencePermitNumber"],
        )
    valid_to: date = arguments["validTo"]
    if valid_to <= ends:
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            f"An extension ends after the current end, {ends.isoformat()}.",
            ["input", "validTo"],
        )
    _check_residence_end(work, permit, work.today, valid_to)
    async with journal.writing(EE) as conn:
        await ee_writes.extend_residence_permit(journal, conn, number, valid_to)
    return {"residencePermit": number}


async def _check_evidence(
    work: PermitWork, holder: Holder, permit: WorkPermit | None, kind: str, value: str
) -> None:
    field = ["input", "evidence", kind]
    if permit is None or permit.status not in (WorkPermitStatus.NOTICE_ISSUED, WorkPermitStatus.VALID):
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE, "The holder has no notice-issued or valid work permit.", field
        )
    if kind == "notificationLetterNumber":
        work.check_letter(permit, value, field)
    elif kind == "electronicCardId":
        await work.check_electronic_card(permit, holder.person_id, value, field)
    else:
        if work.qr_keys is None:
            raise UserFailure(
                UserErrorCode.NOT_ELIGIBLE,
                "QR codes cannot be verified here; show the letter or the e-card.",
                field,
            )
        try:
            claims = work.qr_keys.verify_qr(value.strip())
        except QrRejected as rejected:
            raise UserFailure(
                UserErrorCode.VERIFICATION_FAILED, f"The QR code does not verify: {rejected}.", field
            ) from None
        if claims.permit_number != permit.number or claims.person != work.ids.encode(
            "Person", holder.person_id
        ):
            raise UserFailure(
                UserErrorCode.VERIFICATION_FAILED,
                "The QR code is another permit's or another person's.",
                field,
            )


async def _entered_on_z_visa(work: PermitWork, traveller: str) -> None:
    if not await work.sources.exit_entry.entered_on_visa_since(traveller, "Z", work.today - ENTRY_WINDOW):
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE,
            "A residence permit needs an entry on a Z visa within the last 30 days.",
            ["input", "passport"],
        )


def _check_residence_end(work: PermitWork, permit: WorkPermit, issued: date, valid_to: date) -> None:
    field = ["input", "validTo"]
    if permit.valid_to is None or permit.valid_to - issued < MIN_RESIDENCE:
        raise UserFailure(UserErrorCode.NOT_ELIGIBLE, "The work permit ends in under 90 days.", field)
    if valid_to - issued < MIN_RESIDENCE:
        raise UserFailure(UserErrorCode.INVALID_INPUT, "A residence permit runs at least 90 days.", field)
    if valid_to > years_after(issued, MAX_RESIDENCE_YEARS):
        raise UserFailure(UserErrorCode.INVALID_INPUT, "A residence permit runs at most 5 years.", field)
    if valid_to > permit.valid_to:
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            f"A residence permit never runs past the work permit's end, {permit.valid_to.isoformat()}.",
            field,
        )


def years_after(start: date, years: int) -> date:
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February
        return start.replace(year=start.year + years, day=28)
