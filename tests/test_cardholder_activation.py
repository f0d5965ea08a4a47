"""Credentials reach only their holder (issue 8, finding 4): e-card registration proves the
real-person check by the provider's signed attestation, hands the card service a one-time
activation code (never a token that reads as the person), and only the person's app, knowing
the person's name and permit number, turns the code into a cardholder token, once."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from access.attestation import AttestationRejected, Verifiers
from access.issuing import demo_attestation, demo_verifier_jwks
from domain.records import Agency, CallerRole
from settings import Settings
from tests.conftest import caller_headers, fresh_estate, graphql, serve
from tests.registration import PROVIDER, Provider, activate, exchange, trusting

REGISTER = (
    "mutation($i: RegisterElectronicCardInput!) { registerElectronicCard(input: $i) "
    "{ electronicCard { id status } activationCode userErrors { code message field } } }"
)
CARD_SERVICE = (CallerRole.CARD_SERVICE, "electronic-card-registration")


async def _rows(url: str, sql: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


@dataclass
class Insured:
    social_security_number: str
    permit_number: str
    name: dict[str, str]


async def _insured_people(settings: Settings) -> list[Insured]:
    """Persons with a social security number and a permit, and no e-card yet."""
    found = await _rows(
        settings.store_url,
        "SELECT s.value AS ssn, p.value AS permit FROM person_identifier s "
        "JOIN person_identifier p ON p.person_id = s.person_id AND p.kind = 'WORK_PERMIT_NUMBER' "
        "WHERE s.kind = 'SOCIAL_SECURITY_NUMBER' AND s.person_id NOT IN "
        "(SELECT person_id FROM identity_link WHERE record_type = 'SBK_DZK') ORDER BY s.person_id",
    )
    names = {
        r.AAC002: r.AAC003
        for r in await _rows(
            settings.source_urls[Agency.SOCIAL_INSURANCE], 'SELECT "AAC002", "AAC003" FROM "AC01"'
        )
    }
    people = []
    for row in found:
        given, _, surname = names[row.ssn].rpartition(" ")
        people.append(Insured(row.ssn, row.permit, {"surname": surname, "givenNames": given}))
    return people


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Settings, list[Insured]]]:
    async with fresh_estate("sqlite", tmp_path_factory.mktemp("activation"), persons=120, seed=9) as estate:
        settings = trusting(estate.settings)
        people = await _insured_people(settings)
        assert len(people) >= 8, "the estate should hold enough insured persons without an e-card"
        yield settings, people


@pytest.fixture(scope="module")
async def http(world: tuple[Settings, list[Insured]]) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(world[0]) as client:
        yield client


def _registration(person: Insured, reference: str, attestation: str | None = None) -> dict[str, Any]:
    return {
        "name": person.name,
        "identifier": {"socialSecurityNumber": person.social_security_number},
        "verification": {
            "method": "FACE",
            "attestation": attestation or PROVIDER.attest(person.social_security_number, reference),
            "reference": reference,
        },
    }


async def _register(
    http: httpx.AsyncClient, settings: Settings, registration: dict[str, Any]
) -> dict[str, Any]:
    body = await graphql(http, REGISTER, {"i": registration}, headers=caller_headers(settings, *CARD_SERVICE))
    assert "errors" not in body, body["errors"]
    answer: dict[str, Any] = body["data"]["registerElectronicCard"]
    return answer


async def _counts(settings: Settings) -> tuple[int, int]:
    cards = await _rows(settings.source_urls[Agency.CARD_SERVICE], 'SELECT COUNT(*) AS n FROM "SBK_DZK"')
    codes = await _rows(settings.store_url, "SELECT COUNT(*) AS n FROM activation_code")
    return int(cards[0].n), int(codes[0].n)


async def test_registration_hands_the_card_service_a_code_never_a_token(
    http: httpx.AsyncClient, world: tuple[Settings, list[Insured]]
) -> None:
    settings, people = world
    answer = await _register(http, settings, _registration(people[0], "FACE-CODE"))
    assert answer["userErrors"] == [] and answer["electronicCard"]["status"] == "SIGNED"
    code = answer["activationCode"]
    assert code and code.count(".") == 0  # not a JWS: nothing the card service could present
    refused = await http.post(
        "/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": f"Bearer {code}"}
    )
    assert refused.status_code == 401
    fields = await graphql(
        http,
        '{ __type(name: "RegisterElectronicCardPayload") { fields { name } } }',
        headers=caller_headers(settings, *CARD_SERVICE),
    )
    assert {f["name"] for f in fields["data"]["__type"]["fields"]} == {
        "electronicCard",
        "activationCode",
        "userErrors",
    }


def _forgeries(person: Insured) -> dict[str, str]:
    number = person.social_security_number
    stranger = Provider(kid=PROVIDER.kid)  # a key the hub does not trust, under the trusted kid
    public = PROVIDER.key.public_key().public_bytes_raw()
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": PROVIDER.kid}).encode()).rstrip(b"=")
    claims = json.loads(base64.urlsafe_b64decode(PROVIDER.attest(number, "FACE-X").split(".")[1] + "=="))
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    signature = base64.urlsafe_b64encode(hmac.new(public, header + b"." + payload, hashlib.sha256).digest())
    return {
        "another provider's key": stranger.attest(number, "FACE-X"),
        "another check's reference": PROVIDER.attest(number, "FACE-OTHER"),
        "another person": PROVIDER.attest("DEU110101900101010", "FACE-X"),
        "another method": PROVIDER.attest(number, "FACE-X", "BANK"),
        "a failed check": PROVIDER.attest(number, "FACE-X", passed=False),
        "an expired check": PROVIDER.attest(number, "FACE-X", issued=datetime.now(UTC) - timedelta(days=2)),
        "an endless check": PROVIDER.attest(number, "FACE-X", lifetime=timedelta(days=400)),
        "alg none": jwt.encode(claims, "", algorithm="none", headers={"kid": PROVIDER.kid}),  # "": no key
        "HS256 keyed with the public key": (header + b"." + payload + b"." + signature.rstrip(b"=")).decode(),
        "not a JWS": "passed",
    }


async def test_an_attestation_the_provider_did_not_sign_for_this_check_registers_nothing(
    http: httpx.AsyncClient, world: tuple[Settings, list[Insured]]
) -> None:
    settings, people = world
    person = people[1]
    before = await _counts(settings)
    for kind, forged in _forgeries(person).items():
        answer = await _register(http, settings, _registration(person, "FACE-X", forged))
        assert answer["electronicCard"] is None and answer["activationCode"] is None, kind
        assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [
            ("VERIFICATION_FAILED", ["input", "verification", "attestation"])
        ], kind
    assert await _counts(settings) == before


async def test_a_hub_that_trusts_no_provider_registers_nobody(
    world: tuple[Settings, list[Insured]],
) -> None:
    settings, people = world
    async with serve(replace(settings, verifier_jwks=None)) as untrusting:
        answer = await _register(untrusting, settings, _registration(people[2], "FACE-NONE"))
    (error,) = answer["userErrors"]
    assert error["code"] == "VERIFICATION_FAILED" and "HUB_VERIFIER_JWKS" in error["message"]


async def test_the_code_becomes_a_token_once_for_the_named_holder_only(
    http: httpx.AsyncClient, world: tuple[Settings, list[Insured]]
) -> None:
    settings, people = world
    person, other = people[3], people[4]
    code = (await _register(http, settings, _registration(person, "FACE-ONCE")))["activationCode"]
    wrong = [
        ({**person.name, "surname": "Nobody"}, person.permit_number),
        (person.name, other.permit_number),
    ]
    for name, permit in wrong:
        answer = await exchange(http, code, name, permit)
        assert answer["cardholderToken"] is None
        assert [e["code"] for e in answer["userErrors"]] == ["VERIFICATION_FAILED"]
    token = await activate(http, code.lower().replace("-", " "), person.name, person.permit_number)
    me = await graphql(http, "{ me { socialSecurityNumber } }", headers={"Authorization": f"Bearer {token}"})
    assert me["data"]["me"]["socialSecurityNumber"] == person.social_security_number
    again = await exchange(http, code, person.name, person.permit_number)
    assert again["cardholderToken"] is None
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [
        ("NOT_ELIGIBLE", ["input", "activationCode"])
    ]
    unknown = await exchange(http, "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF", person.name, person.permit_number)
    assert [e["code"] for e in unknown["userErrors"]] == ["VERIFICATION_FAILED"]


async def test_five_wrong_tries_end_the_code(
    http: httpx.AsyncClient, world: tuple[Settings, list[Insured]]
) -> None:
    settings, people = world
    person = people[5]
    code = (await _register(http, settings, _registration(person, "FACE-TRIES")))["activationCode"]
    for _ in range(5):
        await exchange(http, code, {"surname": "Wrong"}, person.permit_number)
    late = await exchange(http, code, person.name, person.permit_number)
    assert late["cardholderToken"] is None
    assert [e["code"] for e in late["userErrors"]] == ["NOT_ELIGIBLE"]


async def test_two_exchanges_at_once_make_one_token(
    http: httpx.AsyncClient, world: tuple[Settings, list[Insured]]
) -> None:
    settings, people = world
    person = people[6]
    code = (await _register(http, settings, _registration(person, "FACE-RACE")))["activationCode"]
    answers = await asyncio.gather(
        *(exchange(http, code, person.name, person.permit_number) for _ in range(4))
    )
    assert sum(a["cardholderToken"] is not None for a in answers) == 1


async def test_the_token_names_its_own_client_and_the_audit_names_it(
    http: httpx.AsyncClient, world: tuple[Settings, list[Insured]]
) -> None:
    settings, people = world
    person = people[7]
    code = (await _register(http, settings, _registration(person, "FACE-AUDIT")))["activationCode"]
    token = await activate(http, code, person.name, person.permit_number)
    subject = jwt.decode(token, options={"verify_signature": False})["sub"]
    assert subject.startswith("cardholder-app-")
    assert "card" not in subject.removeprefix("cardholder-app-") and person.permit_number not in subject
    response = await http.post(
        "/graphql",
        json={"query": "{ me { id visas { number } } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    request_id = response.headers["x-request-id"]
    (record,) = await _rows(
        settings.audit_url, f"SELECT client, role FROM audit_record WHERE request_id = '{request_id}'"
    )
    assert (record.client, record.role) == (subject, "CARDHOLDER")


async def test_a_retried_registration_answers_the_same_code(
    http: httpx.AsyncClient, world: tuple[Settings, list[Insured]]
) -> None:
    settings, people = world
    registration = {**_registration(people[8], "FACE-RETRY"), "idempotencyKey": "retry-1"}
    first = await _register(http, settings, registration)
    second = await _register(http, settings, registration)
    assert first["activationCode"] and second == first


async def test_without_a_token_only_the_exchange_is_served(http: httpx.AsyncClient) -> None:
    exchange_only = 'mutation { activateCardholder(input: {activationCode: "X", name: {surname: "X"}, workPermitNumber: "1"}) { __typename } }'
    for query in (
        "{ me { id } }",
        "{ persons { totalCount } }",
        exchange_only.replace(
            "{ __typename }", "{ __typename } registerElectronicCard(input: {}) { __typename }"
        ),
        "mutation { ...F } fragment F on Mutation { activateCardholder(input: {}) { __typename } }",
        "not a document",
    ):
        response = await http.post("/graphql", json={"query": query}, headers={"Authorization": ""})
        assert response.status_code == 401, query
    by_get = await http.get("/graphql", params={"query": exchange_only}, headers={"Authorization": ""})
    assert by_get.status_code == 401
    served = await http.post("/graphql", json={"query": exchange_only}, headers={"Authorization": ""})
    assert served.status_code == 200 and served.json()["data"]["activateCardholder"] == {
        "__typename": "ActivateCardholderPayload"
    }


def test_the_demo_provider_signs_what_a_demo_hub_trusts(tmp_path: Path) -> None:
    """`hub run --demo` trusts the stand-in provider whose attestations `hub attest` signs."""
    trusted = Verifiers.from_setting(demo_verifier_jwks(tmp_path))
    signed = demo_attestation(tmp_path, "dEU110101900101010 ", "FACE-DEMO", "FACE")
    found = trusted.verify(signed, method="FACE", reference="FACE-DEMO", identifier="DEU110101900101010")
    assert found.reference == "FACE-DEMO"
    with pytest.raises(AttestationRejected):
        Verifiers.from_setting(PROVIDER.jwks()).verify(
            signed, method="FACE", reference="FACE-DEMO", identifier="DEU110101900101010"
        )
