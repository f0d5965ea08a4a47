"""BEIJING PASS's benefits as mutations (issue 9, "Benefits and news"): a grant writes a pending
BJT_FF row in the agency's own formats, only on a card benefits can be paid by; paying and
rejecting decide it, with the reason kept by the hub and the cardholder told; each rule answers
its code and field and writes nothing; idempotent; all or nothing; only BEIJING PASS calls them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from access.policy import load_policy
from adapters.registry import DEFAULT_AGENCIES
from domain.records import Agency, CallerRole
from faults import Fault
from schema import build_schema
from settings import Settings
from tests.conftest import AS_OF, BACKENDS, caller_headers, fresh_estate, global_ids, graphql, serve
from tests.databases import execute
from tests.test_faults import running, snapshot
from workflows import benefits as benefit_workflows

BEIJING_PASS = (CallerRole.BEIJING_PASS, "benefit-payment")
PAYMENT = "benefitPayment { id benefitCode benefitName amount status paidOn reason }"
ERRORS = "userErrors { code message field }"
ME = """{ me {
  benefitPayments(first: 100) { edges { node { id benefitCode benefitName amount status paidOn reason } } }
  notifications(first: 50) { edges { node { kind message subject { __typename ... on BenefitPayment { id status } } } } }
} }"""


async def rows(url: str, sql: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class Cards:
    """Cards of linked persons in every state a rule tells apart (some set up by the fixture)."""

    in_use: list[tuple[str, int]]  # (KH, person id)
    pending: str
    lost: str
    cancelled: str
    e_card: tuple[str, str, int]  # signed, carrying a card in use: (DZKID, KH, person id)
    e_card_of_lost: tuple[str, str]  # signed, carrying a card reported lost: (DZKID, KH)
    e_card_of_cancelled: str
    e_card_without_number: str
    e_card_unsigned: str
    e_card_revoked: str


@pytest.fixture(scope="module", params=BACKENDS)
async def estate(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Settings]:
    async with fresh_estate(
        request.param, tmp_path_factory.mktemp(f"benefits-{request.param}"), 120, 5
    ) as seeded:
        yield seeded.settings


@pytest.fixture(scope="module")
async def hub(estate: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(estate, caller_headers(estate, *BEIJING_PASS)) as http:
        yield http


@pytest.fixture(scope="module")
async def cards(estate: Settings) -> Cards:
    cs = estate.source_urls[Agency.CARD_SERVICE]
    holders = {
        r.value: r.person_id
        for r in await rows(
            estate.store_url, "SELECT value, person_id FROM person_identifier WHERE kind = 'CARD_NUMBER'"
        )
    }
    physical = await rows(cs, 'SELECT "KH", "KZT" FROM "SBK_KXX" ORDER BY "KH"')
    by_state = {state: [r.KH for r in physical if r.KZT == state and r.KH in holders] for state in "0123"}
    ecards = await rows(cs, 'SELECT "DZKID", "KH", "QFZT" FROM "SBK_DZK" ORDER BY "DZKID"')
    in_use = set(by_state["1"])
    carrying = [e for e in ecards if e.QFZT == "1" and e.KH in in_use]
    (ours, of_lost, of_cancelled) = carrying[:3]
    # Two e-cards whose physical cards are then reported lost and cancelled.
    await execute(cs, f"""UPDATE "SBK_KXX" SET "KZT" = '2' WHERE "KH" = '{of_lost.KH}'""")
    await execute(cs, f"""UPDATE "SBK_KXX" SET "KZT" = '3' WHERE "KH" = '{of_cancelled.KH}'""")
    taken = {ours.KH, of_lost.KH, of_cancelled.KH}
    return Cards(
        in_use=[(kh, holders[kh]) for kh in by_state["1"] if kh not in taken],
        pending=by_state["0"][0],
        lost=by_state["2"][0],
        cancelled=by_state["3"][0],
        e_card=(ours.DZKID, ours.KH, holders[ours.KH]),
        e_card_of_lost=(of_lost.DZKID, of_lost.KH),
        e_card_of_cancelled=of_cancelled.DZKID,
        e_card_without_number=next(e.DZKID for e in ecards if e.QFZT == "1" and not e.KH.strip()),
        e_card_unsigned=next(e.DZKID for e in ecards if e.QFZT == "0"),
        e_card_revoked=next(e.DZKID for e in ecards if e.QFZT == "2"),
    )


async def mutate(
    client: httpx.AsyncClient,
    name: str,
    arguments: dict[str, Any],
    headers: dict[str, str] | None = None,
    selection: str = PAYMENT,
) -> dict[str, Any]:
    kind = name[0].upper() + name[1:]
    body = await graphql(
        client,
        f"mutation($input: {kind}Input!) {{ {name}(input: $input) {{ {selection} {ERRORS} }} }}",
        {"input": arguments},
        headers=headers,
    )
    assert "errors" not in body, body["errors"]
    answer: dict[str, Any] = body["data"][name]
    return answer


def grant_of(card_number: str, code: str = "BT0002", days: int = 0, **more: Any) -> dict[str, Any]:
    return {
        "card": {"cardNumber": card_number},
        "benefitCode": code,
        "plannedOn": (AS_OF + timedelta(days=days)).isoformat(),
        **more,
    }


async def payments(settings: Settings, card_number: str) -> list[Any]:
    return await rows(
        settings.source_urls[Agency.BEIJING_PASS],
        f"""SELECT "KH", "DYDM", "FFRQ", "JE", "ZT" FROM "BJT_FF" WHERE "KH" = '{card_number}' ORDER BY "FFRQ", "DYDM" """,
    )


async def all_payments(settings: Settings) -> list[tuple[Any, ...]]:
    found = await rows(settings.source_urls[Agency.BEIJING_PASS], 'SELECT * FROM "BJT_FF"')
    return sorted(tuple(r) for r in found)


async def notices(settings: Settings, person_id: int, kind: str) -> list[Any]:
    return await rows(
        settings.store_url,
        f"SELECT message, subject_type, subject_key FROM notification WHERE person_id = {person_id} AND kind = '{kind}' ORDER BY id",
    )


async def me(client: httpx.AsyncClient, settings: Settings, person_id: int) -> dict[str, Any]:
    body = await graphql(
        client, ME, headers=caller_headers(settings, CallerRole.CARDHOLDER, person_id=person_id)
    )
    assert "errors" not in body, body["errors"]
    mine: dict[str, Any] = body["data"]["me"]
    return mine


# ---------------------------------------------------------------- granting


async def test_a_grant_writes_a_pending_payment_in_bjt_ff_formats(
    hub: httpx.AsyncClient, estate: Settings, cards: Cards
) -> None:
    card, person_id = cards.in_use[0]
    answer = await mutate(hub, "grantBenefit", grant_of(card, "BT0003", days=14))
    assert answer["userErrors"] == []
    payment = answer["benefitPayment"]
    assert (
        payment["benefitCode"] == "BT0003"
        and payment["benefitName"] == "子女教育补贴 Children's education allowance"
    )
    assert (payment["amount"], payment["status"], payment["paidOn"], payment["reason"]) == (
        "2000.00",
        "PENDING",
        None,
        None,
    )
    planned = (AS_OF + timedelta(days=14)).isoformat()
    assert [tuple(r) for r in await payments(estate, card) if r.DYDM == "BT0003"] == [
        (card, "BT0003", planned, 200_000, "P")
    ]
    # The payment's id names it, through node(id:), and the cardholder sees it in `me` at once.
    body = await graphql(
        hub, "query($id: ID!) { node(id: $id) { ... on BenefitPayment { status } } }", {"id": payment["id"]}
    )
    assert body["data"]["node"] == {"status": "PENDING"}
    mine = [e["node"] for e in (await me(hub, estate, person_id))["benefitPayments"]["edges"]]
    assert payment in mine
    # What BEIJING PASS read of the person, the payment the grant answered included, is in the
    # person's access log.
    body = await graphql(
        hub,
        "{ me { accessLog(first: 20) { edges { node { role purpose fields } } } } }",
        headers=caller_headers(estate, CallerRole.CARDHOLDER, person_id=person_id),
    )
    events = [e["node"] for e in body["data"]["me"]["accessLog"]["edges"]]
    assert any(
        e["role"] == "BEIJING_PASS"
        and e["purpose"] == "benefit-payment"
        and "BenefitPayment.status" in e["fields"]
        for e in events
    ), events


async def test_a_grant_defaults_to_today_and_an_e_card_grants_on_the_card_it_carries(
    hub: httpx.AsyncClient, estate: Settings, cards: Cards
) -> None:
    e_card, card, person_id = cards.e_card
    ids = global_ids(estate)
    answer = await mutate(
        hub,
        "grantBenefit",
        {"card": {"electronicCardId": ids.encode("ElectronicCard", e_card)}, "benefitCode": "BT0005"},
    )
    assert answer["userErrors"] == [] and answer["benefitPayment"]["status"] == "PENDING"
    assert (card, "BT0005", AS_OF.isoformat(), 20_000, "P") in [
        tuple(r) for r in await payments(estate, card)
    ]
    assert answer["benefitPayment"] in [
        e["node"] for e in (await me(hub, estate, person_id))["benefitPayments"]["edges"]
    ]
    # The e-card stands in for a physical card reported lost (by its DZKID as the app shows it too).
    lost_e_card, lost_card = cards.e_card_of_lost
    answer = await mutate(
        hub, "grantBenefit", {"card": {"electronicCardId": lost_e_card}, "benefitCode": "BT0005"}
    )
    assert answer["userErrors"] == []
    assert [
        r.ZT for r in await payments(estate, lost_card) if r.DYDM == "BT0005" and r.FFRQ == AS_OF.isoformat()
    ] == ["P"]


def _rules(cards: Cards, estate: Settings) -> list[tuple[dict[str, Any], str, list[str]]]:
    card = cards.in_use[1][0]
    e_card = ["input", "card", "electronicCardId"]
    by_number = ["input", "card", "cardNumber"]
    ids = global_ids(estate)
    return [
        (grant_of("H123"), "INVALID_INPUT", by_number),
        (grant_of("Z99999999"), "NOT_FOUND", by_number),
        (grant_of(cards.pending), "NOT_ELIGIBLE", by_number),
        (grant_of(cards.lost), "NOT_ELIGIBLE", by_number),
        (grant_of(cards.cancelled), "NOT_ELIGIBLE", by_number),
        (grant_of(cards.e_card_of_lost[1]), "NOT_ELIGIBLE", by_number),
        (
            {"card": {"electronicCardId": cards.e_card_without_number}, "benefitCode": "BT0002"},
            "NOT_ELIGIBLE",
            e_card,
        ),
        (
            {"card": {"electronicCardId": cards.e_card_unsigned}, "benefitCode": "BT0002"},
            "NOT_ELIGIBLE",
            e_card,
        ),
        (
            {"card": {"electronicCardId": cards.e_card_revoked}, "benefitCode": "BT0002"},
            "NOT_ELIGIBLE",
            e_card,
        ),
        (
            {"card": {"electronicCardId": cards.e_card_of_cancelled}, "benefitCode": "BT0002"},
            "NOT_ELIGIBLE",
            e_card,
        ),
        ({"card": {"electronicCardId": "DZK999999999"}, "benefitCode": "BT0002"}, "NOT_FOUND", e_card),
        (
            {"card": {"electronicCardId": ids.encode("Person", 1)}, "benefitCode": "BT0002"},
            "INVALID_INPUT",
            e_card,
        ),
        ({"card": {"electronicCardId": "not an id"}, "benefitCode": "BT0002"}, "INVALID_INPUT", e_card),
        (grant_of(card, "BT9999"), "NOT_FOUND", ["input", "benefitCode"]),
        (grant_of(card, days=-1), "INVALID_INPUT", ["input", "plannedOn"]),
    ]


async def test_every_grant_rule_answers_its_code_and_field_and_writes_nothing(
    hub: httpx.AsyncClient, estate: Settings, cards: Cards
) -> None:
    before = await all_payments(estate)
    for arguments, code, field in _rules(cards, estate):
        answer = await mutate(hub, "grantBenefit", arguments)
        assert answer["benefitPayment"] is None, arguments
        assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [(code, field)], (arguments, answer)
        assert answer["userErrors"][0]["message"]
    assert await all_payments(estate) == before
    # The same benefit on the same card and day twice is a conflict on the planned day.
    card = cards.in_use[1][0]
    assert (await mutate(hub, "grantBenefit", grant_of(card, "BT0007", days=3)))["userErrors"] == []
    twice = await mutate(hub, "grantBenefit", grant_of(card, "BT0007", days=3))
    assert [(e["code"], e["field"]) for e in twice["userErrors"]] == [("CONFLICT", ["input", "plannedOn"])]
    assert len(await all_payments(estate)) == len(before) + 1


async def test_a_card_whose_row_cannot_be_read_answers_source_unavailable_and_writes_nothing(
    hub: httpx.AsyncClient, estate: Settings, cards: Cards
) -> None:
    """The workflow reads the card through the card service's adapter: a status code it
    cannot map is a user error naming the field, not a failure of the server."""
    cs = estate.source_urls[Agency.CARD_SERVICE]
    card, _holder = cards.in_use[-1]
    before = await all_payments(estate)
    await execute(cs, f"""UPDATE "SBK_KXX" SET "KZT" = 'X' WHERE "KH" = '{card}'""")
    try:
        answer = await mutate(hub, "grantBenefit", grant_of(card, "BT0002", days=1))
    finally:
        await execute(cs, f"""UPDATE "SBK_KXX" SET "KZT" = '1' WHERE "KH" = '{card}'""")
    assert answer["benefitPayment"] is None
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [
        ("SOURCE_UNAVAILABLE", ["input", "card", "cardNumber"])
    ]
    assert await all_payments(estate) == before


async def test_a_repeated_key_answers_the_first_grant_and_other_input_conflicts(
    hub: httpx.AsyncClient, estate: Settings, cards: Cards
) -> None:
    card = cards.in_use[2][0]
    keyed = grant_of(card, "BT0006", days=5, idempotencyKey="grant-BT0006")
    before = len(await payments(estate, card))
    answers = await asyncio.gather(*(mutate(hub, "grantBenefit", keyed) for _ in range(5)))
    assert all(a["userErrors"] == [] for a in answers)
    assert len({a["benefitPayment"]["id"] for a in answers}) == 1
    assert len(await payments(estate, card)) == before + 1
    other = await mutate(hub, "grantBenefit", {**keyed, "benefitCode": "BT0001"})
    assert [(e["code"], e["field"]) for e in other["userErrors"]] == [
        ("CONFLICT", ["input", "idempotencyKey"])
    ]
    assert len(await payments(estate, card)) == before + 1


# ---------------------------------------------------------------- paying and rejecting


async def test_paying_moves_the_row_to_the_payment_date_and_tells_the_cardholder(
    hub: httpx.AsyncClient, estate: Settings, cards: Cards
) -> None:
    card, person_id = cards.in_use[3]
    granted = (await mutate(hub, "grantBenefit", grant_of(card, "BT0004", days=10)))["benefitPayment"]
    planned = (AS_OF + timedelta(days=10)).isoformat()
    early = (AS_OF - timedelta(days=1)).isoformat()
    future = await mutate(hub, "markBenefitPaid", {"benefitPaymentId": granted["id"], "paidOn": planned})
    assert [(e["code"], e["field"]) for e in future["userErrors"]] == [("INVALID_INPUT", ["input", "paidOn"])]

    paid = await mutate(hub, "markBenefitPaid", {"benefitPaymentId": granted["id"], "paidOn": early})
    assert paid["userErrors"] == []
    payment = paid["benefitPayment"]
    assert (payment["status"], payment["paidOn"], payment["amount"]) == ("PAID", early, "800.00")
    # FFRQ is the payment date once paid: the row moved, so the payment has a new id.
    assert payment["id"] != granted["id"]
    assert [tuple(r) for r in await payments(estate, card) if r.DYDM == "BT0004"] == [
        (card, "BT0004", early, 80_000, "S")
    ]
    [decision] = await rows(
        estate.store_url,
        f"SELECT planned_on, payment_date, status, reason FROM benefit_decision WHERE card_number = '{card}'",
    )
    assert tuple(decision) == (planned, early, "S", None)
    [notice] = await notices(estate, person_id, "BENEFIT_PAID")
    assert (
        notice.subject_type == "BenefitPayment" and card in notice.message and "CNY 800.00" in notice.message
    )
    mine = await me(hub, estate, person_id)
    assert {
        "kind": "BENEFIT_PAID",
        "message": notice.message,
        "subject": {"__typename": "BenefitPayment", "id": payment["id"], "status": "PAID"},
    } in [e["node"] for e in mine["notifications"]["edges"]]
    # Neither id pays it twice, and the old one says why.
    for stale in (granted["id"], payment["id"]):
        again = await mutate(hub, "markBenefitPaid", {"benefitPaymentId": stale})
        assert [(e["code"], e["field"]) for e in again["userErrors"]] == [
            ("NOT_ELIGIBLE", ["input", "benefitPaymentId"])
        ]
    assert len(await notices(estate, person_id, "BENEFIT_PAID")) == 1


async def test_a_payment_paid_on_its_planned_day_keeps_its_row_and_id(
    hub: httpx.AsyncClient, estate: Settings, cards: Cards
) -> None:
    card, _ = cards.in_use[4]
    granted = (await mutate(hub, "grantBenefit", grant_of(card, "BT0001")))["benefitPayment"]
    paid = await mutate(hub, "markBenefitPaid", {"benefitPaymentId": granted["id"]})
    assert (
        paid["benefitPayment"]["id"] == granted["id"]
        and paid["benefitPayment"]["paidOn"] == AS_OF.isoformat()
    )
    assert [
        tuple(r) for r in await payments(estate, card) if r.DYDM == "BT0001" and r.FFRQ == AS_OF.isoformat()
    ] == [(card, "BT0001", AS_OF.isoformat(), 500_000, "S")]


async def test_a_rejection_keeps_its_reason_in_the_hub_and_the_cardholder_reads_it(
    hub: httpx.AsyncClient, estate: Settings, cards: Cards
) -> None:
    card, person_id = cards.in_use[5]
    granted = (await mutate(hub, "grantBenefit", grant_of(card, "BT0008", days=2)))["benefitPayment"]
    blank = await mutate(hub, "rejectBenefitPayment", {"benefitPaymentId": granted["id"], "reason": "  "})
    assert [(e["code"], e["field"]) for e in blank["userErrors"]] == [("INVALID_INPUT", ["input", "reason"])]
    long = await mutate(hub, "rejectBenefitPayment", {"benefitPaymentId": granted["id"], "reason": "x" * 501})
    assert [(e["code"], e["field"]) for e in long["userErrors"]] == [("INVALID_INPUT", ["input", "reason"])]
    reason = "The start-up is registered outside Beijing."
    rejected = await mutate(
        hub, "rejectBenefitPayment", {"benefitPaymentId": granted["id"], "reason": reason}
    )
    assert rejected["userErrors"] == []
    payment = rejected["benefitPayment"]
    assert (payment["id"], payment["status"], payment["paidOn"], payment["reason"]) == (
        granted["id"],
        "REJECTED",
        None,
        reason,
    )
    planned = (AS_OF + timedelta(days=2)).isoformat()
    # BJT_FF keeps the planned date and has no column for the reason; the hub keeps it.
    assert [tuple(r) for r in await payments(estate, card) if r.DYDM == "BT0008"] == [
        (card, "BT0008", planned, 1_000_000, "R")
    ]
    [notice] = await notices(estate, person_id, "BENEFIT_REJECTED")
    assert reason in notice.message and planned in notice.message
    mine = [e["node"] for e in (await me(hub, estate, person_id))["benefitPayments"]["edges"]]
    assert {
        "id": granted["id"],
        "benefitCode": "BT0008",
        "benefitName": "创业补贴 Start-up subsidy",
        "amount": "10000.00",
        "status": "REJECTED",
        "paidOn": None,
        "reason": reason,
    } in mine
    for name, arguments in (
        ("rejectBenefitPayment", {"benefitPaymentId": granted["id"], "reason": "again"}),
        ("markBenefitPaid", {"benefitPaymentId": granted["id"]}),
    ):
        again = await mutate(hub, name, arguments)
        assert [(e["code"], e["field"]) for e in again["userErrors"]] == [
            ("NOT_ELIGIBLE", ["input", "benefitPaymentId"])
        ]
    assert len(await notices(estate, person_id, "BENEFIT_REJECTED")) == 1


async def test_a_legacy_payment_is_decided_in_place(hub: httpx.AsyncClient, estate: Settings) -> None:
    """A pending row the agency wrote itself (not through the hub) is paid like any other."""
    [legacy] = await rows(
        estate.source_urls[Agency.BEIJING_PASS],
        """SELECT "KH", "DYDM", "FFRQ", "JE" FROM "BJT_FF" WHERE "ZT" = 'P' ORDER BY "KH", "FFRQ" LIMIT 1""",
    )
    payment_id = global_ids(estate).encode("BenefitPayment", f"{legacy.KH}/{legacy.DYDM}/{legacy.FFRQ}")
    paid = await mutate(hub, "markBenefitPaid", {"benefitPaymentId": payment_id, "idempotencyKey": "legacy"})
    assert paid["userErrors"] == [] and paid["benefitPayment"]["paidOn"] == AS_OF.isoformat()
    assert (legacy.KH, legacy.DYDM, AS_OF.isoformat(), legacy.JE, "S") in [
        tuple(r) for r in await payments(estate, legacy.KH)
    ]


async def test_a_payment_the_agency_reopened_itself_is_decided_again(
    hub: httpx.AsyncClient, estate: Settings, cards: Cards
) -> None:
    """BEIJING PASS's own system may set a rejected row pending again: its old reason is no
    longer shown, and the hub's next decision replaces the one it kept."""
    card, person_id = cards.in_use[12]
    granted = (await mutate(hub, "grantBenefit", grant_of(card, "BT0003")))["benefitPayment"]
    await mutate(
        hub, "rejectBenefitPayment", {"benefitPaymentId": granted["id"], "reason": "Documents missing."}
    )
    await execute(
        estate.source_urls[Agency.BEIJING_PASS],
        f"""UPDATE "BJT_FF" SET "ZT" = 'P' WHERE "KH" = '{card}' AND "DYDM" = 'BT0003'""",
    )
    mine = [e["node"] for e in (await me(hub, estate, person_id))["benefitPayments"]["edges"]]
    assert [(p["status"], p["reason"]) for p in mine if p["id"] == granted["id"]] == [("PENDING", None)]
    paid = await mutate(hub, "markBenefitPaid", {"benefitPaymentId": granted["id"]})
    assert paid["userErrors"] == []
    assert (paid["benefitPayment"]["status"], paid["benefitPayment"]["reason"]) == ("PAID", None)
    [decision] = await rows(
        estate.store_url,
        f"SELECT status, reason FROM benefit_decision WHERE card_number = '{card}' AND benefit_code = 'BT0003'",
    )
    assert tuple(decision) == ("S", None)


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("markBenefitPaid", {"benefitPaymentId": "not an id"}),
        ("rejectBenefitPayment", {"benefitPaymentId": "not an id", "reason": "r"}),
    ],
)
async def test_a_payment_id_the_hub_did_not_issue_is_invalid_input(
    hub: httpx.AsyncClient, estate: Settings, name: str, arguments: dict[str, Any]
) -> None:
    answer = await mutate(hub, name, arguments)
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [
        ("INVALID_INPUT", ["input", "benefitPaymentId"])
    ]
    permit = global_ids(estate).encode("WorkPermit", "1")
    answer = await mutate(hub, name, {**arguments, "benefitPaymentId": permit})
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [
        ("INVALID_INPUT", ["input", "benefitPaymentId"])
    ]
    unknown = global_ids(estate).encode("BenefitPayment", "H00000000/BT0001/2026-01-01")
    answer = await mutate(hub, name, {**arguments, "benefitPaymentId": unknown})
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [
        ("NOT_FOUND", ["input", "benefitPaymentId"])
    ]


# ---------------------------------------------------------------- who may call and read


@pytest.mark.parametrize(
    ("role", "purpose"),
    [
        (CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration"),
        (CallerRole.CARD_SERVICE, "card-administration"),
        (CallerRole.SOCIAL_INSURANCE_AGENCY, "insurance-enrollment"),
        (CallerRole.CARDHOLDER, None),
    ],
)
async def test_only_beijing_pass_calls_the_benefit_mutations(
    hub: httpx.AsyncClient, estate: Settings, cards: Cards, role: CallerRole, purpose: str | None
) -> None:
    card, person_id = cards.in_use[6]
    bound: dict[str, Any] = {"person_id": person_id} if role is CallerRole.CARDHOLDER else {}
    headers = caller_headers(estate, role, purpose, **bound)
    before = await all_payments(estate)
    day = 20 + 2 * list(CallerRole).index(role)
    granted = (await mutate(hub, "grantBenefit", grant_of(card, "BT0002", days=day)))["benefitPayment"]
    for name, arguments in (
        ("grantBenefit", grant_of(card, "BT0002", days=day + 1)),
        ("markBenefitPaid", {"benefitPaymentId": granted["id"]}),
        ("rejectBenefitPayment", {"benefitPaymentId": granted["id"], "reason": "no"}),
    ):
        answer = await mutate(hub, name, arguments, headers=headers, selection="__typename")
        assert [e["code"] for e in answer["userErrors"]] == ["FORBIDDEN"], (name, answer)
    after = await all_payments(estate)
    assert [r for r in after if r not in before] == [
        (card, "BT0002", (AS_OF + timedelta(days=day)).isoformat(), 30_000, "P")
    ]
    await mutate(hub, "rejectBenefitPayment", {"benefitPaymentId": granted["id"], "reason": "test over"})


def test_the_policy_grants_the_mutations_and_the_reason_to_the_roles_named() -> None:
    policy = load_policy(build_schema()._schema)
    callers = {
        name: {role for (role, _), grant in policy.grants.items() if name in grant.mutations}
        for name in ("grantBenefit", "markBenefitPaid", "rejectBenefitPayment", "publishNews")
    }
    assert callers == {
        "grantBenefit": {CallerRole.BEIJING_PASS},
        "markBenefitPaid": {CallerRole.BEIJING_PASS},
        "rejectBenefitPayment": {CallerRole.BEIJING_PASS},
        "publishNews": {CallerRole.WORK_PERMIT_AUTHORITY},
    }
    readers = {
        role
        for (role, _), grant in policy.grants.items()
        if grant.reads("BenefitPayment", "reason", policy.guarded)
    }
    assert readers == {CallerRole.BEIJING_PASS, CallerRole.CARDHOLDER}
    beijing_pass = policy.grant(CallerRole.BEIJING_PASS, "benefit-payment")
    assert not {"WorkPermit", "PermitEvent", "ElectronicCard", "News"} & beijing_pass.types


async def test_beijing_pass_reads_payments_and_reasons_but_no_permit(
    hub: httpx.AsyncClient, estate: Settings, cards: Cards
) -> None:
    card, person_id = cards.in_use[7]
    granted = (await mutate(hub, "grantBenefit", grant_of(card, "BT0003", days=1)))["benefitPayment"]
    await mutate(hub, "rejectBenefitPayment", {"benefitPaymentId": granted["id"], "reason": "Not resident."})
    query = """query($card: String!) { person(lookup: {cardNumber: $card}) {
      benefitPayments(first: 100) { edges { node { id reason } } } workPermit { number } } }"""
    body = await graphql(hub, query, {"card": card})
    assert {"id": granted["id"], "reason": "Not resident."} in [
        e["node"] for e in body["data"]["person"]["benefitPayments"]["edges"]
    ]
    assert body["data"]["person"]["workPermit"] is None
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["person", "workPermit"], "FORBIDDEN")
    ]
    # Another agency reads neither the payments nor their reasons.
    other = caller_headers(estate, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    body = await graphql(
        hub,
        "query($id: ID!) { node(id: $id) { ... on BenefitPayment { reason } } }",
        {"id": granted["id"]},
        headers=other,
    )
    assert body["data"]["node"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # A cardholder reads their own payment by id, and nobody else's.
    mine = caller_headers(estate, CallerRole.CARDHOLDER, person_id=person_id)
    body = await graphql(
        hub,
        "query($id: ID!) { node(id: $id) { ... on BenefitPayment { reason } } }",
        {"id": granted["id"]},
        headers=mine,
    )
    assert body["data"]["node"] == {"reason": "Not resident."}
    someone_else = caller_headers(estate, CallerRole.CARDHOLDER, person_id=cards.in_use[8][1])
    body = await graphql(
        hub,
        "query($id: ID!) { node(id: $id) { ... on BenefitPayment { reason } } }",
        {"id": granted["id"]},
        headers=someone_else,
    )
    assert body["data"]["node"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# ---------------------------------------------------------------- all or nothing


@pytest.mark.parametrize("agency", [Agency.BEIJING_PASS, Agency.CARD_SERVICE])
async def test_a_grant_with_a_source_down_writes_nothing(
    estate: Settings, cards: Cards, agency: Agency
) -> None:
    card = cards.in_use[9][0]
    days = 30 + [spec.id for spec in DEFAULT_AGENCIES].index(agency)
    keyed = grant_of(card, "BT0001", days=days, idempotencyKey=f"grant-while-{agency.value}-down")
    headers = caller_headers(estate, *BEIJING_PASS)
    async with running(estate, everything=False) as hub:
        before = await snapshot(estate)
        hub.plan.set(agency, Fault.down())
        answer = await mutate(hub.http, "grantBenefit", keyed, headers=headers)
        assert [e["code"] for e in answer["userErrors"]] == ["SOURCE_UNAVAILABLE"]
        assert agency.value in answer["userErrors"][0]["message"]
        assert await snapshot(estate) == before
        # Once the source is back, the same key runs (an unavailable source's answer is not kept).
        hub.plan.set(agency, None)
        assert (await mutate(hub.http, "grantBenefit", keyed, headers=headers))["userErrors"] == []


async def test_paying_with_beijing_pass_down_writes_nothing(estate: Settings, cards: Cards) -> None:
    card, person_id = cards.in_use[10]
    headers = caller_headers(estate, *BEIJING_PASS)
    async with running(estate, everything=False) as hub:
        granted = (await mutate(hub.http, "grantBenefit", grant_of(card, "BT0002", days=8), headers=headers))[
            "benefitPayment"
        ]
        before = await snapshot(estate)
        hub.plan.set(Agency.BEIJING_PASS, Fault.down())
        answer = await mutate(
            hub.http, "markBenefitPaid", {"benefitPaymentId": granted["id"]}, headers=headers
        )
        assert [e["code"] for e in answer["userErrors"]] == ["SOURCE_UNAVAILABLE"]
        assert await snapshot(estate) == before
        assert await notices(estate, person_id, "BENEFIT_PAID") == []


async def test_a_failure_after_the_payment_moved_puts_the_row_back(
    hub: httpx.AsyncClient, estate: Settings, cards: Cards, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The paid row is committed in BJT_FF (deleted at its planned key, inserted at its payment
    date) before the hub's own record fails: the run undoes both, and tells nobody."""
    card, person_id = cards.in_use[11]
    granted = (await mutate(hub, "grantBenefit", grant_of(card, "BT0006", days=4)))["benefitPayment"]
    before = await snapshot(estate)

    async def hub_store_fails(*_args: Any) -> None:
        raise RuntimeError("the hub store failed")

    monkeypatch.setattr(benefit_workflows, "_decide", hub_store_fails)
    body = await graphql(
        hub,
        "mutation($i: MarkBenefitPaidInput!) { markBenefitPaid(input: $i) { benefitPayment { id } } }",
        {"i": {"benefitPaymentId": granted["id"]}},
    )
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "hub store failed" not in str(body)
    assert await snapshot(estate) == before
    assert await notices(estate, person_id, "BENEFIT_PAID") == []
