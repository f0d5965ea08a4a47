"""The work-permit lifecycle (DOMAIN.md workflows 1 and 6): apply, issue the Notification
Letter or reject, activate after entry, extend, change, cancel; whenever a permit is
activated, extended, changed or cancelled, the permit information on the person's cards
changes with it, in the same run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from access.qr import PermitKeys
from adapters import Sources
from adapters.card_service import ELECTRONIC_CARD_LINK
from adapters.card_service import writes as card_writes
from adapters.countries import ALPHA3
from adapters.identifiers import DISTRICT_CODE, is_valid_credit_code
from adapters.work_permit import APPLICANT_LINK
from adapters.work_permit import writes as wp_writes
from domain.errors import ClientError, SourceDataInvalid, UserErrorCode
from domain.records import (
    SHANGHAI,
    Agency,
    ElectronicCard,
    ElectronicCardStatus,
    NotificationKind,
    PermitEventKind,
    Sex,
    WorkPermit,
    WorkPermitStatus,
)
from identity.linking import passport_identifier
from identity.store import (
    INDEX,
    PASSPORT,
    PERSON,
    HubStore,
    IdentifierKind,
)
from identity.tables import table_of
from opaque.ids import GlobalIds
from workflows.engine import HUB_STORE, Journal, UserFailure, readable
from workflows.hub_records import add_identifier, announce, link_record
from workflows.tables import PendingPermit

PENDING = table_of(PendingPermit)
WP = Agency.WORK_PERMIT_SYSTEM.value


@dataclass(frozen=True)
class PermitWork:
    """What a permit workflow needs: the sources, the hub's store and its clock."""

    sources: Sources
    store: HubStore
    today: date
    ids: GlobalIds  # to read the e-card and person ids presented as evidence
    qr_keys: PermitKeys | None = None  # to verify a permit's QR code presented as evidence

    # ------------------------------------------------------------ reads

    async def current_period(self, number: str, field: list[str]) -> WorkPermit:
        found = (await self.sources.work_permits.current_permit_by_number([number.strip()], self.today))[0]
        permit = readable(found, "work-permit record", field)
        if permit is None:
            raise UserFailure(UserErrorCode.NOT_FOUND, f"No work permit has the number {number!r}.", field)
        return permit

    async def period(self, key: str, field: list[str]) -> WorkPermit:
        found = (await self.sources.work_permits.permits_by_id([key], self.today))[0]
        if found is None or isinstance(found, SourceDataInvalid):
            raise UserFailure(UserErrorCode.NOT_FOUND, "No work permit period has this id.", field)
        return found

    async def person_of(self, permit: WorkPermit) -> int | None:
        return (await self.store.person_ids_by_owner([(APPLICANT_LINK, permit.owner)]))[0]

    async def employer_name(self, credit_code: str) -> str:
        employer = (await self.sources.work_permits.employers_by_credit_code([credit_code]))[0]
        if employer is None:
            employer = (await self.sources.insurance.employers_by_credit_code([credit_code]))[0]
        return employer.name if employer else credit_code

    # ------------------------------------------------------------ evidence a foreigner presents

    @staticmethod
    def check_letter(permit: WorkPermit, letter: str, field: list[str]) -> None:
        if letter.strip().upper() != (permit.notification_letter_number or ""):
            raise UserFailure(
                UserErrorCode.VERIFICATION_FAILED, "The Notification Letter is not this permit's.", field
            )

    def electronic_card_key(self, card_id: str, field: list[str]) -> str:
        """An e-card's DZKID, from its global id or the DZKID the app shows."""
        key = card_id.strip().upper()
        if key.startswith("DZK"):
            return key
        try:
            return self.ids.key_of(card_id, "ElectronicCard", ".".join(field))
        except ClientError:
            raise UserFailure(UserErrorCode.INVALID_INPUT, "Not an e-card id.", field) from None

    async def check_electronic_card(
        self, permit: WorkPermit, person_id: int | None, card_id: str, field: list[str]
    ) -> None:
        """The e-card is signed, carries this permit, and is the person's own."""
        card = (await self.sources.cards.electronic_cards_by_id([self.electronic_card_key(card_id, field)]))[
            0
        ]
        if (
            not isinstance(card, ElectronicCard)
            or card.status is not ElectronicCardStatus.SIGNED
            or card.work_permit_number != permit.number
        ):
            raise UserFailure(
                UserErrorCode.VERIFICATION_FAILED, "The e-card does not carry this permit.", field
            )
        if (await self.store.person_ids_by_owner([(ELECTRONIC_CARD_LINK, card.owner)]))[0] != person_id:
            raise UserFailure(UserErrorCode.VERIFICATION_FAILED, "The e-card is another person's.", field)

    # ------------------------------------------------------------ the hub's own records

    async def register_person(
        self, journal: Journal, opened: wp_writes.OpenedPeriod, application: wp_writes.Application
    ) -> int:
        """A new applicant becomes a person of the hub at once, findable by permit and passport."""
        key = str(opened.applicant_key)
        async with journal.writing(HUB_STORE) as conn:
            found = (
                await conn.execute(select(PERSON.c.id).where(PERSON.c.anchor_key == key))
            ).scalar_one_or_none()
            if found is None:
                latest = (
                    await conn.execute(select(PERSON.c.id).order_by(PERSON.c.id.desc()).limit(1))
                ).scalar()
                person_id = int(latest or 0) + 1
                core = {
                    "id": person_id,
                    "surname": application.surname,
                    "given_names": application.given_names,
                    "sex": application.sex.value,
                    "birth_date": application.birth_date,
                    "nationality": application.nationality,
                    "anchor_key": key,
                }
                await journal.insert(conn, HUB_STORE, PERSON, core, ["id"])
                index = {"person_id": person_id, "nationality": application.nationality, "insured": False}
                await journal.insert(conn, HUB_STORE, INDEX, index, ["person_id"])
                passport = {
                    "person_id": person_id,
                    "number": application.passport_number,
                    "nationality": application.nationality,
                    "valid_from": None,
                    "valid_to": None,
                    "current": True,
                }
                passport_key = ["person_id", "number", "nationality"]
                await journal.insert(conn, HUB_STORE, PASSPORT, passport, passport_key)
            else:
                person_id = int(found)
        await link_record(
            journal, person_id, Agency.WORK_PERMIT_SYSTEM, APPLICANT_LINK, key, key, "applicant"
        )
        await add_identifier(journal, IdentifierKind.WORK_PERMIT_NUMBER, opened.permit_number, person_id)
        identifier = passport_identifier(application.passport_number, application.nationality)
        await add_identifier(journal, IdentifierKind.PASSPORT, identifier, person_id)
        return person_id

    async def refresh_index(self, journal: Journal, person_id: int | None, applicant_key: str) -> None:
        """The person index follows the current period, so statistics stay current."""
        if person_id is None:
            return
        current = (
            await self.sources.work_permits.current_permit_by_applicant([(applicant_key,)], self.today)
        )[0]
        if current is None or isinstance(current, SourceDataInvalid):
            return
        raw_status = current.status
        if (
            raw_status is WorkPermitStatus.EXPIRED
            and current.valid_to is not None
            and current.valid_to < self.today
        ):
            raw_status = (
                WorkPermitStatus.VALID
            )  # the index keeps the raw status; expiry is computed when counted
        async with journal.writing(HUB_STORE) as conn:
            await journal.update(
                conn,
                HUB_STORE,
                INDEX,
                {"person_id": person_id},
                {
                    "talent_category": current.category.value,
                    "permit_status": raw_status.value,
                    "permit_valid_to": current.valid_to,
                    "work_district": current.work_district,
                    "employer_credit_code": current.employer.credit_code if current.employer else None,
                },
            )

    async def carry_onto_cards(
        self,
        journal: Journal,
        person_id: int | None,
        number: str,
        status: WorkPermitStatus,
        valid_to: date | None,
    ) -> None:
        """DOMAIN.md workflow 6: the cards carry the permit as it now stands."""
        if person_id is None:
            return
        holders = (await self.store.links_by_person([person_id]))[0].owners(Agency.CARD_SERVICE)
        async with journal.writing(Agency.CARD_SERVICE.value) as conn:
            await card_writes.load_permit(
                journal, conn, holders, number, status, valid_to, datetime.now(SHANGHAI)
            )


# ---------------------------------------------------------------- the mutations' bodies


async def apply(work: PermitWork, journal: Journal, arguments: dict[str, Any]) -> dict[str, Any]:
    applicant = arguments["applicant"]
    sex = Sex(applicant["sex"])
    if sex not in wp_writes.SEXES_RECORDED:
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            "The work-permit system records sex as MALE or FEMALE only.",
            ["input", "applicant", "sex"],
        )
    nationality = applicant["nationality"].strip().upper()
    if nationality not in ALPHA3:
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            "Must be an ISO 3166-1 alpha-3 country code.",
            ["input", "applicant", "nationality"],
        )
    credit_code = arguments["employerCreditCode"].strip().upper()
    if not is_valid_credit_code(credit_code):
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            "Not a Unified Social Credit Code (GB 32100 check character).",
            ["input", "employerCreditCode"],
        )
    if not DISTRICT_CODE.match(arguments["workDistrict"].strip()):
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            "Must be a 6-digit GB/T 2260 division code.",
            ["input", "workDistrict"],
        )
    if arguments["validTo"] <= work.today:
        raise UserFailure(UserErrorCode.INVALID_INPUT, "Must be after today.", ["input", "validTo"])
    name = applicant["name"]
    if not name["surname"].strip():
        raise UserFailure(
            UserErrorCode.INVALID_INPUT, "A surname is required.", ["input", "applicant", "name", "surname"]
        )
    if not arguments["position"].strip():
        raise UserFailure(UserErrorCode.INVALID_INPUT, "A position is required.", ["input", "position"])
    passport = applicant["passportNumber"].strip().upper()
    async with journal.writing(WP) as conn:
        known = await wp_writes.applicant_by_passport(conn, passport, nationality)
    if known is not None:
        current = (await work.sources.work_permits.current_permit_by_applicant([(str(known),)], work.today))[
            0
        ]
        if isinstance(current, WorkPermit) and current.status in (
            WorkPermitStatus.UNDER_REVIEW,
            WorkPermitStatus.NOTICE_ISSUED,
            WorkPermitStatus.VALID,
        ):
            raise UserFailure(
                UserErrorCode.NOT_ELIGIBLE,
                f"This passport's holder already has permit {current.number} ({current.status.value}).",
                ["input", "applicant", "passportNumber"],
            )
    application = wp_writes.Application(
        surname=name["surname"].strip(),
        given_names=(name.get("givenNames") or "").strip() or None,
        sex=sex,
        birth_date=applicant["birthDate"],
        nationality=nationality,
        passport_number=passport,
        employer_credit_code=credit_code,
        employer_name=await work.employer_name(credit_code),
        category=arguments["category"],
        position=arguments["position"].strip(),
        work_district=arguments["workDistrict"].strip(),
    )
    async with journal.writing(WP) as conn:
        opened = await wp_writes.open_period(journal, conn, application, work.today)
    person_id = await work.register_person(journal, opened, application)
    async with journal.writing(HUB_STORE) as conn:
        # The requested end date is the hub's until the notice writes YXQQ/YXQZ.
        await journal.insert(
            conn,
            HUB_STORE,
            PENDING,
            {"permit_key": opened.permit_key, "valid_to": arguments["validTo"]},
            ["permit_key"],
        )
    await work.refresh_index(journal, person_id, str(opened.applicant_key))
    return {"permit": str(opened.permit_key)}


async def issue_notice(work: PermitWork, journal: Journal, permit_key: str) -> dict[str, Any]:
    permit = await work.period(permit_key, ["input", "workPermitId"])
    _require(
        permit,
        (WorkPermitStatus.UNDER_REVIEW,),
        "Only an application under review gets a letter",
        ["input", "workPermitId"],
    )
    async with work.store.engine.connect() as conn:
        requested = (
            await conn.execute(select(PENDING.c.valid_to).where(PENDING.c.permit_key == int(permit.key)))
        ).scalar_one_or_none()
    if requested is None or requested <= work.today:
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE,
            "The application has no requested end date after today.",
            ["input", "workPermitId"],
        )
    async with journal.writing(WP) as conn:
        letter = await wp_writes.next_letter_number(journal, conn, work.today)
        await wp_writes.issue_notice(journal, conn, int(permit.key), letter, work.today, requested)
        await wp_writes.decide_application(journal, conn, int(permit.key), work.today, wp_writes.APPROVED)
        await wp_writes.approved_step(
            journal, conn, int(permit.key), PermitEventKind.NOTICE, work.today, work.today
        )
    async with journal.writing(HUB_STORE) as conn:
        await journal.delete(conn, HUB_STORE, PENDING, {"permit_key": int(permit.key)})
    await work.refresh_index(journal, await work.person_of(permit), permit.owner)
    return {"permit": permit.key}


async def reject(work: PermitWork, journal: Journal, permit_key: str, reason: str) -> dict[str, Any]:
    permit = await work.period(permit_key, ["input", "workPermitId"])
    _require(
        permit,
        (WorkPermitStatus.UNDER_REVIEW,),
        "Only an application under review can be rejected",
        ["input", "workPermitId"],
    )
    if not reason.strip():
        raise UserFailure(UserErrorCode.INVALID_INPUT, "A rejection gives its reason.", ["input", "reason"])
    async with journal.writing(WP) as conn:
        await wp_writes.set_status(journal, conn, int(permit.key), WorkPermitStatus.REJECTED)
        await wp_writes.decide_application(journal, conn, int(permit.key), work.today, wp_writes.REJECTED)
        await wp_writes.approved_step(
            journal,
            conn,
            int(permit.key),
            PermitEventKind.REJECTION,
            work.today,
            work.today,
            remark=reason.strip(),
        )
    await work.refresh_index(journal, await work.person_of(permit), permit.owner)
    return {"permit": permit.key}


async def activate(work: PermitWork, journal: Journal, number: str, entered_on: date) -> dict[str, Any]:
    permit = await work.current_period(number, ["input", "workPermitNumber"])
    _require(
        permit,
        (WorkPermitStatus.NOTICE_ISSUED,),
        "Only a permit with a Notification Letter is activated",
        ["input", "workPermitNumber"],
    )
    if entered_on > work.today:
        raise UserFailure(
            UserErrorCode.INVALID_INPUT, "The entry cannot be in the future.", ["input", "enteredOn"]
        )
    person_id = await work.person_of(permit)
    travellers = (
        (await work.store.links_by_person([person_id]))[0].owners(Agency.EXIT_ENTRY) if person_id else ()
    )
    if not travellers or not await work.sources.exit_entry.entered_on(travellers, entered_on):
        raise UserFailure(
            UserErrorCode.NOT_ELIGIBLE,
            "A permit becomes valid only after an entry: exit-entry has no entry of the holder on that day.",
            ["input", "enteredOn"],
        )
    async with journal.writing(WP) as conn:
        await wp_writes.set_status(journal, conn, int(permit.key), WorkPermitStatus.VALID)
        await wp_writes.approved_step(
            journal, conn, int(permit.key), PermitEventKind.ACTIVATION, entered_on, work.today
        )
    await work.carry_onto_cards(journal, person_id, permit.number, WorkPermitStatus.VALID, permit.valid_to)
    await work.refresh_index(journal, person_id, permit.owner)
    message = f"Your work permit {permit.number} is valid until {permit.valid_to}; your cards carry it."
    await announce(
        journal, work.store, person_id, NotificationKind.PERMIT_CHANGED, message, ("WorkPermit", permit.key)
    )
    return {"permit": permit.key}


async def extend(work: PermitWork, journal: Journal, number: str, valid_to: date) -> dict[str, Any]:
    permit = await _valid(work, number)
    if permit.valid_to is not None and valid_to <= permit.valid_to:
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            f"An extension ends after the current end, {permit.valid_to.isoformat()}.",
            ["input", "validTo"],
        )
    async with journal.writing(WP) as conn:
        # A legacy physical permit moves to the integrated procedure on its first extension.
        await wp_writes.extend_period(journal, conn, int(permit.key), valid_to)
        await wp_writes.approved_step(
            journal,
            conn,
            int(permit.key),
            PermitEventKind.EXTENSION,
            work.today,
            work.today,
            remark=f"YXQZ: {permit.valid_to} -> {valid_to}",
        )
    person_id = await work.person_of(permit)
    await work.carry_onto_cards(journal, person_id, permit.number, WorkPermitStatus.VALID, valid_to)
    await work.refresh_index(journal, person_id, permit.owner)
    message = f"Your work permit {permit.number} is extended until {valid_to}."
    await announce(
        journal, work.store, person_id, NotificationKind.PERMIT_CHANGED, message, ("WorkPermit", permit.key)
    )
    return {"permit": permit.key}


async def change(
    work: PermitWork, journal: Journal, number: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    permit = await _valid(work, number)
    employer: tuple[str, str] | None = None
    credit_code = (arguments.get("employerCreditCode") or "").strip().upper()
    if credit_code:
        if not is_valid_credit_code(credit_code):
            raise UserFailure(
                UserErrorCode.INVALID_INPUT,
                "Not a Unified Social Credit Code (GB 32100 check character).",
                ["input", "employerCreditCode"],
            )
        employer = (credit_code, await work.employer_name(credit_code))
    position = (arguments.get("position") or "").strip()
    district = (arguments.get("workDistrict") or "").strip()
    if district:
        if not DISTRICT_CODE.match(district):
            raise UserFailure(
                UserErrorCode.INVALID_INPUT,
                "Must be a 6-digit GB/T 2260 division code.",
                ["input", "workDistrict"],
            )
    change = wp_writes.PeriodChange(employer, position or None, district or None)
    if change == wp_writes.PeriodChange():
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            "A change names at least one of employerCreditCode, position, workDistrict.",
            ["input"],
        )
    async with journal.writing(WP) as conn:
        remarks = await wp_writes.change_period(journal, conn, permit, change, work.today)
    person_id = await work.person_of(permit)
    await work.carry_onto_cards(journal, person_id, permit.number, WorkPermitStatus.VALID, permit.valid_to)
    await work.refresh_index(journal, person_id, permit.owner)
    message = f"Your work permit {permit.number} was changed: {remarks}."
    await announce(
        journal, work.store, person_id, NotificationKind.PERMIT_CHANGED, message, ("WorkPermit", permit.key)
    )
    return {"permit": permit.key}


async def cancel(work: PermitWork, journal: Journal, number: str, reason: str) -> dict[str, Any]:
    permit = await work.current_period(number, ["input", "workPermitNumber"])
    _require(
        permit,
        (WorkPermitStatus.VALID, WorkPermitStatus.NOTICE_ISSUED),
        "Only a valid or notice-issued permit is cancelled",
        ["input", "workPermitNumber"],
    )
    if not reason.strip():
        raise UserFailure(
            UserErrorCode.INVALID_INPUT, "A cancellation gives its reason.", ["input", "reason"]
        )
    async with journal.writing(WP) as conn:
        await wp_writes.set_status(journal, conn, int(permit.key), WorkPermitStatus.CANCELLED)
        await wp_writes.approved_step(
            journal,
            conn,
            int(permit.key),
            PermitEventKind.CANCELLATION,
            work.today,
            work.today,
            remark=reason.strip(),
        )
    person_id = await work.person_of(permit)
    await work.carry_onto_cards(
        journal, person_id, permit.number, WorkPermitStatus.CANCELLED, permit.valid_to
    )
    await work.refresh_index(journal, person_id, permit.owner)
    message = f"Your work permit {permit.number} was cancelled: {reason.strip()}."
    await announce(
        journal, work.store, person_id, NotificationKind.PERMIT_CANCELLED, message, ("WorkPermit", permit.key)
    )
    return {"permit": permit.key}


def _require(permit: WorkPermit, allowed: tuple[WorkPermitStatus, ...], rule: str, field: list[str]) -> None:
    """NOT_ELIGIBLE, naming the rule and the status the permit has, unless it has one allowed."""
    if permit.status not in allowed:
        raise UserFailure(UserErrorCode.NOT_ELIGIBLE, f"{rule}; this one is {permit.status.value}.", field)


async def _valid(work: PermitWork, number: str) -> WorkPermit:
    permit = await work.current_period(number, ["input", "workPermitNumber"])
    _require(
        permit,
        (WorkPermitStatus.VALID,),
        "Only a valid permit is extended or changed",
        ["input", "workPermitNumber"],
    )
    return permit
