"""The social insurance agency as a plug-in: its reads the graph is built on."""

from __future__ import annotations

from adapters.relationships import KeyedRead, PersonRelationship
from adapters.social_insurance import SocialInsurance
from adapters.spec import AgencySpec

INSURED_PERSON = PersonRelationship(
    "insured_person", SocialInsurance, lambda s, _today: s.insured_by_person, many=False
)
INSURANCE_PARTICIPATIONS = PersonRelationship(
    "insurance_participations", SocialInsurance, lambda s, _today: s.participations_by_person
)
INSURED_EMPLOYER_BY_CREDIT_CODE = KeyedRead(
    "insured_employer_by_credit_code", SocialInsurance, lambda s, _today: s.employers_by_credit_code
)

SPEC = AgencySpec(
    name="SOCIAL_INSURANCE",
    description="The social insurance agency: insured persons, participations.",
    source=SocialInsurance,
    relationships=(INSURED_PERSON, INSURANCE_PARTICIPATIONS, INSURED_EMPLOYER_BY_CREDIT_CODE),
)
