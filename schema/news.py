"""News the work-permit authority publishes to foreigners in the e-card app."""

from __future__ import annotations

from datetime import datetime

import strawberry

from identity.store import NewsRecord
from resolvers import news
from schema.common import TalentCategory, resolver


@strawberry.type(description="Whom a news item was published to; a null criterion did not narrow it.")
class NewsAudience:
    nationality: str | None = strawberry.field(
        description="Persons of this nationality (ISO 3166-1 alpha-3)."
    )
    work_district: str | None = strawberry.field(
        description="Persons whose current permit names this work district (GB/T 2260 code)."
    )
    category: TalentCategory | None = strawberry.field(
        description="Persons whose current permit is of this talent category."
    )


@strawberry.type(
    description=(
        "A news item, stored once and delivered as a NEWS notification to every person with a signed"
        " e-card whom its audience matched when it was published."
    )
)
class News:
    @resolver(description="The news, as each recipient reads it.")
    def message(root: NewsRecord) -> str:
        return root.message

    @resolver(description="When it was published (UTC).")
    def published_at(root: NewsRecord) -> datetime:
        return root.published_at

    @resolver(description="Whom it was published to.")
    def audience(root: NewsRecord) -> NewsAudience:
        given = root.audience
        category = given.get("category")
        return NewsAudience(
            nationality=given.get("nationality"),
            work_district=given.get("workDistrict"),
            category=TalentCategory(category) if category else None,
        )

    @resolver(
        description=(
            "How many persons it was delivered to, rounded to a multiple of 5 as statistics are"
            " (docs/statistics.md): the exact count would tell who in a small group holds a signed e-card."
        )
    )
    def recipient_count(root: NewsRecord) -> int:
        return news.shown_recipients(root)
