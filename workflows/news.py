"""News from the work-permit authority to the foreigners in the e-card app: to every person
with a signed e-card, or to those an audience (nationality, work district, talent category)
matches when it is published. The news item is stored once; each recipient is a notification
row naming it (NEWS), all written in one hub-store transaction in batches, and the live
subscribers among them are woken once it is committed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from access.disclosure import cell_key
from adapters.card_service import ELECTRONIC_CARD_LINK
from adapters.countries import ALPHA3
from adapters.identifiers import DISTRICT_CODE
from adapters.work_permit import APPLICANT_LINK, PermitCriteria
from domain.errors import UserErrorCode
from domain.records import NotificationKind, TalentCategory
from identity.store import NEWS, NOTIFICATION, KeyFilter, lock_notification_order
from notifications.emit import MAX_MESSAGE, wake
from workflows.engine import HUB_STORE, Journal, UserFailure
from workflows.permits import PermitWork

RECIPIENT_COLUMNS = ("person_id", "kind", "at", "message", "news_id")


async def publish(
    work: PermitWork, journal: Journal, arguments: dict[str, Any], client: str
) -> dict[str, Any]:
    message = arguments["message"].strip()
    if not message or len(message) > MAX_MESSAGE:
        raise UserFailure(
            UserErrorCode.INVALID_INPUT, f"News is 1 to {MAX_MESSAGE} characters.", ["input", "message"]
        )
    audience = _audience(arguments.get("audience") or {})
    recipients = await _recipients(work, audience)
    now = datetime.now(UTC)
    async with journal.writing(HUB_STORE) as conn:
        news_id = int((await conn.execute(select(func.coalesce(func.max(NEWS.c.id), 0)))).scalar_one()) + 1
        news = {
            "id": news_id,
            "published_at": now,
            "published_by": client,
            "message": message,
            "audience": json.dumps(audience, sort_keys=True),
            "recipients": len(recipients),
            "recipient_cell_key": cell_key(sum(key for _, key in recipients)),
        }
        await journal.insert(conn, HUB_STORE, NEWS, news, ["id"])
        await lock_notification_order(conn)  # recipients' ids commit in order, as every notification's
        rows = [(person_id, NotificationKind.NEWS.value, now, "", news_id) for person_id, _ in recipients]
        await journal.insert_many(
            conn, HUB_STORE, NOTIFICATION, RECIPIENT_COLUMNS, rows, {"news_id": news_id}
        )
    await wake(work.store, (person_id for person_id, _ in recipients))
    return {"news": news_id}


def _audience(given: dict[str, Any]) -> dict[str, str]:
    """The audience's criteria that were given, checked and spelled as the sources spell them."""
    audience = {name: str(value).strip().upper() for name, value in given.items() if value is not None}
    if "nationality" in audience and audience["nationality"] not in ALPHA3:
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            "Must be an ISO 3166-1 alpha-3 country code.",
            ["input", "audience", "nationality"],
        )
    if "workDistrict" in audience and not DISTRICT_CODE.match(audience["workDistrict"]):
        raise UserFailure(
            UserErrorCode.INVALID_INPUT,
            "Must be a 6-digit GB/T 2260 division code.",
            ["input", "audience", "workDistrict"],
        )
    return audience


async def _recipients(work: PermitWork, audience: dict[str, str]) -> list[tuple[int, int]]:
    """(person id, record key) of every person with a signed e-card whom the audience matches
    now: permit criteria on the current period, in the work-permit system's SQL; the rest in
    the hub store's, through the identity links."""
    signed = await work.sources.cards.signed_electronic_card_ids()
    filters = [KeyFilter(ELECTRONIC_CARD_LINK, signed, by_record=True)]
    criteria = PermitCriteria(
        category=TalentCategory(audience["category"]) if "category" in audience else None,
        work_district=audience.get("workDistrict"),
    )
    if criteria:
        applicants = await work.sources.work_permits.applicant_keys_matching(criteria, work.today)
        filters.append(KeyFilter(APPLICANT_LINK, applicants))
    return await work.store.persons_matching(nationality=audience.get("nationality"), key_filters=filters)
