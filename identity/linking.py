"""Linking: reads every registered agency's evidence and decides which record belongs to
which person (the agencies' adapters say what their records offer: domain/evidence.py).

Strong evidence (CONFIRMED, merged): a passport number *and* nationality from the applicant's
passport history with the same birth date; a social security number, permit number,
Notification Letter or card number already confirmed for the person. Weak evidence (WEAK,
shown but never merged): the same normalised name words and birth date alone, or a matching
passport whose birth date disagrees. A record with neither is left alone.

Every person is anchored on a work-permit applicant; a person's id is assigned once, in
applicant order, and kept on every later run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from adapters import Sources
from adapters.work_permit import APPLICANT_LINK, CurrentPermitSummary
from domain.errors import SourceDataInvalid
from domain.evidence import Candidate, Identifier, IdentifierKind
from domain.records import Agency, AgencyId, Applicant, LinkConfidence
from identity.names import name_words, normalise_passport, split_upper_name
from identity.store import HubStore, PersonCoreRow, StoreSnapshot

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
    agency: AgencyId
    record_type: str
    record_key: str
    owner_key: str
    confidence: LinkConfidence
    evidence: str


class _Matcher:
    """What other agencies' records are matched by: the applicants' passports, names and
    Notification Letters, and every identifier a record confirmed so far."""

    def __init__(self, applicants: list[Applicant], person_of: dict[str, int]) -> None:
        self.person_of = person_of
        self.by_passport: dict[tuple[str, str], Applicant] = {}
        self.by_name: dict[tuple[tuple[str, ...], date], list[Applicant]] = defaultdict(list)
        self.known: dict[Identifier, int] = {}
        self.birth_of: dict[int, date] = {}
        for applicant in applicants:
            pid = person_of[applicant.key]
            self.birth_of[pid] = applicant.birth_date
            for passport in applicant.passports:
                self.by_passport[(normalise_passport(passport.number), passport.nationality)] = applicant
            self.by_name[(name_words(applicant.name_upper), applicant.birth_date)].append(applicant)
            for number in applicant.permit_numbers:
                self.known[(IdentifierKind.WORK_PERMIT_NUMBER, number)] = pid
            for letter in applicant.notification_letters:
                self.known[(IdentifierKind.NOTIFICATION_LETTER, letter)] = pid

    def match(self, candidate: Candidate) -> tuple[int, LinkConfidence, str] | None:
        if candidate.passport is not None:
            number, nationality = candidate.passport
            applicant = self.by_passport.get((normalise_passport(number), nationality))
            if applicant is not None:
                pid = self.person_of[applicant.key]
                if applicant.birth_date == candidate.birth_date:
                    return pid, LinkConfidence.CONFIRMED, "passport and nationality"
                return pid, LinkConfidence.WEAK, "passport, but another birth date"
        for key in candidate.keys:
            known = self.known.get(key)
            if known is not None and candidate.birth_date in (None, self.birth_of[known]):
                return known, LinkConfidence.CONFIRMED, KEY_EVIDENCE[key[0]]
        if candidate.name is not None and candidate.birth_date is not None:
            alike = self.by_name.get((name_words(candidate.name), candidate.birth_date), [])
            if len(alike) == 1:
                return self.person_of[alike[0].key], LinkConfidence.WEAK, "name and birth date only"
        return None


# How a link made by an identifier is explained.
KEY_EVIDENCE = {
    IdentifierKind.SOCIAL_SECURITY_NUMBER: "social security number",
    IdentifierKind.WORK_PERMIT_NUMBER: "permit number",
    IdentifierKind.NOTIFICATION_LETTER: "notification letter",
    IdentifierKind.CARD_NUMBER: "card number",
    IdentifierKind.PASSPORT: "passport and nationality",
    IdentifierKind.RESIDENCE_PERMIT_NUMBER: "residence permit number",
}
# Matched on, never kept in the identifier index.
MATCH_ONLY = frozenset({IdentifierKind.NOTIFICATION_LETTER})


async def link_estate(sources: Sources, store: HubStore, progress: Progress | None = None) -> LinkReport:
    """Read every registered agency, rebuild links, identifiers and the person index; keep
    person ids. Persons are anchored on the work-permit applicants; every other agency's
    evidence is weighed in the registry's order (an identifier one confirms may name the
    person to the next: a social security number to the cards, a card number to benefits)."""
    report = LinkReport()
    say = progress or (lambda _phase, _done, _total: None)
    others = [source for source in sources.all() if source is not sources.work_permits]

    say("reading sources", 0, len(others) + 1)
    applicants, bad = await sources.work_permits.all_applicants()
    report.unmappable += bad
    evidence = []
    for source in others:
        found = await source.evidence()
        report.unmappable += found.unreadable
        evidence.append((source.agency, found))
    summaries = await sources.work_permits.current_permit_summaries()
    insured_keys = set(await sources.insurance.insured_keys())
    say("reading sources", len(others) + 1, len(others) + 1)

    snapshot = await store.snapshot()
    person_of = _assign_person_ids(applicants, snapshot, report)
    matcher = _Matcher(applicants, person_of)
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
    identifiers: dict[Identifier, int] = {}
    for applicant in applicants:
        pid = person_of[applicant.key]
        for number in applicant.permit_numbers:
            identifiers[(IdentifierKind.WORK_PERMIT_NUMBER, number)] = pid
        for passport in applicant.passports:
            identifiers[
                (IdentifierKind.PASSPORT, passport_identifier(passport.number, passport.nationality))
            ] = pid

    names: dict[int, tuple[str, str | None]] = {}
    for agency, found in evidence:
        say(f"linking {agency}", 0, len(found.candidates))
        for candidate in found.candidates:
            match = matcher.match(candidate)
            if match is None:
                continue
            pid, confidence, why = match
            links.append(
                _Link(
                    pid,
                    agency,
                    candidate.record_type,
                    candidate.record_key,
                    candidate.owner_key,
                    confidence,
                    why,
                )
            )
            if confidence is not LinkConfidence.CONFIRMED:
                continue
            given = list(candidate.provides)
            if candidate.passport is not None:
                given.append((IdentifierKind.PASSPORT, passport_identifier(*candidate.passport)))
            for identifier in given:
                identifiers[identifier] = pid
                matcher.known[identifier] = pid
            if candidate.names is not None:
                names.setdefault(pid, candidate.names)

    report.persons = len(applicants)
    report.linked = sum(1 for link in links if link.confidence is LinkConfidence.CONFIRMED)
    report.flagged = sum(1 for link in links if link.confidence is LinkConfidence.WEAK)
    total_records = len(applicants) + sum(len(found.candidates) for _, found in evidence)
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
                str(ln.agency),
                ln.record_type,
                ln.record_key,
                ln.owner_key,
                ln.confidence.value,
                ln.evidence,
            )
            for ln in links
        ],
        identifiers=[
            (kind, value, pid) for (kind, value), pid in identifiers.items() if kind not in MATCH_ONLY
        ],
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


def _core(applicant: Applicant, person_id: int, names: tuple[str, str | None] | None) -> PersonCoreRow:
    """Names from an agency that tells surname from given names (exit-entry) when known."""
    if names is not None:
        surname, given = names
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
        if ln.agency == Agency.SOCIAL_INSURANCE
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
