"""The notice's workflows as mutations: each answers its record and `userErrors`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Annotated, TypeVar

import strawberry
from strawberry.tools import merge_types
from strawberry.types.base import get_object_definition

from domain import errors
from resolvers import benefits as benefit_mutations
from resolvers import mutations
from resolvers import news as news_mutations
from resolvers.context import Info
from resolvers.mutations import PermitAnswer
from schema.benefits import BenefitPayment
from schema.card import ElectronicCard, SocialSecurityCard
from schema.common import Sex, TalentCategory, VerificationMethod, describe_values, mutation
from schema.inputs import PassportInput, PersonNameInput
from schema.news import News
from schema.permit import WorkPermit
from schema.person import Person
from schema.residence import Entry, ResidencePermit, Visa

UserErrorCode = errors.UserErrorCode
strawberry.enum(UserErrorCode, description="Why a mutation did not do what was asked.")
describe_values(
    UserErrorCode,
    {
        "NOT_FOUND": "A record the input names does not exist.",
        "INVALID_INPUT": "An input value breaks a rule; `field` names it.",
        "NOT_ELIGIBLE": "The notice's rules do not allow this step for this record now.",
        "VERIFICATION_FAILED": "A check the step needs failed, e.g. a real-person attestation or a QR code.",
        "CONFLICT": "The step is done already, or the idempotency key was used for another input.",
        "FORBIDDEN": "The caller may not do this, or not to this record.",
        "SOURCE_UNAVAILABLE": "An agency's system did not answer; nothing was written.",
    },
)


@strawberry.type(description="A rule the input broke: its code, what it means, and the input field.")
class UserError:
    code: UserErrorCode = strawberry.field(description="The kind of error.")
    message: str = strawberry.field(description="What went wrong, in words.")
    field: list[str] | None = strawberry.field(description="The path of the input field at fault.")


def _errors(answer: PermitAnswer | mutations.Answer) -> list[UserError]:
    return [
        UserError(code=UserErrorCode(e.code), message=e.message, field=e.field) for e in answer.user_errors
    ]


@strawberry.input(description="The foreigner applying, as the passport shows them.")
class ApplicantInput:
    name: PersonNameInput = strawberry.field(description="Surname and given names.")
    sex: Sex = strawberry.field(description="MALE or FEMALE (the work-permit system records no other).")
    birth_date: date = strawberry.field(description="Date of birth.")
    nationality: str = strawberry.field(description="ISO 3166-1 alpha-3.")
    passport_number: str = strawberry.field(description="The current passport's number.")


@strawberry.input(description="An online application for a work permit.")
class ApplyForWorkPermitInput:
    applicant: ApplicantInput = strawberry.field(description="Who applies.")
    employer_credit_code: str = strawberry.field(description="The employer's Unified Social Credit Code.")
    category: TalentCategory = strawberry.field(description="The talent category applied for.")
    position: str = strawberry.field(description="The position.")
    work_district: str = strawberry.field(description="The work district (GB/T 2260 code).")
    valid_to: date = strawberry.field(description="The end date asked for; written at the notice.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="Makes a retry safe (24 h or more)."
    )


@strawberry.input(description="Issue the Notification Letter for an application under review.")
class IssueNotificationLetterInput:
    work_permit_id: strawberry.ID = strawberry.field(description="The permit period's global id.")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.input(description="Reject an application under review, with the reason.")
class RejectWorkPermitApplicationInput:
    work_permit_id: strawberry.ID = strawberry.field(description="The permit period's global id.")
    reason: str = strawberry.field(description="Why; kept in the business record.")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.input(description="Make a notice-issued permit valid after the holder's entry.")
class ActivateWorkPermitInput:
    work_permit_number: str = strawberry.field(description="The permit number.")
    entered_on: date = strawberry.field(description="The day of entry, as exit-entry recorded it.")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.input(description="Extend a valid permit.")
class ExtendWorkPermitInput:
    work_permit_number: str = strawberry.field(description="The permit number.")
    valid_to: date = strawberry.field(description="The new end date.")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.input(description="Change a valid permit's employer, position or district (at least one).")
class ChangeWorkPermitInput:
    work_permit_number: str = strawberry.field(description="The permit number.")
    employer_credit_code: str | None = strawberry.field(default=None, description="The new employer.")
    position: str | None = strawberry.field(default=None, description="The new position.")
    work_district: str | None = strawberry.field(default=None, description="The new work district.")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.input(description="Cancel a permit, with the reason.")
class CancelWorkPermitInput:
    work_permit_number: str = strawberry.field(description="The permit number.")
    reason: str = strawberry.field(description="Why; kept in the business record.")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


_Payload = TypeVar("_Payload")


def _payload(name: str, description: str) -> type:
    @strawberry.type(name=name, description=description)
    class Payload:
        work_permit: WorkPermit | None = strawberry.field(description="The permit period as it now stands.")
        user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")

    return Payload


if TYPE_CHECKING:
    # For mypy every permit payload is this one shape; at run time each is its own named
    # strawberry type, as `_payload` builds it (a variable is no type to mypy).
    @strawberry.type
    class _PermitPayload:
        work_permit: WorkPermit | None
        user_errors: list[UserError]

    ApplyForWorkPermitPayload = _PermitPayload
    IssueNotificationLetterPayload = _PermitPayload
    RejectWorkPermitApplicationPayload = _PermitPayload
    ActivateWorkPermitPayload = _PermitPayload
    ExtendWorkPermitPayload = _PermitPayload
    ChangeWorkPermitPayload = _PermitPayload
    CancelWorkPermitPayload = _PermitPayload
else:
    ApplyForWorkPermitPayload = _payload("ApplyForWorkPermitPayload", "The application, under review.")
    IssueNotificationLetterPayload = _payload("IssueNotificationLetterPayload", "The permit, notice issued.")
    RejectWorkPermitApplicationPayload = _payload(
        "RejectWorkPermitApplicationPayload", "The application, rejected."
    )
    ActivateWorkPermitPayload = _payload("ActivateWorkPermitPayload", "The permit, now valid.")
    ExtendWorkPermitPayload = _payload("ExtendWorkPermitPayload", "The permit, extended.")
    ChangeWorkPermitPayload = _payload("ChangeWorkPermitPayload", "The permit, changed.")
    CancelWorkPermitPayload = _payload("CancelWorkPermitPayload", "The permit, cancelled.")


def _answer(payload: Callable[..., _Payload], answer: PermitAnswer) -> _Payload:
    return payload(work_permit=answer.work_permit, user_errors=_errors(answer))


@strawberry.type
class PermitMutation:
    @mutation(description="Apply for a work permit online (status under review).")
    async def apply_for_work_permit(
        self,
        info: Info,
        input: Annotated[
            ApplyForWorkPermitInput,
            strawberry.argument(
                description="The applicant, the employer and the position, district and period applied for."
            ),
        ],
    ) -> ApplyForWorkPermitPayload:
        applicant = input.applicant
        arguments = {
            "applicant": {
                "name": {"surname": applicant.name.surname, "givenNames": applicant.name.given_names},
                "sex": applicant.sex.value,
                "birthDate": applicant.birth_date,
                "nationality": applicant.nationality,
                "passportNumber": applicant.passport_number,
            },
            "employerCreditCode": input.employer_credit_code,
            "category": input.category.value,
            "position": input.position,
            "workDistrict": input.work_district,
            "validTo": input.valid_to,
        }
        answer = await mutations.apply_for_work_permit(info, arguments, input.idempotency_key)
        return _answer(ApplyForWorkPermitPayload, answer)

    @mutation(description="Issue the Notification Letter; the permit's dates are written now.")
    async def issue_notification_letter(
        self,
        info: Info,
        input: Annotated[
            IssueNotificationLetterInput,
            strawberry.argument(description="The permit period under review that is approved."),
        ],
    ) -> IssueNotificationLetterPayload:
        answer = await mutations.issue_notification_letter(info, input.work_permit_id, input.idempotency_key)
        return _answer(IssueNotificationLetterPayload, answer)

    @mutation(description="Reject an application under review.")
    async def reject_work_permit_application(
        self,
        info: Info,
        input: Annotated[
            RejectWorkPermitApplicationInput,
            strawberry.argument(description="The permit period under review and why it is rejected."),
        ],
    ) -> RejectWorkPermitApplicationPayload:
        answer = await mutations.reject_work_permit_application(
            info, input.work_permit_id, input.reason, input.idempotency_key
        )
        return _answer(RejectWorkPermitApplicationPayload, answer)

    @mutation(description="Make a permit valid after the holder entered; the cards carry it.")
    async def activate_work_permit(
        self,
        info: Info,
        input: Annotated[
            ActivateWorkPermitInput,
            strawberry.argument(description="The notice-issued permit and the day its holder entered China."),
        ],
    ) -> ActivateWorkPermitPayload:
        answer = await mutations.activate_work_permit(
            info, input.work_permit_number, input.entered_on, input.idempotency_key
        )
        return _answer(ActivateWorkPermitPayload, answer)

    @mutation(
        description="Extend a valid permit; a legacy physical permit moves to the integrated procedure."
    )
    async def extend_work_permit(
        self,
        info: Info,
        input: Annotated[
            ExtendWorkPermitInput, strawberry.argument(description="The valid permit and its new end date.")
        ],
    ) -> ExtendWorkPermitPayload:
        answer = await mutations.extend_work_permit(
            info, input.work_permit_number, input.valid_to, input.idempotency_key
        )
        return _answer(ExtendWorkPermitPayload, answer)

    @mutation(
        description="Change a valid permit; a legacy physical permit moves to the integrated procedure."
    )
    async def change_work_permit(
        self,
        info: Info,
        input: Annotated[
            ChangeWorkPermitInput,
            strawberry.argument(
                description="The valid permit and what changes: employer, position or work district."
            ),
        ],
    ) -> ChangeWorkPermitPayload:
        changes = {
            "employerCreditCode": input.employer_credit_code,
            "position": input.position,
            "workDistrict": input.work_district,
        }
        answer = await mutations.change_work_permit(
            info, input.work_permit_number, changes, input.idempotency_key
        )
        return _answer(ChangeWorkPermitPayload, answer)

    @mutation(description="Cancel a permit; the reason is kept and the cards carry the cancellation.")
    async def cancel_work_permit(
        self,
        info: Info,
        input: Annotated[
            CancelWorkPermitInput, strawberry.argument(description="The permit and why it is cancelled.")
        ],
    ) -> CancelWorkPermitPayload:
        answer = await mutations.cancel_work_permit(
            info, input.work_permit_number, input.reason, input.idempotency_key
        )
        return _answer(CancelWorkPermitPayload, answer)


# ---------------------------------------------------------------- exit-entry


@strawberry.input(description="Issue a Z visa against a Notification Letter.")
class IssueZVisaInput:
    passport: PassportInput = strawberry.field(description="The passport the visa is for.")
    notification_letter_number: str = strawberry.field(
        description="The letter of a notice-issued or valid permit."
    )
    valid_to: date = strawberry.field(description="The visa's last day of use.")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.input(description="Record an entry into China.")
class RecordEntryInput:
    passport: PassportInput = strawberry.field(description="The passport shown at the border.")
    visa_number: str = strawberry.field(description="The visa entered on.")
    entered_on: date = strawberry.field(description="The day of entry.")
    port: str = strawberry.field(description="The port of entry (3-letter code such as PEK).")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.input(
    one_of=True, description="How the work permit is verified for a residence permit: exactly one."
)
class ResidenceEvidenceInput:
    notification_letter_number: str | None = strawberry.field(
        default=strawberry.UNSET, description="Checked in the system."
    )
    electronic_card_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="The e-card carrying the permit."
    )
    qr_code: str | None = strawberry.field(default=strawberry.UNSET, description="The permit's QR code.")


@strawberry.input(description="Apply for a residence permit after entering on a Z visa.")
class ApplyForResidencePermitInput:
    passport: PassportInput = strawberry.field(description="The applicant's passport.")
    evidence: ResidenceEvidenceInput = strawberry.field(description="How the work permit is verified.")
    issuing_office: str = strawberry.field(description="The exit-entry office issuing the permit.")
    valid_to: date = strawberry.field(description="90 days to 5 years, never past the work permit's end.")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.input(description="Extend a residence permit, at least 30 days before it expires.")
class ExtendResidencePermitInput:
    residence_permit_number: str = strawberry.field(description="The residence permit number.")
    valid_to: date = strawberry.field(description="The new last day.")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.type(description="The visa issued.")
class IssueZVisaPayload:
    visa: Visa | None = strawberry.field(description="The Z visa, recording the letter number.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")


@strawberry.type(description="The entry recorded.")
class RecordEntryPayload:
    entry: Entry | None = strawberry.field(description="The entry.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")


@strawberry.type(description="The residence permit issued.")
class ApplyForResidencePermitPayload:
    residence_permit: ResidencePermit | None = strawberry.field(description="The residence permit.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")


@strawberry.type(description="The residence permit extended.")
class ExtendResidencePermitPayload:
    residence_permit: ResidencePermit | None = strawberry.field(description="The residence permit.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")


def _passport(value: PassportInput) -> dict[str, str]:
    return {"number": value.number, "nationality": value.nationality}


@strawberry.type
class ExitEntryMutation:
    @mutation(description="Issue a Z visa against a Notification Letter of the same passport's holder.")
    async def issue_z_visa(
        self,
        info: Info,
        input: Annotated[
            IssueZVisaInput,
            strawberry.argument(
                description="The passport, the Notification Letter it rests on, and the visa's end date."
            ),
        ],
    ) -> IssueZVisaPayload:
        arguments = {
            "passport": _passport(input.passport),
            "notificationLetterNumber": input.notification_letter_number,
            "validTo": input.valid_to,
        }
        answer = await mutations.issue_z_visa(info, arguments, input.idempotency_key)
        return IssueZVisaPayload(visa=answer.record, user_errors=_errors(answer))

    @mutation(description="Record an entry on a visa of the passport's holder.")
    async def record_entry(
        self,
        info: Info,
        input: Annotated[
            RecordEntryInput,
            strawberry.argument(
                description="The passport and visa shown at the border, the day and the port of entry."
            ),
        ],
    ) -> RecordEntryPayload:
        arguments = {
            "passport": _passport(input.passport),
            "visaNumber": input.visa_number,
            "enteredOn": input.entered_on,
            "port": input.port,
        }
        answer = await mutations.record_entry(info, arguments, input.idempotency_key)
        return RecordEntryPayload(entry=answer.record, user_errors=_errors(answer))

    @mutation(description="Issue a residence permit after an entry on a Z visa within 30 days.")
    async def apply_for_residence_permit(
        self,
        info: Info,
        input: Annotated[
            ApplyForResidencePermitInput,
            strawberry.argument(
                description="The passport, the valid permit or e-card it rests on, the office and end date."
            ),
        ],
    ) -> ApplyForResidencePermitPayload:
        evidence = {
            "notificationLetterNumber": _given(input.evidence.notification_letter_number),
            "electronicCardId": _given(input.evidence.electronic_card_id),
            "qrCode": _given(input.evidence.qr_code),
        }
        arguments = {
            "passport": _passport(input.passport),
            "evidence": evidence,
            "issuingOffice": input.issuing_office,
            "validTo": input.valid_to,
        }
        answer = await mutations.apply_for_residence_permit(info, arguments, input.idempotency_key)
        return ApplyForResidencePermitPayload(residence_permit=answer.record, user_errors=_errors(answer))

    @mutation(description="Extend a residence permit in force, at least 30 days before it expires.")
    async def extend_residence_permit(
        self,
        info: Info,
        input: Annotated[
            ExtendResidencePermitInput,
            strawberry.argument(description="The residence permit and its new end date."),
        ],
    ) -> ExtendResidencePermitPayload:
        arguments = {"residencePermitNumber": input.residence_permit_number, "validTo": input.valid_to}
        answer = await mutations.extend_residence_permit(info, arguments, input.idempotency_key)
        return ExtendResidencePermitPayload(residence_permit=answer.record, user_errors=_errors(answer))


def _given(value: object) -> object:
    return None if value is strawberry.UNSET else value


# ---------------------------------------------------------------- insurance and cards


@strawberry.input(description="The real-person check, as the verification provider attests it.")
class IdentityVerificationInput:
    method: VerificationMethod = strawberry.field(description="Face, bank or counter verification.")
    attestation: str = strawberry.field(
        description=(
            "The verification provider's signed real-person attestation (a compact JWS the hub checks"
            " against the provider's keys): it names this reference, method and identifier, and that"
            " the check passed. Anything else registers nothing."
        )
    )
    reference: str = strawberry.field(description="The verification's reference, recorded with the card.")


@strawberry.input(one_of=True, description="The number a cardholder registers with: exactly one.")
class CardholderIdentifierInput:
    work_permit_number: str | None = strawberry.field(
        default=strawberry.UNSET, description="The work permit number."
    )
    social_security_number: str | None = strawberry.field(
        default=strawberry.UNSET, description="The social security number."
    )


@strawberry.input(description="Register an electronic social security card in the e-card app.")
class RegisterElectronicCardInput:
    name: PersonNameInput = strawberry.field(
        description="The name, checked against the permit or insurance record."
    )
    identifier: CardholderIdentifierInput = strawberry.field(
        description="The permit or social security number."
    )
    verification: IdentityVerificationInput = strawberry.field(description="The real-person check.")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.input(one_of=True, description="What enrollment is based on: exactly one.")
class EnrollmentEvidenceInput:
    notification_letter_number: str | None = strawberry.field(
        default=strawberry.UNSET, description="The Notification Letter."
    )
    electronic_card_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="The e-card carrying the permit."
    )


@strawberry.input(description="Enroll a foreigner with a valid permit in social insurance.")
class EnrollInInsuranceInput:
    work_permit_number: str = strawberry.field(description="The valid permit.")
    evidence: EnrollmentEvidenceInput = strawberry.field(description="The letter or the e-card presented.")
    employer_credit_code: str = strawberry.field(description="The employer the permit names.")
    insuring_district: str = strawberry.field(description="The insuring district (GB/T 2260 code).")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.input(description="Put a physical card into use; the permit is loaded onto it.")
class ActivateSocialSecurityCardInput:
    card_number: str = strawberry.field(description="The card pending production.")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.type(description="The registered e-card, and a one-time activation code for the person's app.")
class RegisterElectronicCardPayload:
    electronic_card: ElectronicCard | None = strawberry.field(description="The e-card, signed.")
    activation_code: str | None = strawberry.field(
        description=(
            "A one-time code for the person's own app, which exchanges it with the person's name and"
            " permit number for a cardholder token (activateCardholder); valid 7 days, 5 wrong tries."
        )
    )
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")


@strawberry.input(description="Revoke a signed e-card (a lost phone, a card withdrawn).")
class RevokeElectronicCardInput:
    electronic_card_id: strawberry.ID = strawberry.field(description="The e-card's id (or its DZKID).")
    reason: str = strawberry.field(description="Why it is revoked; kept by the hub.")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.type(description="The revoked e-card.")
class RevokeElectronicCardPayload:
    electronic_card: ElectronicCard | None = strawberry.field(description="The e-card, now revoked.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")


@strawberry.input(description="A new activation code for a signed e-card, after a new real-person check.")
class ReissueActivationCodeInput:
    electronic_card_id: strawberry.ID = strawberry.field(description="The e-card's id (or its DZKID).")
    verification: IdentityVerificationInput = strawberry.field(
        description="A new real-person check of the person the e-card carries (by permit or SS number)."
    )
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.type(description="The new activation code; the earlier ones, and their tokens, are revoked.")
class ReissueActivationCodePayload:
    electronic_card: ElectronicCard | None = strawberry.field(description="The e-card.")
    activation_code: str | None = strawberry.field(
        description="A one-time code for the person's new app (activateCardholder), valid 7 days."
    )
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")


@strawberry.input(
    description="What the person's app presents to become a cardholder: the code and who they are."
)
class ActivateCardholderInput:
    activation_code: str = strawberry.field(description="The one-time code the registration gave the app.")
    name: PersonNameInput = strawberry.field(description="The person's name, as at registration.")
    work_permit_number: str = strawberry.field(description="The person's work permit number.")


@strawberry.type(description="The cardholder token the app now holds, or why not.")
class ActivateCardholderPayload:
    cardholder_token: str | None = strawberry.field(
        description="A CARDHOLDER token for the person, valid 30 days; it names the app, not the person."
    )
    user_errors: list[UserError] = strawberry.field(description="Why no token was issued, if none was.")


@strawberry.type(description="The enrolled person and the card requested for them.")
class EnrollInInsurancePayload:
    person: Person | None = strawberry.field(description="The person, now with a social security number.")
    social_security_card: SocialSecurityCard | None = strawberry.field(
        description="The card, pending production."
    )
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")


@strawberry.type(description="The card, now in use.")
class ActivateSocialSecurityCardPayload:
    social_security_card: SocialSecurityCard | None = strawberry.field(
        description="The card, carrying the permit."
    )
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")


@strawberry.type
class CardMutation:
    @mutation(description="Register an e-card after the real-name and real-person checks.")
    async def register_electronic_card(
        self,
        info: Info,
        input: Annotated[
            RegisterElectronicCardInput,
            strawberry.argument(
                description="The person (name, permit or social security number) and their real-person proof."
            ),
        ],
    ) -> RegisterElectronicCardPayload:
        arguments = {
            "name": {"surname": input.name.surname, "givenNames": input.name.given_names},
            "identifier": {
                "workPermitNumber": _given(input.identifier.work_permit_number),
                "socialSecurityNumber": _given(input.identifier.social_security_number),
            },
            "verification": {
                "method": input.verification.method.value,
                "attestation": input.verification.attestation,
                "reference": input.verification.reference,
            },
        }
        answer = await mutations.register_electronic_card(info, arguments, input.idempotency_key)
        card, code = answer.record if answer.record else (None, None)
        return RegisterElectronicCardPayload(
            electronic_card=card, activation_code=code, user_errors=_errors(answer)
        )

    @mutation(
        description=(
            "Revoke a signed e-card: its activation codes and the cardholder tokens they became stop"
            " working; registering again makes a new e-card."
        )
    )
    async def revoke_electronic_card(
        self,
        info: Info,
        input: Annotated[
            RevokeElectronicCardInput,
            strawberry.argument(description="The signed e-card and why it is revoked."),
        ],
    ) -> RevokeElectronicCardPayload:
        answer = await mutations.revoke_electronic_card(
            info, input.electronic_card_id, input.reason, input.idempotency_key
        )
        return RevokeElectronicCardPayload(electronic_card=answer.record, user_errors=_errors(answer))

    @mutation(
        description=(
            "A new activation code for a signed e-card (a lost or new phone), after a new real-person"
            " check; the earlier codes and the cardholder tokens they became stop working. Audited."
        )
    )
    async def reissue_activation_code(
        self,
        info: Info,
        input: Annotated[
            ReissueActivationCodeInput,
            strawberry.argument(description="The signed e-card and the new real-person check."),
        ],
    ) -> ReissueActivationCodePayload:
        arguments = {
            "electronicCardId": input.electronic_card_id,
            "verification": {
                "method": input.verification.method.value,
                "attestation": input.verification.attestation,
                "reference": input.verification.reference,
            },
        }
        answer = await mutations.reissue_activation_code(info, arguments, input.idempotency_key)
        card, code = answer.record if answer.record else (None, None)
        return ReissueActivationCodePayload(
            electronic_card=card, activation_code=code, user_errors=_errors(answer)
        )

    @mutation(
        description=(
            "The person's app exchanges its one-time activation code, with the person's name and permit"
            " number, for a cardholder token: without a token, once."
        )
    )
    async def activate_cardholder(
        self,
        info: Info,
        input: Annotated[
            ActivateCardholderInput,
            strawberry.argument(
                description="The one-time activation code, the person's name and their work permit number."
            ),
        ],
    ) -> ActivateCardholderPayload:
        arguments = {
            "activationCode": input.activation_code,
            "name": {"surname": input.name.surname, "givenNames": input.name.given_names},
            "workPermitNumber": input.work_permit_number,
        }
        answer = await mutations.activate_cardholder(info, arguments)
        return ActivateCardholderPayload(cardholder_token=answer.record, user_errors=_errors(answer))

    @mutation(description="Enroll in the five insurance types and request a physical card, all or nothing.")
    async def enroll_in_insurance(
        self,
        info: Info,
        input: Annotated[
            EnrollInInsuranceInput,
            strawberry.argument(
                description="The valid permit, the evidence shown, the employer and the insuring district."
            ),
        ],
    ) -> EnrollInInsurancePayload:
        arguments = {
            "workPermitNumber": input.work_permit_number,
            "evidence": {
                "notificationLetterNumber": _given(input.evidence.notification_letter_number),
                "electronicCardId": _given(input.evidence.electronic_card_id),
            },
            "employerCreditCode": input.employer_credit_code,
            "insuringDistrict": input.insuring_district,
        }
        answer = await mutations.enroll_in_insurance(info, arguments, input.idempotency_key)
        person, card = answer.record if answer.record else (None, None)
        return EnrollInInsurancePayload(person=person, social_security_card=card, user_errors=_errors(answer))

    @mutation(description="Put a pending card into use: the permit is loaded, the e-card linked.")
    async def activate_social_security_card(
        self,
        info: Info,
        input: Annotated[
            ActivateSocialSecurityCardInput,
            strawberry.argument(description="The card pending production to put into use."),
        ],
    ) -> ActivateSocialSecurityCardPayload:
        answer = await mutations.activate_social_security_card(info, input.card_number, input.idempotency_key)
        return ActivateSocialSecurityCardPayload(
            social_security_card=answer.record, user_errors=_errors(answer)
        )


# ---------------------------------------------------------------- benefits and news


@strawberry.input(one_of=True, description="The card a benefit is paid on: exactly one.")
class BenefitCardInput:
    card_number: str | None = strawberry.field(
        default=strawberry.UNSET, description="A physical social security card in use."
    )
    electronic_card_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="A signed e-card carrying a card number (for a lost card, not a cancelled one).",
    )


@strawberry.input(
    description="Grant a benefit of the BEIJING PASS catalogue to a card, as a pending payment."
)
class GrantBenefitInput:
    card: BenefitCardInput = strawberry.field(description="The card it is paid on.")
    benefit_code: str = strawberry.field(
        description="The benefit's code in the catalogue; its amount is paid."
    )
    planned_on: date | None = strawberry.field(
        default=None, description="The day it is to be paid, today or later; today when not given."
    )
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.input(description="Mark a pending benefit payment paid.")
class MarkBenefitPaidInput:
    benefit_payment_id: strawberry.ID = strawberry.field(description="The pending payment's global id.")
    paid_on: date | None = strawberry.field(
        default=None, description="The day it was paid, not after today; today when not given."
    )
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.input(description="Reject a pending benefit payment, with the reason.")
class RejectBenefitPaymentInput:
    benefit_payment_id: strawberry.ID = strawberry.field(description="The pending payment's global id.")
    reason: str = strawberry.field(description="Why, in 1 to 500 characters; the cardholder reads it.")
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.type(description="The benefit payment as it now stands.")
class GrantBenefitPayload:
    benefit_payment: BenefitPayment | None = strawberry.field(description="The payment, pending.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")


@strawberry.type(description="The benefit payment as it now stands.")
class MarkBenefitPaidPayload:
    benefit_payment: BenefitPayment | None = strawberry.field(
        description="The payment, paid; a new id when it was paid on another day than planned."
    )
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")


@strawberry.type(description="The benefit payment as it now stands.")
class RejectBenefitPaymentPayload:
    benefit_payment: BenefitPayment | None = strawberry.field(
        description="The payment, rejected, with its reason."
    )
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")


@strawberry.type
class BenefitMutation:
    @mutation(description="Grant a catalogue benefit to a card: a pending payment of its amount.")
    async def grant_benefit(
        self,
        info: Info,
        input: Annotated[
            GrantBenefitInput,
            strawberry.argument(
                description="The card, the catalogue's benefit code and the planned payment day."
            ),
        ],
    ) -> GrantBenefitPayload:
        arguments = {
            "card": {
                "cardNumber": _given(input.card.card_number),
                "electronicCardId": _given(input.card.electronic_card_id),
            },
            "benefitCode": input.benefit_code,
            "plannedOn": input.planned_on,
        }
        answer = await benefit_mutations.grant_benefit(info, arguments, input.idempotency_key)
        return GrantBenefitPayload(benefit_payment=answer.record, user_errors=_errors(answer))

    @mutation(description="Mark a pending payment paid; the cardholder is told (BENEFIT_PAID).")
    async def mark_benefit_paid(
        self,
        info: Info,
        input: Annotated[
            MarkBenefitPaidInput,
            strawberry.argument(description="The pending payment and the day it was paid."),
        ],
    ) -> MarkBenefitPaidPayload:
        arguments = {"benefitPaymentId": input.benefit_payment_id, "paidOn": input.paid_on}
        answer = await benefit_mutations.mark_benefit_paid(info, arguments, input.idempotency_key)
        return MarkBenefitPaidPayload(benefit_payment=answer.record, user_errors=_errors(answer))

    @mutation(
        description="Reject a pending payment with a reason; the cardholder is told (BENEFIT_REJECTED)."
    )
    async def reject_benefit_payment(
        self,
        info: Info,
        input: Annotated[
            RejectBenefitPaymentInput,
            strawberry.argument(description="The pending payment and why it is rejected."),
        ],
    ) -> RejectBenefitPaymentPayload:
        arguments = {"benefitPaymentId": input.benefit_payment_id, "reason": input.reason}
        answer = await benefit_mutations.reject_benefit_payment(info, arguments, input.idempotency_key)
        return RejectBenefitPaymentPayload(benefit_payment=answer.record, user_errors=_errors(answer))


@strawberry.input(
    description="Whom news goes to, among the persons with a signed e-card: every criterion given."
)
class NewsAudienceInput:
    nationality: str | None = strawberry.field(
        default=None, description="Of this nationality (ISO 3166-1 alpha-3)."
    )
    work_district: str | None = strawberry.field(
        default=None, description="Whose current permit names this work district (GB/T 2260 code)."
    )
    category: TalentCategory | None = strawberry.field(
        default=None, description="Whose current permit is of this talent category."
    )


@strawberry.input(description="Publish news to foreigners in the e-card app.")
class PublishNewsInput:
    message: str = strawberry.field(description="The news, 1 to 1,000 characters.")
    audience: NewsAudienceInput | None = strawberry.field(
        default=None, description="Whom it goes to; every person with a signed e-card when not given."
    )
    idempotency_key: str | None = strawberry.field(default=None, description="Makes a retry safe.")


@strawberry.type(description="The news published.")
class PublishNewsPayload:
    news: News | None = strawberry.field(description="The news item, with how many it reached.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was done, if nothing was.")


@strawberry.type
class NewsMutation:
    @mutation(
        description=(
            "Publish news to every person with a signed e-card, or to those the audience matches now:"
            " stored once, delivered as a NEWS notification."
        )
    )
    async def publish_news(
        self,
        info: Info,
        input: Annotated[
            PublishNewsInput,
            strawberry.argument(
                description="The message and its audience: all with a signed e-card, or those it matches."
            ),
        ],
    ) -> PublishNewsPayload:
        audience = input.audience
        arguments = {
            "message": input.message,
            "audience": {
                "nationality": audience.nationality,
                "workDistrict": audience.work_district,
                "category": audience.category.value if audience.category else None,
            }
            if audience
            else None,
        }
        answer = await news_mutations.publish_news(info, arguments, input.idempotency_key)
        return PublishNewsPayload(news=answer.record, user_errors=_errors(answer))


Mutation = merge_types(
    "Mutation", (PermitMutation, ExitEntryMutation, CardMutation, BenefitMutation, NewsMutation)
)
get_object_definition(
    Mutation, strict=True
).description = "The notice's workflows; each callable by the roles DOMAIN.md names."
