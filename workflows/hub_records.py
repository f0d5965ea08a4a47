"""The hub's own records that a workflow keeps in step with the agencies: identity links and
the identifiers a person is found by, written through the journal like every other change."""

from __future__ import annotations

from sqlalchemy import and_, select

from domain.evidence import IdentifierKind
from domain.records import AgencyId, LinkConfidence, NotificationKind
from identity.store import IDENTIFIER, LINK, HubStore
from notifications.emit import notify
from workflows.engine import HUB_STORE, Journal


async def link_record(
    journal: Journal,
    person_id: int,
    agency: AgencyId,
    record_type: str,
    record_key: str,
    owner_key: str,
    evidence: str,
) -> None:
    """A confirmed link, unless the record is linked already."""
    async with journal.writing(HUB_STORE) as conn:
        known = (
            await conn.execute(
                select(LINK.c.id).where(
                    and_(LINK.c.record_type == record_type, LINK.c.record_key == record_key)
                )
            )
        ).first()
        if known is None:
            await journal.insert(
                conn,
                HUB_STORE,
                LINK,
                {
                    "person_id": person_id,
                    "agency": str(agency),
                    "record_type": record_type,
                    "record_key": record_key,
                    "owner_key": owner_key,
                    "confidence": LinkConfidence.CONFIRMED.value,
                    "evidence": evidence,
                },
                ["person_id", "record_type", "record_key"],
            )


async def refile_record(journal: Journal, record_type: str, record_key: str, owner_key: str) -> None:
    """A linked record now filed under another owner key by its agency (an e-card that took the
    social security number at enrollment)."""
    async with journal.writing(HUB_STORE) as conn:
        await journal.update(
            conn,
            HUB_STORE,
            LINK,
            {"record_type": record_type, "record_key": record_key},
            {"owner_key": owner_key},
        )


async def add_identifier(journal: Journal, kind: IdentifierKind, value: str, person_id: int) -> None:
    async with journal.writing(HUB_STORE) as conn:
        known = (
            await conn.execute(
                select(IDENTIFIER.c.person_id).where(
                    and_(IDENTIFIER.c.kind == kind.value, IDENTIFIER.c.value == value)
                )
            )
        ).first()
        if known is None:
            await journal.insert(
                conn,
                HUB_STORE,
                IDENTIFIER,
                {"kind": kind.value, "value": value, "person_id": person_id},
                ["kind", "value"],
            )


async def announce(
    journal: Journal,
    store: HubStore,
    person_id: int | None,
    kind: NotificationKind,
    message: str,
    subject: tuple[str, str] | None = None,
) -> None:
    """Tell the person, as the run's last step: once per run, even when a retry re-answers."""
    if person_id is None:
        return
    subject_type, subject_key = subject if subject else (None, None)
    await notify(
        store,
        person_id,
        kind,
        message,
        subject_type=subject_type,
        subject_key=subject_key,
        key=f"run:{journal.run_id}",
    )
