"""Resolvers of the work-permit authority's news."""

from __future__ import annotations

from typing import Any

from access.disclosure import rounded
from identity.store import NewsRecord
from resolvers.context import Info
from resolvers.mutations import Answer, run_workflow
from workflows import news


async def publish_news(info: Info, arguments: dict[str, Any], key: str | None) -> Answer:
    context = info.context
    client = context.caller.subject

    async def published(result: dict[str, Any]) -> NewsRecord | None:
        return (await context.store.news_by_id([result["news"]]))[0]

    return await run_workflow(
        info, "publishNews", key, arguments, lambda w, j: news.publish(w, j, arguments, client), published
    )


def shown_recipients(record: NewsRecord) -> int:
    """How many persons the news reached, rounded as statistics are (access/disclosure.py):
    the exact count would tell the publisher how many of a small group hold a signed e-card."""
    return rounded(record.recipients, record.recipient_cell_key)
