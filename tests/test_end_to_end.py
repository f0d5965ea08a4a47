"""A foreigner's whole path through the graph, against a real uvicorn server, over HTTP and
WebSocket: application, Notification Letter, Z visa, entry, activation, enrollment, e-card,
card activated with the permit loaded, residence permit by e-card, QR verification,
extension and change carried onto the card, cancellation, with notifications along the way;
then every agency's legacy database, read in its own format."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from app import create_app
from domain.records import Agency, CallerRole
from identity.store import HubStore
from notifications.broker import broker
from settings import Settings
from tests.clock import SAFETY_NET, until
from tests.conftest import AS_OF, caller_headers, person_id_of, seed_estate, unhurried
from tests.registration import PROVIDER, activate, trusting

PROTOCOL = Subprotocol("graphql-transport-ws")
PASSPORT = {"number": "C0700001", "nationality": "FRA"}
CREDIT_CODE = "91110000600037341L"


@dataclass
class Live:
    settings: Settings
    http: str
    ws: str


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    settings = trusting(
        unhurried(Settings.for_directory(tmp_path_factory.mktemp("end-to-end"), fixed_today=AS_OF))
    )
    await seed_estate(settings, persons=60, seed=13)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HUB_NOTIFY_INTERVAL", "0")
        app = create_app(settings)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    await until(lambda: server.started or serving.done(), "the server starts")
    assert not serving.done(), "the server did not start"
    try:
        yield Live(settings, f"http://127.0.0.1:{port}/graphql", f"ws://127.0.0.1:{port}/graphql")
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, SAFETY_NET)


async def call(
    live: Live, headers: dict[str, str], query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=SAFETY_NET) as client:
        answer = await client.post(
            live.http, json={"query": query, "variables": variables or {}}, headers=headers
        )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


async def mutate(
    live: Live, role: CallerRole, purpose: str | None, name: str, selection: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    type_name = name[0].upper() + name[1:]
    data = await call(
        live,
        caller_headers(live.settings, role, purpose),
        f"mutation($i: {type_name}Input!) {{ {name}(input: $i) {{ {selection} userErrors {{ code message field }} }} }}",
        {"i": arguments},
    )
    answer: dict[str, Any] = data[name]
    assert answer["userErrors"] == [], answer["userErrors"]
    return answer


async def rows(settings: Settings, agency: Agency, sql: str) -> list[Any]:
    engine = create_async_engine(settings.source_urls[agency])
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


async def next_event(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), SAFETY_NET))
    assert message["type"] == "next", message
    event: dict[str, Any] = message["payload"]["data"]["notifications"]
    return event


async def test_a_foreigners_whole_path(live: Live) -> None:
    settings = live.settings
    wpa = (CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
    permit_selection = "workPermit { id number status validTo procedure }"

    applied = await mutate(
        live,
        *wpa,
        "applyForWorkPermit",
        permit_selection,
        {
            "applicant": {
                "name": {"surname": "Dupont", "givenNames": "Zoë"},
                "sex": "FEMALE",
                "birthDate": "1988-02-29",
                "nationality": PASSPORT["nationality"],
                "passportNumber": PASSPORT["number"],
            },
            "employerCreditCode": CREDIT_CODE,
            "category": "A",
            "position": "Researcher",
            "workDistrict": "110108",
            "validTo": "2028-06-30",
            "idempotencyKey": "e2e-apply",
        },
    )
    permit = applied["workPermit"]
    assert permit["status"] == "UNDER_REVIEW"
    await mutate(live, *wpa, "issueNotificationLetter", permit_selection, {"workPermitId": permit["id"]})
    letter = (
        await call(
            live,
            caller_headers(settings, *wpa),
            "query($n: String!) { workPermit(number: $n) { notificationLetterNumber } }",
            {"n": permit["number"]},
        )
    )["workPermit"]["notificationLetterNumber"]
    visa = await mutate(
        live,
        CallerRole.VISA_AUTHORITY,
        "visa-application",
        "issueZVisa",
        "visa { number }",
        {"passport": PASSPORT, "notificationLetterNumber": letter, "validTo": "2026-09-15"},
    )
    await mutate(
        live,
        CallerRole.EXIT_ENTRY,
        "entry-control",
        "recordEntry",
        "entry { enteredOn }",
        {
            "passport": PASSPORT,
            "visaNumber": visa["visa"]["number"],
            "enteredOn": AS_OF.isoformat(),
            "port": "PKX",
        },
    )
    # The notice's order: right after entry, the e-card with name and permit number (BASIC, no
    # social security number yet), then enrollment by presenting that e-card.
    registered = await mutate(
        live,
        CallerRole.CARD_SERVICE,
        "electronic-card-registration",
        "registerElectronicCard",
        "electronicCard { id serviceLevel workPermitNumber } activationCode",
        {
            "name": {"surname": "DUPONT", "givenNames": "Zoe"},
            "identifier": {"workPermitNumber": permit["number"]},
            "verification": {
                "method": "FACE",
                "attestation": PROVIDER.attest(permit["number"], "FACE-E2E"),
                "reference": "FACE-E2E",
            },
        },
    )
    assert registered["electronicCard"]["serviceLevel"] == "BASIC"
    assert registered["electronicCard"]["workPermitNumber"] == permit["number"]
    [newcomer] = await rows(
        settings,
        Agency.CARD_SERVICE,
        f"""SELECT "SHBZHM", "XKZH", "KH", "QFZT" FROM "SBK_DZK" WHERE "XKZH" = '{permit["number"]}'""",
    )
    assert (newcomer.SHBZHM, newcomer.XKZH, newcomer.KH, newcomer.QFZT) == ("", permit["number"], "", "1")
    async with httpx.AsyncClient(base_url=live.http.removesuffix("/graphql"), timeout=SAFETY_NET) as app:
        token = await activate(
            app, registered["activationCode"], {"surname": "DUPONT", "givenNames": "Zoe"}, permit["number"]
        )
    activated = await mutate(
        live,
        *wpa,
        "activateWorkPermit",
        permit_selection,
        {"workPermitNumber": permit["number"], "enteredOn": AS_OF.isoformat()},
    )
    assert activated["workPermit"]["status"] == "VALID"
    enrolled = await mutate(
        live,
        CallerRole.SOCIAL_INSURANCE_AGENCY,
        "insurance-enrollment",
        "enrollInInsurance",
        "person { id socialSecurityNumber } socialSecurityCard { number status }",
        {
            "workPermitNumber": permit["number"],
            "evidence": {"electronicCardId": registered["electronicCard"]["id"]},
            "employerCreditCode": CREDIT_CODE,
            "insuringDistrict": "110108",
            "idempotencyKey": "e2e-enroll",
        },
    )
    number = enrolled["person"]["socialSecurityNumber"]
    card = enrolled["socialSecurityCard"]["number"]
    [enrolled_card] = await rows(
        settings,
        Agency.CARD_SERVICE,
        f"""SELECT "SHBZHM" FROM "SBK_DZK" WHERE "XKZH" = '{permit["number"]}'""",
    )
    assert enrolled_card.SHBZHM == number  # the e-card took the new social security number
    cardholder = {"Authorization": f"Bearer {token}"}

    async with connect(live.ws, subprotocols=[PROTOCOL], open_timeout=SAFETY_NET) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": cardholder}))
        assert json.loads(await asyncio.wait_for(ws.recv(), SAFETY_NET)) == {"type": "connection_ack"}
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": "subscription { notifications { id kind message } }"},
                }
            )
        )
        # Wait until the subscription listens: without `after`, only events from then on are sent.
        store = HubStore.open(settings.store_url)
        person_id = person_id_of(settings, enrolled["person"]["id"])
        await until(lambda: broker.listeners(store, person_id) > 0, "the subscription listens")
        await store.close()

        activated_card = await mutate(
            live,
            CallerRole.CARD_SERVICE,
            "card-administration",
            "activateSocialSecurityCard",
            "socialSecurityCard { status carriesWorkPermit workPermitNumber }",
            {"cardNumber": card},
        )
        assert activated_card["socialSecurityCard"] == {
            "status": "IN_USE",
            "carriesWorkPermit": True,
            "workPermitNumber": permit["number"],
        }
        assert (await next_event(ws))["kind"] == "CARD_ISSUED"

        residence = await mutate(
            live,
            CallerRole.EXIT_ENTRY,
            "residence-application",
            "applyForResidencePermit",
            "residencePermit { number verifiedBy validTo }",
            {
                "passport": PASSPORT,
                "evidence": {"electronicCardId": registered["electronicCard"]["id"]},
                "issuingOffice": "海淀分局",
                "validTo": "2027-06-30",
            },
        )
        assert residence["residencePermit"]["verifiedBy"] == "ELECTRONIC_CARD"
        assert (await next_event(ws))["kind"] == "RESIDENCE_PERMIT_ISSUED"

        mine = await call(
            live, cardholder, "{ me { workPermit { qrCode } electronicCard { serviceLevel } } }"
        )
        assert mine["me"]["electronicCard"]["serviceLevel"] == "STANDARD"
        verified = await call(
            live,
            caller_headers(settings, CallerRole.EXIT_ENTRY, "entry-control"),
            "query($q: String!) { verifyWorkPermit(input: {qrCode: $q}) { valid channel permitNumber } }",
            {"q": mine["me"]["workPermit"]["qrCode"]},
        )
        assert verified["verifyWorkPermit"] == {
            "valid": True,
            "channel": "QR_CODE",
            "permitNumber": permit["number"],
        }

        await mutate(
            live,
            *wpa,
            "extendWorkPermit",
            permit_selection,
            {"workPermitNumber": permit["number"], "validTo": "2029-06-30"},
        )
        assert (await next_event(ws))["kind"] == "PERMIT_CHANGED"
        await mutate(
            live,
            *wpa,
            "changeWorkPermit",
            permit_selection,
            {"workPermitNumber": permit["number"], "position": "Lead Researcher"},
        )
        assert (await next_event(ws))["kind"] == "PERMIT_CHANGED"
        cancelled = await mutate(
            live,
            *wpa,
            "cancelWorkPermit",
            permit_selection,
            {"workPermitNumber": permit["number"], "reason": "Contract ended"},
        )
        assert cancelled["workPermit"]["status"] == "CANCELLED"
        assert (await next_event(ws))["kind"] == "PERMIT_CANCELLED"

    # Every agency's database, in its own format.
    [period] = await rows(
        settings,
        Agency.WORK_PERMIT_SYSTEM,
        f"""SELECT "XKID", "ZT", "YXQQ", "YXQZ", "ZW", "STZ", "TZSBH" FROM "WP_XKZ" WHERE "XKZH" = '{permit["number"]}'""",
    )
    assert (period.ZT, period.YXQQ, period.YXQZ, period.ZW, period.STZ, period.TZSBH) == (
        "40",
        "20260615",
        "20290630",
        "Lead Researcher",
        "0",
        letter,
    )
    steps = await rows(
        settings,
        Agency.WORK_PERMIT_SYSTEM,
        f"""SELECT "YWLX", "JG" FROM "WP_YWJL" WHERE "XKID" = {period.XKID}""",
    )
    assert sorted(s.YWLX for s in steps) == sorted(["XB", "TZ", "JH", "YQ", "BG", "ZX"])
    [insured] = await rows(
        settings,
        Agency.SOCIAL_INSURANCE,
        f"""SELECT "AAC001", "AAC003", "AAC004", "AAC006", "AAC161" FROM "AC01" WHERE "AAC002" = '{number}'""",
    )
    assert (insured.AAC003, insured.AAC004, insured.AAC006, insured.AAC161) == (
        "Zoe Dupont",
        "2",
        19880229,
        "250",
    )
    assert (
        len(
            await rows(
                settings,
                Agency.SOCIAL_INSURANCE,
                f"""SELECT 1 FROM "AC02" WHERE "AAC001" = {insured.AAC001} AND "AAE100" = '1'""",
            )
        )
        == 5
    )
    [physical] = await rows(
        settings,
        Agency.CARD_SERVICE,
        f"""SELECT "KZT", "FKRQ", "GZXKXX" FROM "SBK_KXX" WHERE "KH" = '{card}'""",
    )
    assert physical.KZT == "1" and physical.FKRQ == "2026-06-15"
    loaded = json.loads(physical.GZXKXX)
    assert (loaded["XKZH"], loaded["ZT"], loaded["YXQZ"]) == (permit["number"], "40", "20290630")
    assert loaded["JZSJ"].endswith("+08:00")
    [ecard] = await rows(
        settings,
        Agency.CARD_SERVICE,
        f"""SELECT "KH", "XKZH", "QFZT", "RZFS" FROM "SBK_DZK" WHERE "SHBZHM" = '{number}'""",
    )
    assert (ecard.KH, ecard.XKZH, ecard.QFZT, ecard.RZFS) == (card, permit["number"], "1", "FACE")
    [traveller] = await rows(
        settings,
        Agency.EXIT_ENTRY,
        f"""SELECT "RYBH", "YWXM", "XB", "CSRQ", "GJ" FROM "CRJ_RY" WHERE "ZJHM" = '{PASSPORT["number"]}'""",
    )
    assert (traveller.YWXM, traveller.XB, traveller.CSRQ, traveller.GJ) == (
        "Dupont, Zoë",
        "女",
        "1988/02/29",
        "法国",
    )
    [z_visa] = await rows(
        settings,
        Agency.EXIT_ENTRY,
        f"""SELECT "QZZL", "TZSBH", "QFRQ" FROM "CRJ_QZ" WHERE "RYBH" = '{traveller.RYBH}'""",
    )
    assert (z_visa.QZZL, z_visa.TZSBH, z_visa.QFRQ) == ("Z", letter, "2026/06/15")
    [entry] = await rows(
        settings,
        Agency.EXIT_ENTRY,
        f"""SELECT "RJRQ", "KA" FROM "CRJ_RJ" WHERE "RYBH" = '{traveller.RYBH}'""",
    )
    assert (entry.RJRQ, entry.KA) == ("2026/06/15", "PKX")
    [permit_row] = await rows(
        settings,
        Agency.EXIT_ENTRY,
        f"""SELECT "JLSY", "YXQZ", "ZT", "HYFS" FROM "CRJ_JLXK" WHERE "RYBH" = '{traveller.RYBH}'""",
    )
    assert (permit_row.JLSY, permit_row.YXQZ, permit_row.ZT, permit_row.HYFS) == (
        "GZ",
        "2027/06/30",
        "Y",
        "DZK",
    )
