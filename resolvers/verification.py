"""Verifying a work permit: by its number in the system, by the e-card that carries it, or by
its QR code (the hub's signature first, then the permit as it stands today)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from access.qr import PermitKeys, QrRejected
from adapters.card_service.spec import ELECTRONIC_CARD_BY_ID
from adapters.work_permit.spec import PERMIT_BY_NUMBER
from domain.errors import ClientError
from domain.records import (
    ElectronicCardStatus,
    PermitVerificationFailure,
    VerificationChannel,
    WorkPermit,
    WorkPermitStatus,
)
from resolvers.context import Info


@dataclass(frozen=True, slots=True)
class Verification:
    valid: bool
    failure: PermitVerificationFailure | None
    channel: VerificationChannel
    permit_number: str | None = None
    holder_name: str | None = None
    employer_name: str | None = None
    valid_to: date | None = None
    holder_id: int | None = None  # whose data this is (for the audit), not shown


async def verify(
    info: Info, work_permit_number: str | None, qr_code: str | None, electronic_card_id: str | None
) -> Verification:
    if qr_code is not None:
        return await _by_qr_code(info, qr_code)
    loaders = info.context.loaders
    if work_permit_number is not None:
        permit = await loaders.keyed(PERMIT_BY_NUMBER).load(work_permit_number.strip())
        return await _outcome(info, permit, VerificationChannel.SYSTEM)
    if electronic_card_id is None:
        raise ClientError("input", "needs exactly one of workPermitNumber, qrCode, electronicCardId")
    card_key = _electronic_card_key(info, electronic_card_id)
    card = await loaders.keyed(ELECTRONIC_CARD_BY_ID).load(card_key)
    channel = VerificationChannel.ELECTRONIC_CARD
    if card is None or card.work_permit_number is None:
        return Verification(False, PermitVerificationFailure.NOT_FOUND, channel)
    permit = await loaders.keyed(PERMIT_BY_NUMBER).load(card.work_permit_number)
    if card.status is ElectronicCardStatus.REVOKED:
        return Verification(False, PermitVerificationFailure.NOT_VALID, channel, card.work_permit_number)
    if permit is not None:
        if card.person_id != permit.person_id:
            return Verification(False, PermitVerificationFailure.HOLDER_MISMATCH, channel, permit.number)
    return await _outcome(info, permit, channel)


async def _by_qr_code(info: Info, qr_code: str) -> Verification:
    """The QR code's signature and expiry, then its permit as it stands today and its holder."""
    channel = VerificationChannel.QR_CODE
    try:
        claims = signing_keys(info).verify_qr(qr_code)
    except QrRejected as rejected:
        return Verification(False, rejected.failure, channel)
    loaders = info.context.loaders
    permit = await loaders.keyed(PERMIT_BY_NUMBER).load(claims.permit_number)
    if permit is not None:
        holder = permit.person_id
        if holder is None or info.context.ids.encode("Person", holder) != claims.person:
            return Verification(False, PermitVerificationFailure.HOLDER_MISMATCH, channel, permit.number)
    return await _outcome(info, permit, channel)


def signing_keys(info: Info) -> PermitKeys:
    """The QR and document keys of the hub serving this request."""
    return info.context.hub.permit_keys


def _electronic_card_key(info: Info, value: str) -> str:
    """An e-card's global id, or the card service's own DZKID as printed in the app."""
    if value.strip().upper().startswith("DZK"):
        return value.strip().upper()
    type_name, key = info.context.ids.decode(value, "input.electronicCardId")
    if type_name != "ElectronicCard":
        raise ClientError("input.electronicCardId", f"is the id of a {type_name}, not of an ElectronicCard")
    return key


async def _outcome(info: Info, permit: WorkPermit | None, channel: VerificationChannel) -> Verification:
    if permit is None:
        return Verification(False, PermitVerificationFailure.NOT_FOUND, channel)
    failure = None
    if permit.status is WorkPermitStatus.EXPIRED:
        failure = PermitVerificationFailure.EXPIRED
    elif permit.status is not WorkPermitStatus.VALID:
        failure = PermitVerificationFailure.NOT_VALID
    loaders = info.context.loaders
    person_id = permit.person_id
    holder = await loaders.person_by_id.load(person_id) if person_id is not None else None
    return Verification(
        valid=failure is None,
        failure=failure,
        channel=channel,
        permit_number=permit.number,
        holder_name=full_name(holder.surname, holder.given_names) if holder else None,
        employer_name=permit.employer.name if permit.employer else None,
        valid_to=permit.valid_to,
        holder_id=person_id,
    )


def full_name(surname: str, given_names: str | None) -> str:
    """`Surname, Given Names` (surname alone for single-name persons): which part is the
    surname stays unambiguous."""
    return f"{surname}, {given_names}" if given_names else surname
