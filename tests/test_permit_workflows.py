"""The work-permit lifecycle as mutations: the legacy rows they write, in the agency's own
formats; the rules each answers with a user error; idempotency; all or nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from adapters import Sources
from adapters.card_service import writes as card_writes
from adapters.identifiers import NOTIFICATION_LETTER_NUMBER, PERMIT_NUMBER
from adapters.work_permit.tables import WP_XKZ
from domain.records import Agency, CallerRole
from identity.store import HubStore
from identity.tables import table_of
from settings import Settings
from tests.conftest import AS_OF, BACKENDS, caller_headers, fresh_estate, graphql, serve
from tests.registration import PROVIDER, activate, trusting
from workflows.engine import HUB_STORE, Journal
from workflows.registry import workflow_runner
from workflows.tables import WorkflowRun

AUTHORITY = (CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration")
CREDIT_CODE = "91110000600037341L"
PAYLOAD = "workPermit { id number status validFrom validTo procedure employer { creditCode } history { kind outcome remark } } userErrors { code message field }"


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
    """A fresh small estate the workflows may write to."""
    data_dir = tmp_path_factory.mktemp(f"workflows-{request.param}")
    async with fresh_estate(request.param, data_dir, persons=120, seed=5) as seeded:
        yield trusting(seeded.settings)


@pytest.fixture(scope="module")
async def hub(estate: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(estate, caller_headers(estate, *AUTHORITY)) as http:
        yield http


def application(passport: str, **overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "applicant": {
            "name": {"surname": "Müller", "givenNames": "Anna Maria"},
            "sex": "FEMALE",
            "birthDate": "1990-04-01",
            "nationality": "DEU",
            "passportNumber": passport,
        },
        "employerCreditCode": CREDIT_CODE,
        "category": "B",
        "position": "Engineer",
        "workDistrict": "110105",
        "validTo": (AS_OF + timedelta(days=365)).isoformat(),
    }
    value.update(overrides)
    return value


async def mutate(
    client: httpx.AsyncClient, name: str, arguments: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    body = await graphql(
        client,
        f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) {{ {PAYLOAD} }} }}",
        {"input": arguments},
        headers=headers,
    )
    assert "errors" not in body, body["errors"]
    answer: dict[str, Any] = body["data"][name]
    return answer


async def test_an_application_writes_the_permit_system_in_its_own_formats(
    hub: httpx.AsyncClient, estate: Settings
) -> None:
    answer = await mutate(hub, "applyForWorkPermit", application("C0100001"))
    assert answer["userErrors"] == []
    permit = answer["workPermit"]
    assert (
        permit["status"] == "UNDER_REVIEW"
        and permit["validFrom"] is None
        and PERMIT_NUMBER.match(permit["number"])
    )
    wp = estate.source_urls[Agency.WORK_PERMIT_SYSTEM]
    [row] = await rows(
        wp,
        f"""SELECT s."XM", s."XB", s."CSRQ", s."GJ", x."ZT", x."YXQQ", x."YXQZ", x."STZ", x."TYSHXYDM"
        FROM "WP_XKZ" x JOIN "WP_SQR" s ON s."SQRID" = x."SQRID" WHERE x."XKZH" = '{permit["number"]}'""",
    )
    assert (row.XM.strip(), row.XB, row.CSRQ, row.GJ) == ("MÜLLER ANNA MARIA", "F", "19900401", "DEU")
    assert (row.ZT, row.YXQQ, row.YXQZ, row.STZ, row.TYSHXYDM) == ("10", "", "", "0", CREDIT_CODE)
    records = await rows(
        wp,
        f"""SELECT y."YWLX", y."JG", y."BJRQ" FROM "WP_YWJL" y JOIN "WP_XKZ" x ON x."XKID" = y."XKID" WHERE x."XKZH" = '{permit["number"]}'""",
    )
    assert [(r.YWLX, r.JG, r.BJRQ) for r in records] == [("XB", "0", "")]
    found = await graphql(
        hub,
        "query($n: String!) { person(lookup: {workPermitNumber: $n}) { name { full } workPermit { number } } }",
        {"n": permit["number"]},
    )
    assert found["data"]["person"] == {
        "name": {"full": "Müller, Anna Maria"},
        "workPermit": {"number": permit["number"]},
    }

    noticed = await mutate(hub, "issueNotificationLetter", {"workPermitId": permit["id"]})
    assert noticed["userErrors"] == [] and noticed["workPermit"]["status"] == "NOTICE_ISSUED"
    assert noticed["workPermit"]["validFrom"] == AS_OF.isoformat()
    [row] = await rows(
        wp,
        f"""SELECT "ZT", "TZSBH", "TZRQ", "YXQQ", "YXQZ" FROM "WP_XKZ" WHERE "XKZH" = '{permit["number"]}'""",
    )
    assert row.ZT == "20" and NOTIFICATION_LETTER_NUMBER.match(row.TZSBH) and row.TZRQ == "20260615"
    assert (row.YXQQ, row.YXQZ) == ("20260615", (AS_OF + timedelta(days=365)).strftime("%Y%m%d"))
    assert [(e["kind"], e["outcome"]) for e in noticed["workPermit"]["history"]] == [
        ("APPLICATION", "APPROVED"),
        ("NOTICE", "APPROVED"),
    ]
    again = await mutate(hub, "issueNotificationLetter", {"workPermitId": permit["id"]})
    assert again["userErrors"][0]["code"] == "NOT_ELIGIBLE" and again["userErrors"][0]["field"] == [
        "input",
        "workPermitId",
    ]


async def test_a_rejection_keeps_its_reason(hub: httpx.AsyncClient, estate: Settings) -> None:
    applied = await mutate(hub, "applyForWorkPermit", application("C0100002"))
    rejected = await mutate(
        hub,
        "rejectWorkPermitApplication",
        {"workPermitId": applied["workPermit"]["id"], "reason": "Degree not recognised"},
    )
    assert rejected["workPermit"]["status"] == "REJECTED"
    assert [(e["kind"], e["outcome"], e["remark"]) for e in rejected["workPermit"]["history"]] == [
        ("APPLICATION", "REJECTED", None),
        ("REJECTION", "APPROVED", "Degree not recognised"),
    ]


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        (
            {"applicant": {**application("C1")["applicant"], "sex": "UNSTATED"}},
            "INVALID_INPUT",
            ["input", "applicant", "sex"],
        ),
        (
            {"applicant": {**application("C1")["applicant"], "nationality": "XXX"}},
            "INVALID_INPUT",
            ["input", "applicant", "nationality"],
        ),
        ({"employerCreditCode": CREDIT_CODE[:-1] + "A"}, "INVALID_INPUT", ["input", "employerCreditCode"]),
        ({"workDistrict": "Chaoyang"}, "INVALID_INPUT", ["input", "workDistrict"]),
        ({"validTo": AS_OF.isoformat()}, "INVALID_INPUT", ["input", "validTo"]),
    ],
)
async def test_an_application_breaking_a_rule_writes_nothing(
    hub: httpx.AsyncClient, estate: Settings, overrides: dict[str, Any], code: str, field: list[str]
) -> None:
    wp = estate.source_urls[Agency.WORK_PERMIT_SYSTEM]
    before = (await rows(wp, 'SELECT count(*) AS n FROM "WP_XKZ"'))[0].n
    answer = await mutate(hub, "applyForWorkPermit", application("C0100003", **overrides))
    assert answer["workPermit"] is None
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [(code, field)]
    assert (await rows(wp, 'SELECT count(*) AS n FROM "WP_XKZ"'))[0].n == before


async def _valid_with_cards(estate: Settings) -> Any:
    """A valid permit whose holder has a card in use and an e-card, preferring a legacy one."""
    wp = estate.source_urls[Agency.WORK_PERMIT_SYSTEM]
    valid = await rows(
        wp,
        """SELECT "XKZH", "STZ", "YXQZ" FROM "WP_XKZ" WHERE "ZT" = '30' AND "YXQZ" > '20260715' ORDER BY "STZ" DESC, "XKID" """,
    )
    cards = await rows(
        estate.source_urls[Agency.CARD_SERVICE],
        """SELECT k."GZXKXX" FROM "SBK_KXX" k WHERE k."KZT" = '1' AND k."GZXKXX" <> ''""",
    )
    carried = {json.loads(c.GZXKXX)["XKZH"] for c in cards}
    return next(v for v in valid if v.XKZH in carried)


async def test_extension_change_and_cancellation_are_carried_onto_the_cards(
    hub: httpx.AsyncClient, estate: Settings
) -> None:
    permit = await _valid_with_cards(estate)
    longer = (
        date.fromisoformat(f"{permit.YXQZ[:4]}-{permit.YXQZ[4:6]}-{permit.YXQZ[6:]}") + timedelta(days=200)
    ).isoformat()
    extended = await mutate(hub, "extendWorkPermit", {"workPermitNumber": permit.XKZH, "validTo": longer})
    assert extended["userErrors"] == [] and extended["workPermit"]["validTo"] == longer
    assert extended["workPermit"]["procedure"] == "INTEGRATED"  # a legacy physical permit moves on
    cards = estate.source_urls[Agency.CARD_SERVICE]

    async def carried() -> list[dict[str, str]]:
        found = await rows(
            cards, """SELECT "GZXKXX" FROM "SBK_KXX" WHERE "GZXKXX" <> '' AND "KZT" IN ('0', '1')"""
        )
        return [json.loads(r.GZXKXX) for r in found if json.loads(r.GZXKXX)["XKZH"] == permit.XKZH]

    assert [c["YXQZ"] for c in await carried()] == [longer.replace("-", "")]
    changed = await mutate(
        hub, "changeWorkPermit", {"workPermitNumber": permit.XKZH, "position": "Chief Engineer"}
    )
    assert changed["workPermit"]["history"][-1]["kind"] == "CHANGE"
    assert "ZW:" in changed["workPermit"]["history"][-1]["remark"]
    nothing = await mutate(hub, "changeWorkPermit", {"workPermitNumber": permit.XKZH})
    assert [(e["code"], e["field"]) for e in nothing["userErrors"]] == [("INVALID_INPUT", ["input"])]
    shorter = await mutate(
        hub, "extendWorkPermit", {"workPermitNumber": permit.XKZH, "validTo": AS_OF.isoformat()}
    )
    assert [(e["code"], e["field"]) for e in shorter["userErrors"]] == [
        ("INVALID_INPUT", ["input", "validTo"])
    ]
    cancelled = await mutate(
        hub, "cancelWorkPermit", {"workPermitNumber": permit.XKZH, "reason": "Left the employer"}
    )
    assert cancelled["workPermit"]["status"] == "CANCELLED"
    assert cancelled["workPermit"]["history"][-1] == {
        "kind": "CANCELLATION",
        "outcome": "APPROVED",
        "remark": "Left the employer",
    }
    assert [c["ZT"] for c in await carried()] == ["40"]
    late = await mutate(hub, "extendWorkPermit", {"workPermitNumber": permit.XKZH, "validTo": longer})
    assert [(e["code"], e["field"]) for e in late["userErrors"]] == [
        ("NOT_ELIGIBLE", ["input", "workPermitNumber"])
    ]


async def test_activation_needs_an_entry_of_the_holder(hub: httpx.AsyncClient, estate: Settings) -> None:
    wp = estate.source_urls[Agency.WORK_PERMIT_SYSTEM]
    noticed = {
        r.XKZH: r.SQRID for r in await rows(wp, """SELECT "XKZH", "SQRID" FROM "WP_XKZ" WHERE "ZT" = '20'""")
    }
    store = HubStore.open(estate.store_url)
    try:
        async with store.engine.connect() as conn:
            links = (
                await conn.execute(
                    text(
                        "SELECT a.owner_key AS sqrid, b.owner_key AS rybh FROM identity_link a JOIN identity_link b ON a.person_id = b.person_id WHERE a.record_type = 'WP_SQR' AND b.record_type = 'CRJ_RY' AND b.confidence = 'CONFIRMED'"
                    )
                )
            ).all()
    finally:
        await store.close()
    traveller = {int(r.sqrid): r.rybh for r in links}
    number = next(n for n, s in noticed.items() if s in traveller)
    [entry] = (
        await rows(
            estate.source_urls[Agency.EXIT_ENTRY],
            f"""SELECT "RJRQ" FROM "CRJ_RJ" WHERE "RYBH" = '{traveller[noticed[number]]}' ORDER BY "RJRQ" DESC""",
        )
    )[:1]
    entered = entry.RJRQ.replace("/", "-")
    wrong = await mutate(hub, "activateWorkPermit", {"workPermitNumber": number, "enteredOn": "2020-01-01"})
    assert [(e["code"], e["field"]) for e in wrong["userErrors"]] == [
        ("NOT_ELIGIBLE", ["input", "enteredOn"])
    ]
    activated = await mutate(hub, "activateWorkPermit", {"workPermitNumber": number, "enteredOn": entered})
    assert activated["userErrors"] == [] and activated["workPermit"]["status"] in ("VALID", "EXPIRED")
    assert ("ACTIVATION", "APPROVED") in [
        (e["kind"], e["outcome"]) for e in activated["workPermit"]["history"]
    ]


async def test_a_repeated_key_answers_the_first_result_and_other_input_conflicts(
    hub: httpx.AsyncClient, estate: Settings
) -> None:
    wp = estate.source_urls[Agency.WORK_PERMIT_SYSTEM]
    before = (await rows(wp, 'SELECT count(*) AS n FROM "WP_XKZ"'))[0].n
    keyed = application("C0100009", idempotencyKey="apply-C0100009")
    answers = await asyncio.gather(*(mutate(hub, "applyForWorkPermit", keyed) for _ in range(5)))
    assert len({a["workPermit"]["number"] for a in answers}) == 1
    assert (await rows(wp, 'SELECT count(*) AS n FROM "WP_XKZ"'))[0].n == before + 1
    retried = await mutate(hub, "applyForWorkPermit", keyed)
    assert retried["workPermit"]["id"] == answers[0]["workPermit"]["id"]
    other = await mutate(hub, "applyForWorkPermit", {**keyed, "position": "Manager"})
    assert [(e["code"], e["field"]) for e in other["userErrors"]] == [
        ("CONFLICT", ["input", "idempotencyKey"])
    ]
    assert (await rows(wp, 'SELECT count(*) AS n FROM "WP_XKZ"'))[0].n == before + 1


async def test_a_role_without_the_mutation_gets_a_forbidden_user_error(
    hub: httpx.AsyncClient, estate: Settings
) -> None:
    answer = await mutate(
        hub,
        "applyForWorkPermit",
        application("C0100010"),
        headers=caller_headers(estate, CallerRole.EXIT_ENTRY, "entry-control"),
    )
    assert answer["workPermit"] is None and answer["userErrors"][0]["code"] == "FORBIDDEN"


async def test_a_failing_step_leaves_no_trace_anywhere(
    hub: httpx.AsyncClient, estate: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    permit = await _valid_with_cards(estate)
    wp = estate.source_urls[Agency.WORK_PERMIT_SYSTEM]
    before = await rows(
        wp, f"""SELECT "YXQZ", "STZ" FROM "WP_XKZ" WHERE "XKZH" = '{permit.XKZH}' ORDER BY "XKID" """
    )
    history = (await rows(wp, 'SELECT count(*) AS n FROM "WP_YWJL"'))[0].n

    async def card_service_down(*_args: Any, **_kwargs: Any) -> int:
        raise ConnectionError("the card service went away")

    monkeypatch.setattr(card_writes, "load_permit", card_service_down)
    body = await graphql(
        hub,
        "mutation($i: ExtendWorkPermitInput!) { extendWorkPermit(input: $i) { userErrors { code message } } }",
        {"i": {"workPermitNumber": permit.XKZH, "validTo": "2031-01-01"}},
    )
    # An unreachable source is a user error naming the agency; the driver's words stay inside.
    [error] = body["data"]["extendWorkPermit"]["userErrors"]
    assert error["code"] == "SOURCE_UNAVAILABLE" and "CARD_SERVICE" in error["message"]
    assert "went away" not in json.dumps(body)
    assert (
        await rows(
            wp, f"""SELECT "YXQZ", "STZ" FROM "WP_XKZ" WHERE "XKZH" = '{permit.XKZH}' ORDER BY "XKID" """
        )
        == before
    )
    assert (await rows(wp, 'SELECT count(*) AS n FROM "WP_YWJL"'))[0].n == history


async def test_a_run_cut_short_by_a_crash_is_undone_at_the_next_start(estate: Settings) -> None:
    sources = Sources.open(estate.source_urls)
    store = HubStore.open(estate.store_url)
    try:
        runner = workflow_runner(sources, store)
        async with store.engine.begin() as conn:
            inserted = await conn.execute(
                table_of(WorkflowRun)
                .insert()
                .values(
                    kind="extendWorkPermit",
                    client="crashed",
                    input_hash="x",
                    status="RUNNING",
                    started_at=datetime.now(UTC),
                    lease_owner=runner.owner,
                    lease_expires=datetime.now(UTC) + timedelta(hours=1),
                )
            )
            assert inserted.inserted_primary_key is not None
            run_id = inserted.inserted_primary_key[0]
        journal = Journal(runner, run_id)
        wp = estate.source_urls[Agency.WORK_PERMIT_SYSTEM]
        [period] = await rows(
            wp, """SELECT "XKID", "YXQZ" FROM "WP_XKZ" WHERE "ZT" = '30' ORDER BY "XKID" LIMIT 1"""
        )
        async with journal.writing(Agency.WORK_PERMIT_SYSTEM.value) as conn:
            await journal.update(
                conn, Agency.WORK_PERMIT_SYSTEM.value, WP_XKZ, {"XKID": period.XKID}, {"YXQZ": "20991231"}
            )
        assert (await rows(wp, f'SELECT "YXQZ" FROM "WP_XKZ" WHERE "XKID" = {period.XKID}'))[
            0
        ].YXQZ == "20991231"
        # The process dies here: nothing marks the run finished. The next start (the only
        # process on the store) undoes it, though its lease has not expired yet.
        assert await workflow_runner(sources, store).start() == 1
        assert (await rows(wp, f'SELECT "YXQZ" FROM "WP_XKZ" WHERE "XKID" = {period.XKID}'))[
            0
        ].YXQZ == period.YXQZ
        async with store.engine.connect() as conn:
            status = (
                await conn.execute(text(f"SELECT status FROM workflow_run WHERE id = {run_id}"))
            ).scalar_one()
        assert status == "UNDONE"
        assert HUB_STORE in runner.engines
    finally:
        await sources.close()
        await store.close()


def _gql_mutation(name: str, selection: str) -> str:
    return f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) {{ {selection} userErrors {{ code message field }} }} }}"


async def _as(
    client: httpx.AsyncClient,
    estate: Settings,
    role: CallerRole,
    purpose: str,
    name: str,
    selection: str,
    arguments: dict[str, Any],
) -> dict[str, Any]:
    body = await graphql(
        client,
        _gql_mutation(name, selection),
        {"input": arguments},
        headers=caller_headers(estate, role, purpose),
    )
    assert "errors" not in body, body["errors"]
    answer: dict[str, Any] = body["data"][name]
    return answer


async def test_the_path_from_application_to_residence_permit(
    hub: httpx.AsyncClient, estate: Settings
) -> None:
    passport = {"number": "C0200001", "nationality": "DEU"}
    applied = await mutate(hub, "applyForWorkPermit", application(passport["number"]))
    permit = applied["workPermit"]
    noticed = await mutate(hub, "issueNotificationLetter", {"workPermitId": permit["id"]})
    wp = estate.source_urls[Agency.WORK_PERMIT_SYSTEM]
    letter = (await rows(wp, f"""SELECT "TZSBH" FROM "WP_XKZ" WHERE "XKZH" = '{permit["number"]}'"""))[
        0
    ].TZSBH
    assert noticed["userErrors"] == []
    visa_query = "visa { number type notificationLetterNumber validTo }"
    wrong_passport = await _as(
        hub,
        estate,
        CallerRole.VISA_AUTHORITY,
        "visa-application",
        "issueZVisa",
        visa_query,
        {
            "passport": {"number": "X9999999", "nationality": "DEU"},
            "notificationLetterNumber": letter,
            "validTo": "2026-09-01",
        },
    )
    assert [(e["code"], e["field"]) for e in wrong_passport["userErrors"]] == [
        ("NOT_FOUND", ["input", "passport"])
    ]
    visa = await _as(
        hub,
        estate,
        CallerRole.VISA_AUTHORITY,
        "visa-application",
        "issueZVisa",
        visa_query,
        {"passport": passport, "notificationLetterNumber": letter, "validTo": "2026-09-01"},
    )
    assert (
        visa["userErrors"] == []
        and visa["visa"]["type"] == "Z"
        and visa["visa"]["notificationLetterNumber"] == letter
    )
    entry = await _as(
        hub,
        estate,
        CallerRole.EXIT_ENTRY,
        "entry-control",
        "recordEntry",
        "entry { enteredOn port visaNumber }",
        {
            "passport": passport,
            "visaNumber": visa["visa"]["number"],
            "enteredOn": AS_OF.isoformat(),
            "port": "PEK",
        },
    )
    assert entry["entry"] == {
        "enteredOn": AS_OF.isoformat(),
        "port": "PEK",
        "visaNumber": visa["visa"]["number"],
    }
    ee = estate.source_urls[Agency.EXIT_ENTRY]
    [traveller] = await rows(
        ee, f"""SELECT "YWXM", "XB", "CSRQ", "GJ" FROM "CRJ_RY" WHERE "ZJHM" = '{passport["number"]}'"""
    )
    assert (traveller.YWXM, traveller.XB, traveller.CSRQ, traveller.GJ) == (
        "Müller, Anna Maria",
        "女",
        "1990/04/01",
        "德国",
    )
    activated = await mutate(
        hub, "activateWorkPermit", {"workPermitNumber": permit["number"], "enteredOn": AS_OF.isoformat()}
    )
    assert activated["userErrors"] == [] and activated["workPermit"]["status"] == "VALID"
    residence_query = "residencePermit { number purpose validTo status verifiedBy }"
    too_long = await _as(
        hub,
        estate,
        CallerRole.EXIT_ENTRY,
        "residence-application",
        "applyForResidencePermit",
        residence_query,
        {
            "passport": passport,
            "evidence": {"notificationLetterNumber": letter},
            "issuingOffice": "Chaoyang",
            "validTo": "2028-01-01",
        },
    )
    assert [(e["code"], e["field"]) for e in too_long["userErrors"]] == [
        ("INVALID_INPUT", ["input", "validTo"])
    ]
    issued = await _as(
        hub,
        estate,
        CallerRole.EXIT_ENTRY,
        "residence-application",
        "applyForResidencePermit",
        residence_query,
        {
            "passport": passport,
            "evidence": {"notificationLetterNumber": letter},
            "issuingOffice": "Chaoyang",
            "validTo": "2027-01-01",
        },
    )
    assert issued["userErrors"] == []
    assert issued["residencePermit"] == {
        "number": issued["residencePermit"]["number"],
        "purpose": "WORK",
        "validTo": "2027-01-01",
        "status": "VALID",
        "verifiedBy": "SYSTEM",
    }
    qr = (
        await graphql(
            hub, "query($n: String!) { workPermit(number: $n) { qrCode } }", {"n": permit["number"]}
        )
    )["data"]["workPermit"]["qrCode"]
    for code, expected in (
        ("not-a-qr-code", [("VERIFICATION_FAILED", ["input", "evidence", "qrCode"])]),
        (qr, []),
    ):
        by_qr = await _as(
            hub,
            estate,
            CallerRole.EXIT_ENTRY,
            "residence-application",
            "applyForResidencePermit",
            residence_query,
            {
                "passport": passport,
                "evidence": {"qrCode": code},
                "issuingOffice": "Chaoyang",
                "validTo": "2027-01-01",
            },
        )
        assert [(e["code"], e["field"]) for e in by_qr["userErrors"]] == expected
    assert by_qr["residencePermit"]["verifiedBy"] == "QR_CODE"
    # Exit-entry finds the person by the new residence permit, the same as by the permit number.
    desk = caller_headers(estate, CallerRole.EXIT_ENTRY, "residence-application")
    found = await graphql(
        hub,
        "query($n: String!, $p: String!) { byResidence: person(lookup: {residencePermitNumber: $n}) { id }"
        " byPermit: person(lookup: {workPermitNumber: $p}) { id } }",
        {"n": issued["residencePermit"]["number"], "p": permit["number"]},
        headers=desk,
    )
    assert found["data"]["byResidence"]["id"] == found["data"]["byPermit"]["id"]
    past_permit = await _as(
        hub,
        estate,
        CallerRole.EXIT_ENTRY,
        "residence-application",
        "extendResidencePermit",
        residence_query,
        {"residencePermitNumber": issued["residencePermit"]["number"], "validTo": "2027-12-01"},
    )
    assert [(e["code"], e["field"]) for e in past_permit["userErrors"]] == [
        ("INVALID_INPUT", ["input", "validTo"])
    ]
    extended = await _as(
        hub,
        estate,
        CallerRole.EXIT_ENTRY,
        "residence-application",
        "extendResidencePermit",
        residence_query,
        {"residencePermitNumber": issued["residencePermit"]["number"], "validTo": "2027-03-01"},
    )
    assert extended["userErrors"] == [] and extended["residencePermit"]["validTo"] == "2027-03-01"


async def test_a_residence_permit_needs_a_recent_entry_on_a_z_visa(
    hub: httpx.AsyncClient, estate: Settings
) -> None:
    passport = {"number": "C0200002", "nationality": "DEU"}
    applied = await mutate(hub, "applyForWorkPermit", application(passport["number"]))
    await mutate(hub, "issueNotificationLetter", {"workPermitId": applied["workPermit"]["id"]})
    letter = (
        await rows(
            estate.source_urls[Agency.WORK_PERMIT_SYSTEM],
            f"""SELECT "TZSBH" FROM "WP_XKZ" WHERE "XKZH" = '{applied["workPermit"]["number"]}'""",
        )
    )[0].TZSBH
    answer = await _as(
        hub,
        estate,
        CallerRole.EXIT_ENTRY,
        "residence-application",
        "applyForResidencePermit",
        "residencePermit { number }",
        {
            "passport": passport,
            "evidence": {"notificationLetterNumber": letter},
            "issuingOffice": "Chaoyang",
            "validTo": "2027-01-01",
        },
    )
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [
        ("NOT_ELIGIBLE", ["input", "passport"])
    ]
    assert (
        await rows(
            estate.source_urls[Agency.EXIT_ENTRY],
            f"""SELECT count(*) AS n FROM "CRJ_RY" WHERE "ZJHM" = '{passport["number"]}'""",
        )
    )[0].n == 0


ENROLLED = "person { id socialSecurityNumber } socialSecurityCard { number status carriesWorkPermit }"


async def _unenrolled_valid_permit(estate: Settings) -> Any:
    """A valid permit whose holder is known to the hub but not insured, with its letter and employer."""
    store = HubStore.open(estate.store_url)
    try:
        async with store.engine.connect() as conn:
            uninsured = {
                r[0]
                for r in (
                    await conn.execute(
                        text(
                            "SELECT owner_key FROM identity_link l WHERE record_type = 'WP_SQR' AND NOT EXISTS "
                            "(SELECT 1 FROM identity_link i WHERE i.person_id = l.person_id AND i.record_type = 'AC01')"
                        )
                    )
                ).all()
            }
    finally:
        await store.close()
    permits = await rows(
        estate.source_urls[Agency.WORK_PERMIT_SYSTEM],
        """SELECT "XKZH", "SQRID", "TZSBH", "TYSHXYDM" FROM "WP_XKZ" WHERE "ZT" = '20' ORDER BY "XKID" """,
    )
    return next(p for p in permits if str(p.SQRID) in uninsured)


async def test_enrollment_writes_both_agencies_once_and_activation_loads_the_permit(
    hub: httpx.AsyncClient, estate: Settings
) -> None:
    candidate = await _unenrolled_valid_permit(estate)
    # Make it valid first, through the lifecycle (an entry is recorded for the holder).
    passport = (
        await rows(
            estate.source_urls[Agency.WORK_PERMIT_SYSTEM],
            f"""SELECT "HZHM", "GJ" FROM "WP_SQR" WHERE "SQRID" = {candidate.SQRID}""",
        )
    )[0]
    visa = await _as(
        hub,
        estate,
        CallerRole.VISA_AUTHORITY,
        "visa-application",
        "issueZVisa",
        "visa { number }",
        {
            "passport": {"number": passport.HZHM, "nationality": passport.GJ},
            "notificationLetterNumber": candidate.TZSBH,
            "validTo": "2026-09-01",
        },
    )
    assert visa["userErrors"] == [], visa
    await _as(
        hub,
        estate,
        CallerRole.EXIT_ENTRY,
        "entry-control",
        "recordEntry",
        "entry { enteredOn }",
        {
            "passport": {"number": passport.HZHM, "nationality": passport.GJ},
            "visaNumber": visa["visa"]["number"],
            "enteredOn": AS_OF.isoformat(),
            "port": "PKX",
        },
    )
    activated = await mutate(
        hub, "activateWorkPermit", {"workPermitNumber": candidate.XKZH, "enteredOn": AS_OF.isoformat()}
    )
    assert activated["userErrors"] == []
    enroll = {
        "workPermitNumber": candidate.XKZH,
        "evidence": {"notificationLetterNumber": candidate.TZSBH},
        "employerCreditCode": candidate.TYSHXYDM.strip(),
        "insuringDistrict": "110105",
        "idempotencyKey": f"enroll-{candidate.XKZH}",
    }
    wrong_employer = await _as(
        hub,
        estate,
        CallerRole.SOCIAL_INSURANCE_AGENCY,
        "insurance-enrollment",
        "enrollInInsurance",
        ENROLLED,
        {**enroll, "employerCreditCode": CREDIT_CODE, "idempotencyKey": None},
    )
    assert [(e["code"], e["field"]) for e in wrong_employer["userErrors"]] == [
        ("NOT_ELIGIBLE", ["input", "employerCreditCode"])
    ]
    first = await _as(
        hub,
        estate,
        CallerRole.SOCIAL_INSURANCE_AGENCY,
        "insurance-enrollment",
        "enrollInInsurance",
        ENROLLED,
        enroll,
    )
    assert first["userErrors"] == [], first
    number = first["person"]["socialSecurityNumber"]
    assert number and first["socialSecurityCard"]["status"] == "PENDING_PRODUCTION"
    again = await _as(
        hub,
        estate,
        CallerRole.SOCIAL_INSURANCE_AGENCY,
        "insurance-enrollment",
        "enrollInInsurance",
        ENROLLED,
        enroll,
    )
    assert again == first
    unkeyed = await _as(
        hub,
        estate,
        CallerRole.SOCIAL_INSURANCE_AGENCY,
        "insurance-enrollment",
        "enrollInInsurance",
        ENROLLED,
        {**enroll, "idempotencyKey": None},
    )
    assert (
        unkeyed["person"]["socialSecurityNumber"] == number
    )  # enrolled already: the existing number answers
    si = estate.source_urls[Agency.SOCIAL_INSURANCE]
    [insured] = await rows(
        si, f"""SELECT "AAC001", "AAC006", "AAC161", "AAE135" FROM "AC01" WHERE "AAC002" = '{number}'"""
    )
    assert insured.AAE135 == passport.HZHM and len(insured.AAC161) == 3 and insured.AAC006 > 19000101
    participations = await rows(
        si, f"""SELECT "AAE140", "AAC008", "AAE031" FROM "AC02" WHERE "AAC001" = {insured.AAC001}"""
    )
    assert sorted(p.AAE140 for p in participations) == ["110", "210", "310", "410", "510"]
    assert {(p.AAC008, p.AAE031) for p in participations} == {("1", None)}
    card = first["socialSecurityCard"]["number"]
    assert (
        await rows(
            estate.source_urls[Agency.CARD_SERVICE],
            f"""SELECT count(*) AS n FROM "SBK_KXX" WHERE "SHBZHM" = '{number}'""",
        )
    )[0].n == 1
    used = await _as(
        hub,
        estate,
        CallerRole.CARD_SERVICE,
        "card-administration",
        "activateSocialSecurityCard",
        "socialSecurityCard { status carriesWorkPermit workPermitNumber }",
        {"cardNumber": card},
    )
    assert used["socialSecurityCard"] == {
        "status": "IN_USE",
        "carriesWorkPermit": True,
        "workPermitNumber": candidate.XKZH,
    }


async def test_an_e_card_is_registered_only_for_the_real_name_and_person(
    hub: httpx.AsyncClient, estate: Settings
) -> None:
    signed = await rows(
        estate.source_urls[Agency.CARD_SERVICE], """SELECT "SHBZHM" FROM "SBK_DZK" WHERE "QFZT" = '1'"""
    )
    insured = await rows(
        estate.source_urls[Agency.SOCIAL_INSURANCE],
        'SELECT "AAC002", "AAC003" FROM "AC01" WHERE "AAC002" IS NOT NULL ORDER BY "AAC001"',
    )
    # Someone enrolled without a signed e-card: a second one would be refused (one per person).
    number, name = next((r.AAC002, r.AAC003) for r in insured if r.AAC002 not in {s.SHBZHM for s in signed})
    given, _, surname = name.rpartition(" ")
    register = {
        "name": {"surname": surname.upper(), "givenNames": given},  # other case and order still match
        "identifier": {"socialSecurityNumber": number},
        "verification": {
            "method": "FACE",
            "attestation": PROVIDER.attest(number, "FACE-1"),
            "reference": "FACE-1",
        },
    }
    selection = "electronicCard { id status serviceLevel } activationCode"
    failed = await _as(
        hub,
        estate,
        CallerRole.CARD_SERVICE,
        "electronic-card-registration",
        "registerElectronicCard",
        selection,
        {
            **register,
            "verification": {
                **register["verification"],
                "attestation": PROVIDER.attest(number, "FACE-1", passed=False),
            },
        },
    )
    assert [(e["code"], e["field"]) for e in failed["userErrors"]] == [
        ("VERIFICATION_FAILED", ["input", "verification", "attestation"])
    ]
    impostor = await _as(
        hub,
        estate,
        CallerRole.CARD_SERVICE,
        "electronic-card-registration",
        "registerElectronicCard",
        selection,
        {**register, "name": {"surname": "Nobody", "givenNames": "Else"}},
    )
    assert [(e["code"], e["field"]) for e in impostor["userErrors"]] == [
        ("VERIFICATION_FAILED", ["input", "name"])
    ]
    registered = await _as(
        hub,
        estate,
        CallerRole.CARD_SERVICE,
        "electronic-card-registration",
        "registerElectronicCard",
        selection,
        register,
    )
    assert registered["userErrors"] == [] and registered["electronicCard"]["status"] == "SIGNED"
    token = await activate(
        hub, registered["activationCode"], register["name"], await _permit_number_of(estate, number)
    )
    # The client's default headers declare the authority's purpose; a cardholder declares none.
    cardholder = {"Authorization": f"Bearer {token}", "X-Purpose": ""}
    me = await graphql(hub, "{ me { socialSecurityNumber } }", headers=cardholder)
    assert me["data"]["me"]["socialSecurityNumber"] == number


async def _permit_number_of(estate: Settings, social_security_number: str) -> str:
    """The permit number of the person the hub knows by this social security number."""
    found = await rows(
        estate.store_url,
        "SELECT p.value FROM person_identifier p JOIN person_identifier s ON s.person_id = p.person_id "
        f"WHERE p.kind = 'WORK_PERMIT_NUMBER' AND s.kind = 'SOCIAL_SECURITY_NUMBER' AND s.value = '{social_security_number}'",
    )
    value: str = found[0].value
    return value


async def _under_review(hub: httpx.AsyncClient, passport: str) -> dict[str, Any]:
    answer = await mutate(hub, "applyForWorkPermit", application(passport))
    permit: dict[str, Any] = answer["workPermit"]
    return permit


async def test_a_z_visa_needs_a_letter_of_a_notice_issued_or_valid_permit(
    hub: httpx.AsyncClient, estate: Settings
) -> None:
    wp = estate.source_urls[Agency.WORK_PERMIT_SYSTEM]
    cancelled = await rows(
        wp,
        """SELECT x."TZSBH", s."HZHM", s."GJ" FROM "WP_XKZ" x JOIN "WP_SQR" s ON s."SQRID" = x."SQRID" WHERE x."ZT" = '40' AND x."TZSBH" <> '' LIMIT 1""",
    )
    letter = cancelled[0]
    answer = await _as(
        hub,
        estate,
        CallerRole.VISA_AUTHORITY,
        "visa-application",
        "issueZVisa",
        "visa { number }",
        {
            "passport": {"number": letter.HZHM, "nationality": letter.GJ},
            "notificationLetterNumber": letter.TZSBH,
            "validTo": "2026-09-01",
        },
    )
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [
        ("NOT_ELIGIBLE", ["input", "notificationLetterNumber"])
    ]
    unknown = await _as(
        hub,
        estate,
        CallerRole.VISA_AUTHORITY,
        "visa-application",
        "issueZVisa",
        "visa { number }",
        {
            "passport": {"number": letter.HZHM, "nationality": letter.GJ},
            "notificationLetterNumber": "TZ20260000000",
            "validTo": "2026-09-01",
        },
    )
    assert [(e["code"], e["field"]) for e in unknown["userErrors"]] == [
        ("NOT_FOUND", ["input", "notificationLetterNumber"])
    ]


async def test_enrollment_rules(hub: httpx.AsyncClient, estate: Settings) -> None:
    permit = await _under_review(hub, "C0300001")
    base = {
        "workPermitNumber": permit["number"],
        "evidence": {"notificationLetterNumber": "TZ20260000001"},
        "employerCreditCode": CREDIT_CODE,
        "insuringDistrict": "110105",
    }
    not_valid = await _as(
        hub,
        estate,
        CallerRole.SOCIAL_INSURANCE_AGENCY,
        "insurance-enrollment",
        "enrollInInsurance",
        ENROLLED,
        base,
    )
    assert [(e["code"], e["field"]) for e in not_valid["userErrors"]] == [
        ("NOT_ELIGIBLE", ["input", "workPermitNumber"])
    ]
    valid = await _valid_with_cards(estate)
    employer = (
        await rows(
            estate.source_urls[Agency.WORK_PERMIT_SYSTEM],
            f"""SELECT "TYSHXYDM" FROM "WP_XKZ" WHERE "XKZH" = '{valid.XKZH}' AND "ZT" = '30'""",
        )
    )[0].TYSHXYDM
    wrong_letter = await _as(
        hub,
        estate,
        CallerRole.SOCIAL_INSURANCE_AGENCY,
        "insurance-enrollment",
        "enrollInInsurance",
        ENROLLED,
        {**base, "workPermitNumber": valid.XKZH, "employerCreditCode": employer},
    )
    assert [(e["code"], e["field"]) for e in wrong_letter["userErrors"]] == [
        ("VERIFICATION_FAILED", ["input", "evidence", "notificationLetterNumber"])
    ]
    body = await graphql(
        hub,
        _gql_mutation("enrollInInsurance", ENROLLED),
        {"input": {**base, "workPermitNumber": valid.XKZH, "employerCreditCode": employer}},
        headers=caller_headers(estate, CallerRole.EMPLOYER, "employment", employer=CREDIT_CODE),
    )
    # The token is bound to another employer's credit code.
    other_employer = body["data"]["enrollInInsurance"]
    assert [(e["code"], e["field"]) for e in other_employer["userErrors"]] == [
        ("FORBIDDEN", ["input", "employerCreditCode"])
    ]


async def test_residence_permit_periods(hub: httpx.AsyncClient, estate: Settings) -> None:
    passport = {"number": "C0300002", "nationality": "DEU"}
    short = application(passport["number"], validTo=(AS_OF + timedelta(days=60)).isoformat())
    permit = (await mutate(hub, "applyForWorkPermit", short))["workPermit"]
    await mutate(hub, "issueNotificationLetter", {"workPermitId": permit["id"]})
    letter = (
        await rows(
            estate.source_urls[Agency.WORK_PERMIT_SYSTEM],
            f"""SELECT "TZSBH" FROM "WP_XKZ" WHERE "XKZH" = '{permit["number"]}'""",
        )
    )[0].TZSBH
    visa = await _as(
        hub,
        estate,
        CallerRole.VISA_AUTHORITY,
        "visa-application",
        "issueZVisa",
        "visa { number }",
        {"passport": passport, "notificationLetterNumber": letter, "validTo": "2026-08-01"},
    )
    await _as(
        hub,
        estate,
        CallerRole.EXIT_ENTRY,
        "entry-control",
        "recordEntry",
        "entry { port }",
        {
            "passport": passport,
            "visaNumber": visa["visa"]["number"],
            "enteredOn": AS_OF.isoformat(),
            "port": "PEK",
        },
    )
    ending_soon = await _as(
        hub,
        estate,
        CallerRole.EXIT_ENTRY,
        "residence-application",
        "applyForResidencePermit",
        "residencePermit { number }",
        {
            "passport": passport,
            "evidence": {"notificationLetterNumber": letter},
            "issuingOffice": "Dongcheng",
            "validTo": (AS_OF + timedelta(days=55)).isoformat(),
        },
    )
    assert [(e["code"], e["field"]) for e in ending_soon["userErrors"]] == [
        ("NOT_ELIGIBLE", ["input", "validTo"])
    ]
    seeded = await rows(
        estate.source_urls[Agency.EXIT_ENTRY],
        """SELECT "JLXKZH", "YXQZ" FROM "CRJ_JLXK" WHERE "ZT" = 'Y' AND "YXQZ" >= '2026/06/15' AND "YXQZ" < '2026/07/15' LIMIT 1""",
    )
    if seeded:
        late = await _as(
            hub,
            estate,
            CallerRole.EXIT_ENTRY,
            "residence-application",
            "extendResidencePermit",
            "residencePermit { number }",
            {"residencePermitNumber": seeded[0].JLXKZH, "validTo": "2027-01-01"},
        )
        assert [(e["code"], e["field"]) for e in late["userErrors"]] == [
            ("NOT_ELIGIBLE", ["input", "residencePermitNumber"])
        ]


async def test_card_and_e_card_rules(hub: httpx.AsyncClient, estate: Settings) -> None:
    in_use = (
        await rows(
            estate.source_urls[Agency.CARD_SERVICE],
            """SELECT "KH" FROM "SBK_KXX" WHERE "KZT" = '1' LIMIT 1""",
        )
    )[0].KH
    again = await _as(
        hub,
        estate,
        CallerRole.CARD_SERVICE,
        "card-administration",
        "activateSocialSecurityCard",
        "socialSecurityCard { status }",
        {"cardNumber": in_use},
    )
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [
        ("NOT_ELIGIBLE", ["input", "cardNumber"])
    ]
    missing = await _as(
        hub,
        estate,
        CallerRole.CARD_SERVICE,
        "card-administration",
        "activateSocialSecurityCard",
        "socialSecurityCard { status }",
        {"cardNumber": "Z99999999"},
    )
    assert [(e["code"], e["field"]) for e in missing["userErrors"]] == [
        ("NOT_FOUND", ["input", "cardNumber"])
    ]
    nobody = await _as(
        hub,
        estate,
        CallerRole.CARD_SERVICE,
        "electronic-card-registration",
        "registerElectronicCard",
        "electronicCard { id }",
        {
            "name": {"surname": "X"},
            "identifier": {"workPermitNumber": "110000209900000000"},
            "verification": {
                "method": "BANK",
                "attestation": PROVIDER.attest("110000209900000000", "B-1", "BANK"),
                "reference": "B-1",
            },
        },
    )
    assert [(e["code"], e["field"]) for e in nobody["userErrors"]] == [
        ("NOT_FOUND", ["input", "identifier", "workPermitNumber"])
    ]


async def test_concurrent_different_applications_each_get_their_own_numbers(
    hub: httpx.AsyncClient, estate: Settings
) -> None:
    answers = await asyncio.gather(
        *(mutate(hub, "applyForWorkPermit", application(f"C04000{i:02d}")) for i in range(6))
    )
    assert all(a["userErrors"] == [] for a in answers)
    assert len({a["workPermit"]["number"] for a in answers}) == 6
    assert len({a["workPermit"]["id"] for a in answers}) == 6
