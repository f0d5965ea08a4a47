"""Linking: reads every agency's person records and decides which belong to which person.

Strong evidence (CONFIRMED, merged): a passport number *and* nationality from the applicant's
passport history with the same birth date; a social security number, permit number,
Notification Letter or card number already confirmed for the person. Weak evidence (WEAK,
shown but never merged): the same normalised name words and birth date alone, or a matching
passport whose birth date disagrees. A record with neither is left alone.

Every person is anchored on a work-permit applicant (`WP_SQR`); a person's id is assigned once,
in applicant order, and kept on every later run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from adapters import Sources
from adapters.beijing_pass import PAID_CARD_LINK
from adapters.card_service import CARD_LINK
from adapters.exit_entry import TRAVELLER_LINK
from adapters.social_insurance import INSURED_LINK
from adapters.work_permit import APPLICANT_LINK, CurrentPermitSummary
from domain.errors import SourceDataInvalid
from domain.records import Agency, Applicant, InsuredPerson, LinkConfidence, Traveller
from identity.names import name_words, normalise_passport, split_upper_name
from identity.store import HubStore, IdentifierKind, PersonCoreRow, StoreSnapshot

Progress = Callable[[str, int, int], None]


@dataclass
class LinkReport:
    linked: int = 0
    flagged: int = 0
    left_alone: int = 0
    unmappable: list[SourceDataInvalid] = field(default_factory=list)
    persons: int = 0
    new_persons: int = 0

    def summary(self) -> str:
        return (
            f"linked {self.linked} records to {self.persons} persons ({self.new_persons} new), "
            f"flagged {self.flagged} weak links, left {self.left_alone} records alone, "
            f"{len(self.unmappable)} records could not be read"
        )


@dataclass
class _Link:
    person_id: int
    agency: Agency
    record_type: str
    record_key: str
    owner_key: str
    confidence: LinkConfidence
    evidence: str


class _Evidence:
    """Indexes over the applicants, by which other agencies' records are matched."""

    def __init__(self, applicants: list[Applicant], person_of: dict[str, int]) -> None:
        self.person_of = person_of
        self.by_passport: dict[tuple[str, str], Applicant] = {}
        self.by_name: dict[tuple[tuple[str, ...], date], list[Applicant]] = defaultdict(list)
        self.by_permit: dict[str, Applicant] = {}
        self.by_letter: dict[str, Applicant] = {}
        for applicant in applicants:
            for passport in applicant.passports:
                self.by_passport[(normalise_passport(passport.number), passport.nationality)] = applicant
            self.by_name[(name_words(applicant.name_upper), applicant.birth_date)].append(applicant)
            for number in applicant.permit_numbers:
                self.by_permit[number] = applicant
            for letter in applicant.notification_letters:
                self.by_letter[letter] = applicant

    def match(
        self, passport: str, nationality: str, name: str, birth_date: date, letters: Iterable[str] = ()
    ) -> tuple[int, LinkConfidence, str] | None:
        applicant = self.by_passport.get((normalise_passport(passport), nationality))
        if applicant is not None:
            if applicant.birth_date == birth_date:
                return self.person_of[applicant.key], LinkConfidence.CONFIRMED, "passport and nationality"
            return self.person_of[applicant.key], LinkConfidence.WEAK, "passport, but another birth date"
        for letter in letters:
            applicant = self.by_letter.get(letter)
            if applicant is not None and applicant.birth_date == birth_date:
                return self.person_of[applicant.key], LinkConfidence.CONFIRMED, "notification letter"
        candidates = self.by_name.get((name_words(name), birth_date), [])
        if len(candidates) == 1:
            return self.person_of[candidates[0].key], LinkConfidence.WEAK, "name and birth date only"
        return None


async def link_estate(sources: Sources, store: HubStore, progress: Progress | None = None) -> LinkReport:
    """Read all five sources, rebuild links, identifiers and the person index; keep person ids."""
    report = LinkReport()
    say = progress or (lambda _phase, _done, _total: None)

    say("reading sources", 0, 5)
    applicants, bad = await sources.work_permits.all_applicants()
    report.unmappable += bad
    insured, bad = await sources.insurance.all_insured()
    report.unmappable += bad
    cards = await sources.cards.all_card_keys()
    travellers, bad = await sources.exit_entry.all_travellers()
    report.unmappable += bad
    traveller_documents = {d.traveller_key: d for d in await sources.exit_entry.all_traveller_documents()}
    cards_paid_on = await sources.beijing_pass.card_numbers_with_payments()
    summaries = await sources.work_permits.current_permit_summaries()
    insured_keys = set(await sources.insurance.insured_keys())
    say("reading sources", 5, 5)

    snapshot = await store.snapshot()
    person_of = _assign_person_ids(applicants, snapshot, report)
    evidence = _Evidence(applicants, person_of)
    links: list[_Link] = [
        _Link(
            person_of[a.key],
            Agency.WORK_PERMIT_SYSTEM,
            APPLICANT_LINK,
            a.key,
            a.key,
            LinkConfidence.CONFIRMED,
            "applicant",
        )
        for a in applicants
    ]
    identifiers: dict[tuple[str, str], int] = {}
    for applicant in applicants:
        pid = person_of[applicant.key]
        for number in applicant.permit_numbers:
            identifiers[(IdentifierKind.WORK_PERMIT_NUMBER, number)] = pid
        for passport in applicant.passports:
            identifiers[
                (IdentifierKind.PASSPORT, passport_identifier(passport.number, passport.nationality))
            ] = pid

    say("linking insurance", 0, len(insured))
    person_of_ssn = _link_insured(insured, evidence, links, identifiers)
    say("linking cards", 0, len(cards))
    person_of_card: dict[str, int] = {}
    for card in cards:
        pid = person_of_ssn.get(card.social_security_number)
        evidence_text = "social security number"
        if pid is None and card.work_permit_number in evidence.by_permit:
            pid = person_of[evidence.by_permit[card.work_permit_number].key]
            evidence_text = "permit number"
        if pid is None:
            continue
        links.append(
            _Link(
                pid,
                Agency.CARD_SERVICE,
                card.record_type,
                card.key,
                card.owner,
                LinkConfidence.CONFIRMED,
                evidence_text,
            )
        )
        if card.record_type == CARD_LINK:
            person_of_card[card.key] = pid
            identifiers[(IdentifierKind.CARD_NUMBER, card.key)] = pid
    say("linking exit-entry", 0, len(travellers))
    names: dict[int, Traveller] = {}
    for traveller in travellers:
        documents = traveller_documents.get(traveller.key)
        found = evidence.match(
            traveller.passport_number,
            traveller.nationality,
            f"{traveller.surname} {traveller.given_names or ''}",
            traveller.birth_date,
            documents.notification_letters if documents else (),
        )
        if found is None:
            continue
        pid, confidence, why = found
        links.append(
            _Link(pid, Agency.EXIT_ENTRY, TRAVELLER_LINK, traveller.key, traveller.key, confidence, why)
        )
        if confidence is LinkConfidence.CONFIRMED:
            names.setdefault(pid, traveller)
            identifiers[
                (
                    IdentifierKind.PASSPORT,
                    passport_identifier(traveller.passport_number, traveller.nationality),
                )
            ] = pid
            for number in documents.residence_permits if documents else ():
                identifiers[(IdentifierKind.RESIDENCE_PERMIT_NUMBER, number)] = pid
    for card_number in cards_paid_on:
        pid = person_of_card.get(card_number)
        if pid is not None:
            links.append(
                _Link(
                    pid,
                    Agency.BEIJING_PASS,
                    PAID_CARD_LINK,
                    card_number,
                    card_number,
                    LinkConfidence.CONFIRMED,
                    "card number",
                )
            )

    report.persons = len(applicants)
    report.linked = sum(1 for link in links if link.confidence is LinkConfidence.CONFIRMED)
    report.flagged = sum(1 for link in links if link.confidence is LinkConfidence.WEAK)
    total_records = len(applicants) + len(insured) + len(cards) + len(travellers) + len(cards_paid_on)
    report.left_alone = total_records - report.linked - report.flagged

    say("writing the hub store", 0, 1)
    await store.replace_links(
        cores=[_core(a, person_of[a.key], names.get(person_of[a.key])) for a in applicants],
        passports=[
            (person_of[a.key], p.number, p.nationality, p.valid_from, p.valid_to, p.current)
            for a in applicants
            for p in a.passports
        ],
        links=[
            (
                ln.person_id,
                ln.agency.value,
                ln.record_type,
                ln.record_key,
                ln.owner_key,
                ln.confidence.value,
                ln.evidence,
            )
            for ln in links
        ],
        identifiers=[(kind, value, pid) for (kind, value), pid in identifiers.items()],
        index=_index_rows(applicants, person_of, summaries, insured_keys, links),
        report=(report.linked, report.flagged, report.left_alone, len(report.unmappable)),
        finished_at=datetime.now(UTC),
    )
    say("writing the hub store", 1, 1)
    return report


def passport_identifier(number: str, nationality: str) -> str:
    return f"{nationality}:{normalise_passport(number)}"


def _assign_person_ids(
    applicants: list[Applicant], snapshot: StoreSnapshot, report: LinkReport
) -> dict[str, int]:
    person_of: dict[str, int] = {}
    next_id = snapshot.max_person_id + 1
    for applicant in applicants:
        existing = snapshot.person_of_anchor.get(applicant.key)
        if existing is None:
            existing = next_id
            next_id += 1
            report.new_persons += 1
        person_of[applicant.key] = existing
    return person_of


def _link_insured(
    insured: list[InsuredPerson],
    evidence: _Evidence,
    links: list[_Link],
    identifiers: dict[tuple[str, str], int],
) -> dict[str, int]:
    person_of_ssn: dict[str, int] = {}
    for person in insured:
        found = evidence.match(person.passport_number, person.nationality, person.name, person.birth_date)
        if found is None:
            continue
        pid, confidence, why = found
        links.append(
            _Link(pid, Agency.SOCIAL_INSURANCE, INSURED_LINK, person.key, person.key, confidence, why)
        )
        if confidence is LinkConfidence.CONFIRMED and person.social_security_number:
            person_of_ssn[person.social_security_number] = pid
            identifiers[(IdentifierKind.SOCIAL_SECURITY_NUMBER, person.social_security_number)] = pid
    return person_of_ssn


def _core(applicant: Applicant, person_id: int, traveller: Traveller | None) -> PersonCoreRow:
    """Names from exit-entry when known (the one source that tells surname from given names)."""
    if traveller is not None:
        surname, given = traveller.surname, traveller.given_names
    else:
        surname, given = split_upper_name(applicant.name_upper)
    return PersonCoreRow(
        id=person_id,
        surname=surname,
        given_names=given,
        sex=applicant.sex.value,
        birth_date=applicant.birth_date,
        nationality=applicant.nationality,
        anchor_key=applicant.key,
    )


def _index_rows(
    applicants: list[Applicant],
    person_of: dict[str, int],
    summaries: list[CurrentPermitSummary],
    insured_keys: set[str],
    links: list[_Link],
) -> list[dict[str, object]]:
    summary_of = {s.applicant_key: s for s in summaries}
    insured_persons = {
        ln.person_id
        for ln in links
        if ln.agency is Agency.SOCIAL_INSURANCE
        and ln.confidence is LinkConfidence.CONFIRMED
        and ln.record_key in insured_keys
    }
    rows: list[dict[str, object]] = []
    for applicant in applicants:
        pid = person_of[applicant.key]
        summary = summary_of.get(applicant.key)
        rows.append(
            {
                "person_id": pid,
                "nationality": applicant.nationality,
                "talent_category": summary.category.value if summary and summary.category else None,
                "permit_status": summary.raw_status.value if summary and summary.raw_status else None,
                "permit_valid_to": summary.valid_to if summary else None,
                "work_district": summary.work_district if summary else None,
                "employer_credit_code": summary.employer_credit_code if summary else None,
                "insured": pid in insured_persons,
            }
        )
    return rows
