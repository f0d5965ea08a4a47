"""Electronic cards in the notice's order and one per person (issue 9): registered right after
entry with name and permit number, before any social security number; a second registration
refused while one is signed; revocation and a lost phone's audited reissue, which end the old
app's cardholder token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from domain.records import Agency, CallerRole
from settings import Settings
from tests.conftest import BACKENDS, caller_headers, fresh_estate, graphql, serve
from tests.registration import PROVIDER, activate, trusting

REGISTER = (
    "mutation($i: RegisterElectronicCardInput!) { registerElectronicCard(input: $i) "
    "{ electronicCard { id status serviceLevel workPermitNumber cardNumber } activationCode "
    "userErrors { code message field } } }"
)
REVOKE = (
    "mutation($i: RevokeElectronicCardInput!) { revokeElectronicCard(input: $i) "
    "{ electronicCard { id status } userErrors { code message field } } }"
)
REISSUE = (
    "mutation($i: ReissueActivationCodeInput!) { reissueActivationCode(input: $i) "
    "{ electronicCard { id } activationCode userErrors { code message field } } }"
)
NEWCOMERS = (
    "query($s: WorkPermitStatus!) { persons(first: 100, filter: {permitStatus: $s, insured: false}) "
    "{ edges { node { id name { surname givenNames } workPermit { number status } } } } }"
)
REGISTRATION = (CallerRole.CARD_SERVICE, "electronic-card-registration")


async def _rows(url: str, sql: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
async def settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Settings]:
    async with fresh_estate(
        request.param, tmp_path_factory.mktemp(f"e-cards-{request.param}"), persons=320, seed=21
    ) as estate:
        yield trusting(estate.settings)


@pytest.fixture(scope="module")
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings) as client:
        yield client


async def _newcomers(http: httpx.AsyncClient, settings: Settings, status: str) -> list[dict[str, Any]]:
    """Persons not enrolled whose current permit has this status, and who have no e-card yet
    (the estate registered some before enrolling, as the notice lets them)."""
    headers = caller_headers(settings, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    body = await graphql(http, NEWCOMERS, {"s": status}, headers=headers)
    assert "errors" not in body, body["errors"]
    carried = {
        r.XKZH for r in await _rows(settings.source_urls[Agency.CARD_SERVICE], 'SELECT "XKZH" FROM "SBK_DZK"')
    }
    nodes = [e["node"] for e in body["data"]["persons"]["edges"]]
    return [n for n in nodes if n["workPermit"]["number"] not in carried]


def _registration(person: dict[str, Any], reference: str) -> dict[str, Any]:
    number = person["workPermit"]["number"]
    return {
        "name": {k: v for k, v in person["name"].items() if v},
        "identifier": {"workPermitNumber": number},
        "verification": {
            "method": "FACE",
            "attestation": PROVIDER.attest(number, reference),
            "reference": reference,
        },
    }


async def _mutate(
    http: httpx.AsyncClient,
    settings: Settings,
    query: str,
    value: dict[str, Any],
    purpose: str = "electronic-card-registration",
) -> dict[str, Any]:
    body = await graphql(
        http, query, {"i": value}, headers=caller_headers(settings, CallerRole.CARD_SERVICE, purpose)
    )
    assert "errors" not in body, body["errors"]
    answer: dict[str, Any] = next(iter(body["data"].values()))
    return answer


def _cardholder(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_newcomer_registers_right_after_entry_before_any_social_security_number(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    person = (await _newcomers(http, settings, "NOTICE_ISSUED"))[0]
    number = person["workPermit"]["number"]
    answer = await _mutate(http, settings, REGISTER, _registration(person, "FACE-NEW"))
    assert answer["userErrors"] == []
    card = answer["electronicCard"]
    assert (card["status"], card["serviceLevel"], card["workPermitNumber"], card["cardNumber"]) == (
        "SIGNED",
        "BASIC",
        number,
        None,
    )
    [row] = await _rows(
        settings.source_urls[Agency.CARD_SERVICE],
        f"""SELECT "SHBZHM", "XKZH", "KH", "QFZT", "RZFS", "RZBH" FROM "SBK_DZK" WHERE "XKZH" = '{number}'""",
    )
    assert (row.SHBZHM, row.XKZH, row.KH, row.QFZT, row.RZFS, row.RZBH) == (
        "",
        number,
        "",
        "1",
        "FACE",
        "FACE-NEW",
    )
    # Filed under the permit number: the person reads it, and the card service finds it on the person.
    token = await activate(http, answer["activationCode"], person["name"], number)
    mine = await graphql(http, "{ me { electronicCard { id serviceLevel } } }", headers=_cardholder(token))
    assert mine["data"]["me"]["electronicCard"] == {"id": card["id"], "serviceLevel": "BASIC"}
    desk = await graphql(
        http,
        "query($n: String!) { person(lookup: {workPermitNumber: $n}) { electronicCard { id } } }",
        {"n": number},
        headers=caller_headers(settings, *REGISTRATION),
    )
    assert desk["data"]["person"]["electronicCard"] == {"id": card["id"]}
    # One e-card per person: a second registration is refused and writes nothing.
    again = await _mutate(http, settings, REGISTER, _registration(person, "FACE-NEW-2"))
    assert again["electronicCard"] is None and again["activationCode"] is None
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [
        ("CONFLICT", ["input", "identifier", "workPermitNumber"])
    ]
    rows = await _rows(
        settings.source_urls[Agency.CARD_SERVICE], f"""SELECT 1 FROM "SBK_DZK" WHERE "XKZH" = '{number}'"""
    )
    assert len(rows) == 1


async def test_before_enrollment_only_a_notice_issued_or_valid_permit_registers(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    tried = 0
    for status in ("UNDER_REVIEW", "REJECTED"):
        people = await _newcomers(http, settings, status)
        if not people:
            continue
        tried += 1
        answer = await _mutate(http, settings, REGISTER, _registration(people[0], f"FACE-{status}"))
        assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [
            ("NOT_ELIGIBLE", ["input", "identifier", "workPermitNumber"])
        ], status
    assert tried, "the estate should hold persons under review or rejected"


async def test_registration_is_served_under_its_own_purpose_only(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    person = (await _newcomers(http, settings, "NOTICE_ISSUED"))[1]
    answer = await _mutate(
        http, settings, REGISTER, _registration(person, "FACE-DESK"), purpose="card-administration"
    )
    assert [e["code"] for e in answer["userErrors"]] == ["FORBIDDEN"]


async def test_revoking_ends_the_apps_token_and_a_new_registration_makes_a_new_e_card(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    person = (await _newcomers(http, settings, "NOTICE_ISSUED"))[2]
    number = person["workPermit"]["number"]
    registered = await _mutate(http, settings, REGISTER, _registration(person, "FACE-REVOKE"))
    token = await activate(http, registered["activationCode"], person["name"], number)
    assert (
        await http.post("/graphql", json={"query": "{ me { id } }"}, headers=_cardholder(token))
    ).status_code == 200
    card_id = registered["electronicCard"]["id"]
    missing = await _mutate(
        http, settings, REVOKE, {"electronicCardId": card_id, "reason": " "}, "card-administration"
    )
    assert [(e["code"], e["field"]) for e in missing["userErrors"]] == [
        ("INVALID_INPUT", ["input", "reason"])
    ]
    revoked = await _mutate(
        http, settings, REVOKE, {"electronicCardId": card_id, "reason": "Phone stolen"}, "card-administration"
    )
    assert revoked["userErrors"] == [] and revoked["electronicCard"]["status"] == "REVOKED"
    [row] = await _rows(
        settings.source_urls[Agency.CARD_SERVICE],
        f"""SELECT "QFZT" FROM "SBK_DZK" WHERE "XKZH" = '{number}'""",
    )
    assert row.QFZT == "2"
    [kept] = await _rows(settings.store_url, "SELECT reason FROM electronic_card_revocation")
    assert kept.reason == "Phone stolen"
    refused = await http.post("/graphql", json={"query": "{ me { id } }"}, headers=_cardholder(token))
    assert refused.status_code == 401 and "revoked" in refused.json()["errors"][0]["message"]
    twice = await _mutate(
        http, settings, REVOKE, {"electronicCardId": card_id, "reason": "again"}, "card-administration"
    )
    assert [e["code"] for e in twice["userErrors"]] == ["NOT_ELIGIBLE"]
    anew = await _mutate(http, settings, REGISTER, _registration(person, "FACE-REVOKE-2"))
    assert anew["userErrors"] == [] and anew["electronicCard"]["id"] != card_id


async def test_a_lost_phone_gets_a_new_code_through_an_audited_reissue(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    person = (await _newcomers(http, settings, "NOTICE_ISSUED"))[3]
    other = (await _newcomers(http, settings, "NOTICE_ISSUED"))[4]
    number = person["workPermit"]["number"]
    registered = await _mutate(http, settings, REGISTER, _registration(person, "FACE-LOST"))
    old_token = await activate(http, registered["activationCode"], person["name"], number)
    card_id = registered["electronicCard"]["id"]
    impostor = await _mutate(
        http,
        settings,
        REISSUE,
        {"electronicCardId": card_id, "verification": _registration(other, "FACE-LOST-2")["verification"]},
    )
    assert [(e["code"], e["field"]) for e in impostor["userErrors"]] == [
        ("VERIFICATION_FAILED", ["input", "verification", "attestation"])
    ]
    reissued = await _mutate(
        http,
        settings,
        REISSUE,
        {"electronicCardId": card_id, "verification": _registration(person, "FACE-LOST-3")["verification"]},
    )
    assert reissued["userErrors"] == [] and reissued["activationCode"] != registered["activationCode"]
    assert (
        await http.post("/graphql", json={"query": "{ me { id } }"}, headers=_cardholder(old_token))
    ).status_code == 401
    new_token = await activate(http, reissued["activationCode"], person["name"], number)
    log = await graphql(
        http,
        "{ me { accessLog(first: 20) { edges { node { role purpose fields } } } } }",
        headers=_cardholder(new_token),
    )
    events = [e["node"] for e in log["data"]["me"]["accessLog"]["edges"]]
    assert {
        "role": "CARD_SERVICE",
        "purpose": "electronic-card-registration",
        "fields": ["ElectronicCard.activationCode"],
    } in events
