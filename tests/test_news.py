"""News from the work-permit authority (issue 9, "Benefits and news"): to every person with a
signed e-card, or to those an audience matches when it is published; stored once with its
recipients as rows, written in batches; listed in `Person.notifications` and delivered live as
NEWS to every subscriber, as BENEFIT_PAID is to the cardholder a payment is made to."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Column, MetaData, Table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app import create_app
from domain.records import Agency, CallerRole
from faults import Fault
from identity.store import NOTIFICATION, HubStore
from settings import Settings
from tests.conftest import AS_OF, BACKENDS, caller_headers, fresh_estate, graphql, serve
from tests.databases import execute, postgres_settings, postgres_unavailable
from tests.legacy import current_permits
from tests.test_faults import running, snapshot
from tests.test_notifications import Live, connection, event, nothing_more, subscribe

AUTHORITY = (CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
PUBLISHED = "news { message publishedAt recipientCount audience { nationality workDistrict category } }"
ERRORS = "userErrors { code message field }"
PUBLISH = f"mutation($input: PublishNewsInput!) {{ publishNews(input: $input) {{ {PUBLISHED} {ERRORS} }} }}"


async def rows(url: str, sql: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
async def estate(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Settings]:
    async with fresh_estate(
        request.param, tmp_path_factory.mktemp(f"news-{request.param}"), 120, 9
    ) as seeded:
        yield seeded.settings


@pytest.fixture(scope="module")
async def hub(estate: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(estate, caller_headers(estate, *AUTHORITY)) as http:
        yield http


@dataclass(frozen=True)
class Person:
    """What an audience may test about a person, read straight from the databases."""

    id: int
    nationality: str
    district: str | None
    category: str | None


async def signed_persons(settings: Settings) -> dict[int, Person]:
    """Every person holding a signed e-card (SBK_DZK.QFZT = 1, linked to them), with the
    nationality the hub keeps and the current permit's district and category (DOMAIN.md's rule,
    applied here in Python to the permit system's rows)."""
    signed = {
        r.DZKID
        for r in await rows(
            settings.source_urls[Agency.CARD_SERVICE], """SELECT "DZKID" FROM "SBK_DZK" WHERE "QFZT" = '1'"""
        )
    }
    links = await rows(
        settings.store_url,
        "SELECT person_id, record_type, record_key, owner_key FROM identity_link WHERE confidence = 'CONFIRMED'",
    )
    holders = {r.person_id for r in links if r.record_type == "SBK_DZK" and r.record_key in signed}
    applicant_of = {r.person_id: int(r.owner_key) for r in links if r.record_type == "WP_SQR"}
    permits = await rows(
        settings.source_urls[Agency.WORK_PERMIT_SYSTEM],
        'SELECT "XKID","XKZH","SQRID","RCLB","ZT","YXQQ","YXQZ","TYSHXYDM","GZDD" FROM "WP_XKZ"',
    )
    current = current_permits(permits, AS_OF)
    nationality = {
        r.id: r.nationality for r in await rows(settings.store_url, "SELECT id, nationality FROM person")
    }
    found = {}
    for person_id in holders:
        permit = current.get(applicant_of.get(person_id, -1))
        found[person_id] = Person(
            person_id,
            nationality[person_id],
            permit.district if permit else None,
            permit.category if permit else None,
        )
    return found


async def recipients_of(settings: Settings, message: str) -> list[int]:
    """The persons a news item was stored for, as notification rows naming it."""
    found = await rows(
        settings.store_url,
        "SELECT n.person_id, n.kind, n.message FROM notification n JOIN news s ON s.id = n.news_id"
        f" WHERE s.message = '{message}' ORDER BY n.person_id",
    )
    assert all((r.kind, r.message) == ("NEWS", "") for r in found), "the text is stored once, with the news"
    return [r.person_id for r in found]


async def publish(
    client: httpx.AsyncClient, arguments: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    body = await graphql(client, PUBLISH, {"input": arguments}, headers=headers)
    assert "errors" not in body, body["errors"]
    answer: dict[str, Any] = body["data"]["publishNews"]
    return answer


async def notifications_of(
    client: httpx.AsyncClient, settings: Settings, person_id: int
) -> list[dict[str, Any]]:
    headers = caller_headers(settings, CallerRole.CARDHOLDER, person_id=person_id)
    body = await graphql(
        client,
        "{ me { notifications(first: 100) { edges { node { kind message subject { id } } } } } }",
        headers=headers,
    )
    assert "errors" not in body, body["errors"]
    return [e["node"] for e in body["data"]["me"]["notifications"]["edges"]]


def assert_rounded(shown: int, exact: int) -> None:
    """Counts are shown as statistics are: a multiple of 5, off by less than 5."""
    assert shown % 5 == 0 and abs(shown - exact) < 5, (shown, exact)


# ---------------------------------------------------------------- to whom


async def test_news_to_everyone_reaches_each_person_with_a_signed_e_card_once(
    hub: httpx.AsyncClient, estate: Settings
) -> None:
    expected = await signed_persons(estate)
    everyone = {r.id for r in await rows(estate.store_url, "SELECT id FROM person")}
    assert expected and everyone - set(expected), "the estate has persons with and without a signed e-card"
    message = "The service hall in Chaoyang opens on Saturdays from July."
    answer = await publish(hub, {"message": message})
    assert answer["userErrors"] == []
    news = answer["news"]
    assert news["message"] == message and news["audience"] == {
        "nationality": None,
        "workDistrict": None,
        "category": None,
    }
    assert_rounded(news["recipientCount"], len(expected))
    assert await recipients_of(estate, message) == sorted(expected)
    assert len(await rows(estate.store_url, f"SELECT id FROM news WHERE message = '{message}'")) == 1
    # Listed for a recipient, with its text; not for anyone else.
    recipient = min(expected)
    assert {"kind": "NEWS", "message": message, "subject": None} in await notifications_of(
        hub, estate, recipient
    )
    outsider = min(everyone - set(expected))
    assert all(n["message"] != message for n in await notifications_of(hub, estate, outsider))


AUDIENCES = [("nationality",), ("workDistrict",), ("category",), ("nationality", "workDistrict", "category")]


@pytest.mark.parametrize("criteria", AUDIENCES, ids=["-".join(c) for c in AUDIENCES])
async def test_news_to_an_audience_reaches_exactly_the_persons_it_matches(
    hub: httpx.AsyncClient, estate: Settings, criteria: tuple[str, ...]
) -> None:
    persons = await signed_persons(estate)

    def values(person: Person) -> dict[str, str | None]:
        every = {
            "nationality": person.nationality,
            "workDistrict": person.district,
            "category": person.category,
        }
        return {name: every[name] for name in criteria}

    # The most common combination among the recipients, so the audience is not empty.
    common = Counter(tuple(values(p).items()) for p in persons.values() if None not in values(p).values())
    audience = dict(common.most_common(1)[0][0])
    expected = sorted(p.id for p in persons.values() if values(p) == audience)
    message = f"For {', '.join(f'{k}={v}' for k, v in audience.items())}: a job fair on 1 July."
    answer = await publish(hub, {"message": message, "audience": audience})
    assert answer["userErrors"] == []
    assert {k: v for k, v in answer["news"]["audience"].items() if v is not None} == audience
    assert_rounded(answer["news"]["recipientCount"], len(expected))
    assert await recipients_of(estate, message) == expected


async def test_an_audience_is_evaluated_when_the_news_is_published(
    hub: httpx.AsyncClient, estate: Settings
) -> None:
    """Who got a news item stays as it was; a change of district counts for the next item."""
    persons = await signed_persons(estate)
    district = Counter(p.district for p in persons.values() if p.district).most_common(1)[0][0]
    mover = min(p.id for p in persons.values() if p.district == district)
    first = "Chaoyang tax office hours change (1)."
    assert (await publish(hub, {"message": first, "audience": {"workDistrict": district}}))[
        "userErrors"
    ] == []
    assert mover in await recipients_of(estate, first)
    [applicant] = await rows(
        estate.store_url,
        f"SELECT owner_key FROM identity_link WHERE person_id = {mover} AND record_type = 'WP_SQR'",
    )
    elsewhere = "110108" if district != "110108" else "110106"
    await execute(
        estate.source_urls[Agency.WORK_PERMIT_SYSTEM],
        f"""UPDATE "WP_XKZ" SET "GZDD" = '{elsewhere}' WHERE "SQRID" = {int(applicant.owner_key)}""",
    )
    second = "Chaoyang tax office hours change (2)."
    assert (await publish(hub, {"message": second, "audience": {"workDistrict": district}}))[
        "userErrors"
    ] == []
    assert mover not in await recipients_of(estate, second)
    assert mover in await recipients_of(estate, first)


# ---------------------------------------------------------------- rules, retries, failures


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"message": "   "}, ["input", "message"]),
        ({"message": "x" * 1001}, ["input", "message"]),
        ({"message": "m", "audience": {"nationality": "XXX"}}, ["input", "audience", "nationality"]),
        ({"message": "m", "audience": {"nationality": "DE"}}, ["input", "audience", "nationality"]),
        ({"message": "m", "audience": {"workDistrict": "Chaoyang"}}, ["input", "audience", "workDistrict"]),
    ],
)
async def test_bad_news_input_names_its_field_and_publishes_nothing(
    hub: httpx.AsyncClient, estate: Settings, arguments: dict[str, Any], field: list[str]
) -> None:
    before = await rows(estate.store_url, "SELECT count(*) AS n FROM notification")
    answer = await publish(hub, arguments)
    assert answer["news"] is None
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("INVALID_INPUT", field)]
    assert await rows(estate.store_url, "SELECT count(*) AS n FROM notification") == before


async def test_a_repeated_key_publishes_once_and_other_input_conflicts(
    hub: httpx.AsyncClient, estate: Settings
) -> None:
    message = "Renew your residence permit online from August."
    keyed = {"message": message, "idempotencyKey": "news-renew-online"}
    answers = await asyncio.gather(*(publish(hub, keyed) for _ in range(4)))
    assert all(a["userErrors"] == [] for a in answers)
    assert len({a["news"]["publishedAt"] for a in answers}) == 1
    assert len(await rows(estate.store_url, f"SELECT id FROM news WHERE message = '{message}'")) == 1
    assert len(await recipients_of(estate, message)) == len(await signed_persons(estate))
    other = await publish(hub, {**keyed, "message": "Something else."})
    assert [(e["code"], e["field"]) for e in other["userErrors"]] == [
        ("CONFLICT", ["input", "idempotencyKey"])
    ]


@pytest.mark.parametrize(
    ("agency", "audience"),
    [(Agency.CARD_SERVICE, None), (Agency.WORK_PERMIT_SYSTEM, {"category": "A"})],
)
async def test_news_with_a_source_it_needs_down_publishes_nothing(
    estate: Settings, agency: Agency, audience: dict[str, str] | None
) -> None:
    arguments = {
        "message": f"While {agency.value} is down.",
        "audience": audience,
        "idempotencyKey": agency.value,
    }
    headers = caller_headers(estate, *AUTHORITY)
    async with running(estate, everything=False) as hub:
        before = await snapshot(estate)
        hub.plan.set(agency, Fault.down())
        answer = await publish(hub.http, arguments, headers)
        assert [e["code"] for e in answer["userErrors"]] == ["SOURCE_UNAVAILABLE"]
        assert agency.value in answer["userErrors"][0]["message"]
        assert await snapshot(estate) == before
        hub.plan.set(agency, None)
        assert (await publish(hub.http, arguments, headers))["userErrors"] == []


async def test_news_to_everyone_needs_no_permit_system(estate: Settings) -> None:
    async with running(estate, everything=False) as hub:
        hub.plan.set(Agency.WORK_PERMIT_SYSTEM, Fault.down())
        answer = await publish(
            hub.http, {"message": "The permit system is down today."}, caller_headers(estate, *AUTHORITY)
        )
        assert answer["userErrors"] == []


@pytest.mark.parametrize(
    ("role", "purpose"),
    [
        (CallerRole.BEIJING_PASS, "benefit-payment"),
        (CallerRole.CARD_SERVICE, "card-administration"),
        (CallerRole.EXIT_ENTRY, "entry-control"),
        (CallerRole.CARDHOLDER, None),
    ],
)
async def test_only_the_work_permit_authority_publishes_news(
    hub: httpx.AsyncClient, estate: Settings, role: CallerRole, purpose: str | None
) -> None:
    bound: dict[str, Any] = {"person_id": 1} if role is CallerRole.CARDHOLDER else {}
    before = await rows(estate.store_url, "SELECT count(*) AS n FROM news")
    answer = await publish(
        hub, {"message": f"From {role.value}."}, caller_headers(estate, role, purpose, **bound)
    )
    assert answer["news"] is None and [e["code"] for e in answer["userErrors"]] == ["FORBIDDEN"]
    assert await rows(estate.store_url, "SELECT count(*) AS n FROM news") == before


async def test_the_writes_do_not_grow_with_the_recipients(hub: httpx.AsyncClient, estate: Settings) -> None:
    """A city's news may reach tens of thousands: the recipients are written in batches, so the
    hub store runs as many statements for a large audience as for a small one."""
    persons = await signed_persons(estate)
    ranked = Counter(p.nationality for p in persons.values()).most_common()
    (most, many), (fewest, few) = ranked[0], ranked[-1]
    assert many > few
    traced = {"X-Hub-Trace": "1"}
    statements = []
    for nationality in (most, fewest):
        body = await graphql(
            hub,
            PUBLISH,
            {"input": {"message": f"To {nationality}.", "audience": {"nationality": nationality}}},
            traced,
        )
        assert body["data"]["publishNews"]["userErrors"] == []
        statements.append(body["extensions"]["sources"]["HUB_STORE"]["statements"])
        assert (
            len(await recipients_of(estate, f"To {nationality}."))
            == Counter(p.nationality for p in persons.values())[nationality]
        )
    assert statements[0] == statements[1]


async def test_a_store_made_before_news_gets_its_column(tmp_path: Path) -> None:
    """A notification table of a store made before news (no news_id) gets the column at start."""
    settings = Settings.for_directory(tmp_path, fixed_today=AS_OF)
    urls, databases = [settings.store_url], None
    if await postgres_unavailable() is None:
        postgres, databases = await postgres_settings(tmp_path / "pg", AS_OF)
        urls.append(postgres.store_url)
    older = MetaData()
    Table(
        "notification",
        older,
        *(
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in NOTIFICATION.columns
            if c.name != "news_id"
        ),
    )
    try:
        for url in urls:
            store = HubStore.open(url)
            try:
                async with store.engine.begin() as conn:
                    await conn.run_sync(older.create_all)
                with pytest.raises(DBAPIError):
                    await store.notifications_after(1, 0, 10)
                await store.create_tables()
                await store.create_tables()  # and only once
                assert await store.notifications_after(1, 0, 10) == []
                assert await rows(url, "SELECT news_id FROM notification") == []
            finally:
                await store.close()
    finally:
        if databases is not None:
            await databases.drop()


# ---------------------------------------------------------------- delivered live


@pytest.fixture(scope="module")
async def live(estate: Settings) -> AsyncIterator[Live]:
    """The hub served by a real uvicorn server in this process, on the module's estate."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HUB_NOTIFY_INTERVAL", "0")
        app = create_app(estate)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    while not server.started:
        assert not serving.done() and time.monotonic() < deadline, "the server did not start"
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    store = HubStore.open(estate.store_url)
    try:
        yield Live(estate, f"ws://127.0.0.1:{port}/graphql", f"http://127.0.0.1:{port}/graphql", store)
    finally:
        await store.close()
        server.should_exit = True
        await asyncio.wait_for(serving, 20)


def _token(live: Live, person_id: int) -> dict[str, str]:
    return {
        "Authorization": caller_headers(live.settings, CallerRole.CARDHOLDER, person_id=person_id)[
            "Authorization"
        ]
    }


async def test_news_is_delivered_live_to_every_subscribed_recipient_and_nobody_else(live: Live) -> None:
    persons = await signed_persons(live.settings)
    district = Counter(p.district for p in persons.values() if p.district).most_common(1)[0][0]
    inside = sorted(p.id for p in persons.values() if p.district == district)[:2]
    outside = min(p.id for p in persons.values() if p.district != district)
    message = "Live: the district's foreigners' service centre moves."
    async with (
        connection(live, _token(live, inside[0])) as first,
        connection(live, _token(live, inside[1])) as second,
        connection(live, _token(live, outside)) as third,
    ):
        for ws, person_id in ((first, inside[0]), (second, inside[1]), (third, outside)):
            await subscribe(ws, live, person_id)
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                live.http,
                json={
                    "query": PUBLISH,
                    "variables": {"input": {"message": message, "audience": {"workDistrict": district}}},
                },
                headers=caller_headers(live.settings, *AUTHORITY),
            )
        assert answer.json()["data"]["publishNews"]["userErrors"] == []
        for ws, person_id in ((first, inside[0]), (second, inside[1])):
            got = await event(ws)
            assert (got["kind"], got["message"], got["subject"]) == ("NEWS", message, None)
            await nothing_more(ws, live, person_id)  # once
        await nothing_more(third, live, outside)


async def test_a_payment_is_delivered_live_to_its_cardholder(live: Live) -> None:
    [card] = await rows(
        live.settings.source_urls[Agency.CARD_SERVICE],
        """SELECT "KH" FROM "SBK_KXX" WHERE "KZT" = '1' ORDER BY "KH" LIMIT 1""",
    )
    [holder] = await rows(
        live.settings.store_url,
        f"SELECT person_id FROM person_identifier WHERE kind = 'CARD_NUMBER' AND value = '{card.KH}'",
    )
    beijing_pass = caller_headers(live.settings, CallerRole.BEIJING_PASS, "benefit-payment")
    grant = "mutation($i: GrantBenefitInput!) { grantBenefit(input: $i) { benefitPayment { id } userErrors { code } } }"
    pay = "mutation($i: MarkBenefitPaidInput!) { markBenefitPaid(input: $i) { benefitPayment { id } userErrors { code } } }"
    planned = (AS_OF + timedelta(days=3)).isoformat()
    async with connection(live, _token(live, holder.person_id)) as ws, httpx.AsyncClient() as http:
        await subscribe(ws, live, holder.person_id)
        granted = await http.post(
            live.http,
            json={
                "query": grant,
                "variables": {
                    "i": {"card": {"cardNumber": card.KH}, "benefitCode": "BT0007", "plannedOn": planned}
                },
            },
            headers=beijing_pass,
        )
        payment_id = granted.json()["data"]["grantBenefit"]["benefitPayment"]["id"]
        await nothing_more(ws, live, holder.person_id)  # a grant tells nobody yet
        paid = await http.post(
            live.http,
            json={"query": pay, "variables": {"i": {"benefitPaymentId": payment_id}}},
            headers=beijing_pass,
        )
        paid_id = paid.json()["data"]["markBenefitPaid"]["benefitPayment"]["id"]
        got = await event(ws)
        assert got["kind"] == "BENEFIT_PAID" and card.KH in got["message"]
        assert got["subject"] == {"id": paid_id, "__typename": "BenefitPayment"}
