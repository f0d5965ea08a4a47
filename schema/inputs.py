"""The query inputs of the graph."""

from __future__ import annotations

from typing import TypeVar

import strawberry

from resolvers.query import Lookup, PersonCriteria
from schema.common import TalentCategory, WorkPermitStatus

_Value = TypeVar("_Value")


@strawberry.input(description="A passport, by number and issuing country.")
class PassportInput:
    number: str = strawberry.field(description="The passport number.")
    nationality: str = strawberry.field(description="The issuing country (ISO 3166-1 alpha-3).")


@strawberry.input(description="A name as the caller gives it.")
class PersonNameInput:
    surname: str = strawberry.field(description="The surname.")
    given_names: str | None = strawberry.field(default=None, description="The given names, if any.")


@strawberry.input(
    one_of=True, description="Find a person by exactly one identifier any agency knows them by."
)
class PersonLookup:
    id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="The person's global id."
    )
    work_permit_number: str | None = strawberry.field(
        default=strawberry.UNSET, description="A work permit number."
    )
    social_security_number: str | None = strawberry.field(
        default=strawberry.UNSET, description="A social security number."
    )
    card_number: str | None = strawberry.field(
        default=strawberry.UNSET, description="A social security card number."
    )
    passport: PassportInput | None = strawberry.field(
        default=strawberry.UNSET, description="A passport, current or earlier."
    )
    residence_permit_number: str | None = strawberry.field(
        default=strawberry.UNSET, description="A residence permit number."
    )

    def to_lookup(self) -> Lookup:
        def given(value: _Value) -> _Value | None:
            return None if value is strawberry.UNSET else value

        passport = given(self.passport)
        return Lookup(
            id=given(self.id),
            work_permit_number=given(self.work_permit_number),
            social_security_number=given(self.social_security_number),
            card_number=given(self.card_number),
            passport=(passport.number, passport.nationality) if passport else None,
            residence_permit_number=given(self.residence_permit_number),
        )


@strawberry.input(description="Narrows persons (and statistics); every given condition must hold.")
class PersonFilter:
    nationality: str | None = strawberry.field(default=None, description="Nationality (ISO 3166-1 alpha-3).")
    permit_status: WorkPermitStatus | None = strawberry.field(
        default=None, description="The current permit's status."
    )
    category: TalentCategory | None = strawberry.field(
        default=None, description="The current permit's category."
    )
    employer_credit_code: str | None = strawberry.field(
        default=None, description="The current permit's employer."
    )
    work_district: str | None = strawberry.field(
        default=None, description="The current permit's work district."
    )
    insured: bool | None = strawberry.field(
        default=None, description="Whether the person pays into at least one insurance."
    )

    def to_criteria(self) -> PersonCriteria:
        return PersonCriteria(
            nationality=self.nationality.strip().upper() if self.nationality else None,
            permit_status=self.permit_status,
            category=self.category,
            employer_credit_code=self.employer_credit_code.strip().upper()
            if self.employer_credit_code
            else None,
            work_district=self.work_district.strip() if self.work_district else None,
            insured=self.insured,
        )


@strawberry.input(one_of=True, description="A work permit to verify, by exactly one channel.")
class PermitVerificationInput:
    work_permit_number: str | None = strawberry.field(
        default=strawberry.UNSET, description="Verify by number, in the system."
    )
    qr_code: str | None = strawberry.field(
        default=strawberry.UNSET, description="Verify the permit's QR code."
    )
    electronic_card_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Verify by the e-card carrying the permit."
    )
