"""Permit QR codes and signed permit documents: signed with keys of their own, published at
/.well-known/jwks.json and verified offline with them (PyJWT and the published JWK), verified
online by `verifyWorkPermit`, never accepted as a login, and downloaded by the cardholder as
an SVG image or a signed document, each download audited."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from access.qr import DOCUMENT_KEY, DOCUMENT_TYPE, QR_KEY, QR_TYPE, PermitKeys
from access.tokens import ISSUER, TOKEN_KEY, InvalidToken, TokenAuthority
from audit.log import AUDIT_RECORD
from domain.records import CallerRole
from keys.files import KEY_DIRECTORY, load_or_create_key
from opaque.ids import GlobalIds
from opaque.sealing import sealer
from settings import sqlite_url
from tests.conftest import Estate, global_ids, graphql, person_id_of, serve

VERIFY = "query($q: String!) { verifyWorkPermit(input: {qrCode: $q}) { valid failure permitNumber holderName employerName validTo channel } }"
MY_PERMIT = (
    "{ me { id name { full } workPermit { number status validTo employer { name creditCode } qrCode } } }"
)
HOLDERS = "query($status: WorkPermitStatus!) { persons(first: 100, filter: {permitStatus: $status}) { edges { node { id name { full } workPermit { number status category validFrom validTo employer { name creditCode } } } } } }"
JWKS = "/.well-known/jwks.json"
QR_IMAGE = "/cardholder/permit-qr.svg"
DOCUMENT = "/cardholder/permit.jws"


@dataclass(frozen=True)
class Holder:
    id: str  # the person's global id
    key: int  # the person id
    name: str
    permit: dict[str, Any]


@dataclass(frozen=True)
class Holders:
    valid: list[Holder]
    expired: Holder
    not_valid: Holder  # under review, notice issued, cancelled or rejected


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hub_keys(estate: Estate) -> PermitKeys:
    """The hub's own permit keys, loaded from its data directory as the hub loads them."""
    directory = estate.settings.data_dir
    return PermitKeys(
        load_or_create_key(directory, QR_KEY),
        load_or_create_key(directory, DOCUMENT_KEY),
        GlobalIds(sealer(directory)),
    )


def headers(estate: Estate, role: CallerRole, purpose: str | None = None, **bound: Any) -> dict[str, str]:
    """A caller's headers; its own subject, so this module's calls count against no other's rate."""
    authority = TokenAuthority(load_or_create_key(estate.settings.data_dir, TOKEN_KEY))
    token = authority.issue(
        subject=f"qr-test-{role.value.lower()}", role=role, purposes=(purpose,) if purpose else (), **bound
    )
    found = {"Authorization": f"Bearer {token}"}
    if purpose:
        found["X-Purpose"] = purpose
    return found


def cardholder(estate: Estate, holder: Holder) -> dict[str, str]:
    return headers(estate, CallerRole.CARDHOLDER, person_id=holder.key)


def exit_entry(estate: Estate) -> dict[str, str]:
    return headers(estate, CallerRole.EXIT_ENTRY, "residence-application")


@pytest.fixture(scope="module")
async def holders(client: httpx.AsyncClient, estate: Estate) -> Holders:
    found: dict[str, list[Holder]] = {}
    for status in ("VALID", "EXPIRED", "CANCELLED", "UNDER_REVIEW", "NOTICE_ISSUED", "REJECTED"):
        body = await graphql(client, HOLDERS, {"status": status})
        assert "errors" not in body, body["errors"]
        found[status] = [
            Holder(
                node["id"],
                person_id_of(estate.settings, node["id"]),
                node["name"]["full"],
                node["workPermit"],
            )
            for node in (edge["node"] for edge in body["data"]["persons"]["edges"])
        ]
    not_valid = [h for s in ("CANCELLED", "UNDER_REVIEW", "NOTICE_ISSUED", "REJECTED") for h in found[s]]
    assert len(found["VALID"]) >= 2 and found["EXPIRED"] and not_valid
    return Holders(found["VALID"], found["EXPIRED"][0], not_valid[0])


async def my_permit(http: httpx.AsyncClient, estate: Estate, holder: Holder) -> dict[str, Any]:
    body = await graphql(http, MY_PERMIT, headers=cardholder(estate, holder))
    assert "errors" not in body, body.get("errors")
    me: dict[str, Any] = body["data"]["me"]
    assert me["id"] == holder.id
    return me


async def verify(http: httpx.AsyncClient, estate: Estate, qr_code: str) -> dict[str, Any]:
    body = await graphql(http, VERIFY, {"q": qr_code}, headers=exit_entry(estate))
    assert "errors" not in body, body.get("errors")
    outcome: dict[str, Any] = body["data"]["verifyWorkPermit"]
    return outcome


async def published(http: httpx.AsyncClient) -> dict[str | None, jwt.PyJWK]:
    """The published keys by kid, fetched without a token."""
    response = await http.get(JWKS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    jwks = response.json()
    assert all("d" not in key for key in jwks["keys"]), "no private key material is published"
    return {key.key_id: key for key in jwt.PyJWKSet.from_dict(jwks).keys}


async def audit_records(url: str, request_id: str) -> list[dict[str, Any]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(select(AUDIT_RECORD).where(AUDIT_RECORD.c.request_id == request_id))
            ).all()
    finally:
        await engine.dispose()
    return [dict(row._mapping) for row in rows]


# --- the QR code and its offline verification -----------------------------------------------


async def test_a_valid_permits_qr_code_verifies_offline_with_the_published_key(
    policy_client: httpx.AsyncClient, estate: Estate, holders: Holders
) -> None:
    holder = holders.valid[0]
    me = await my_permit(policy_client, estate, holder)
    qr_code = me["workPermit"]["qrCode"]
    assert qr_code and qr_code.count(".") == 2

    header = jwt.get_unverified_header(qr_code)
    assert header["alg"] == "EdDSA" and header["typ"] == QR_TYPE
    keys = await published(policy_client)
    assert header["kid"] in keys and keys[header["kid"]].key_type == "OKP"
    claims = jwt.decode(
        qr_code,
        keys[header["kid"]].key,
        algorithms=["EdDSA"],
        issuer=ISSUER,
        options={"require": ["exp", "iat"]},
    )
    assert claims["permit"] == holder.permit["number"] == me["workPermit"]["number"]
    assert claims["sub"] == holder.id == global_ids(estate.settings).encode("Person", holder.key)
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert abs(claims["iat"] - datetime.now(UTC).timestamp()) < 120

    # The document key verifies no QR code: each published key has one use.
    document_kid = next(kid for kid in keys if kid != header["kid"])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(qr_code, keys[document_kid].key, algorithms=["EdDSA"], issuer=ISSUER)


async def test_a_valid_permits_qr_code_verifies_online(
    policy_client: httpx.AsyncClient, estate: Estate, holders: Holders
) -> None:
    holder = holders.valid[0]
    qr_code = (await my_permit(policy_client, estate, holder))["workPermit"]["qrCode"]
    expected = {
        "valid": True,
        "failure": None,
        "permitNumber": holder.permit["number"],
        "holderName": holder.name,
        "employerName": holder.permit["employer"]["name"],
        "validTo": holder.permit["validTo"],
        "channel": "QR_CODE",
    }
    assert await verify(policy_client, estate, qr_code) == expected
    # Every role DOMAIN.md names for verifyWorkPermit may verify a QR code.
    for role, purpose in [
        (CallerRole.SOCIAL_INSURANCE_AGENCY, "insurance-enrollment"),
        (CallerRole.VISA_AUTHORITY, "visa-application"),
    ]:
        body = await graphql(policy_client, VERIFY, {"q": qr_code}, headers=headers(estate, role, purpose))
        assert body["data"]["verifyWorkPermit"] == expected, body


async def test_qr_code_is_null_without_error_for_a_permit_that_is_not_valid(
    client: httpx.AsyncClient, holders: Holders
) -> None:
    for holder in (holders.expired, holders.not_valid):
        body = await graphql(
            client,
            "query($n: String!) { workPermit(number: $n) { status qrCode } }",
            {"n": holder.permit["number"]},
        )
        assert body == {"data": {"workPermit": {"status": holder.permit["status"], "qrCode": None}}}


# --- what verifyWorkPermit refuses ----------------------------------------------------------


def _tampered(qr_code: str, **claims: Any) -> str:
    """The QR code with its claims edited and its signature kept."""
    header, payload, signature = qr_code.split(".")
    edited = {**json.loads(_unb64(payload)), **claims}
    return f"{header}.{_b64(json.dumps(edited).encode())}.{signature}"


def _claims(holder: Holder, **overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    return {
        "iss": ISSUER,
        "sub": holder.id,
        "permit": holder.permit["number"],
        "iat": now,
        "exp": now + 3600,
        **overrides,
    }


def _forged_with_a_foreign_key(estate: Estate, holder: Holder) -> str:
    kid = hub_keys(estate).qr.kid  # claims to be the hub's key
    return jwt.encode(
        _claims(holder), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid, "typ": QR_TYPE}
    )


def _unsigned(estate: Estate, holder: Holder) -> str:
    header = {"alg": "none", "kid": hub_keys(estate).qr.kid, "typ": QR_TYPE}
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims(holder)).encode())}."


def _hmac_with_the_public_key(estate: Estate, holder: Holder) -> str:
    """The algorithm-confusion forgery: HS256 keyed with the published public key."""
    public = hub_keys(estate).qr.public.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    header = {"alg": "HS256", "kid": hub_keys(estate).qr.kid, "typ": QR_TYPE}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims(holder)).encode())}"
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _client_token(estate: Estate, holder: Holder) -> str:
    return headers(estate, CallerRole.CARDHOLDER, person_id=holder.key)["Authorization"].removeprefix(
        "Bearer "
    )


def _signed_with_the_document_key(estate: Estate, holder: Holder) -> str:
    return hub_keys(estate).document.sign(_claims(holder), QR_TYPE)


def _document_key_under_the_qr_kid(estate: Estate, holder: Holder) -> str:
    keys = hub_keys(estate)
    return jwt.encode(
        _claims(holder),
        keys.document.private,
        algorithm="EdDSA",
        headers={"kid": keys.qr.kid, "typ": QR_TYPE},
    )


def _naming_no_person(estate: Estate, holder: Holder) -> str:
    """Signed with the hub's own QR key, yet naming an employer where a person belongs."""
    return hub_keys(estate).qr.sign(
        _claims(holder, sub=global_ids(estate.settings).encode("Employer", "91110000600037341L")), QR_TYPE
    )


FORGERIES = {
    "a foreign key under the hub's kid": _forged_with_a_foreign_key,
    "alg none": _unsigned,
    "HS256 keyed with the public key": _hmac_with_the_public_key,
    "a client token": _client_token,
    "the document key": _signed_with_the_document_key,
    "the document key under the QR kid": _document_key_under_the_qr_kid,
    "the hub's key naming no person": _naming_no_person,
    "not a JWS": lambda _estate, _holder: "not-a-qr-code",
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
async def test_a_forged_qr_code_is_signature_invalid(
    policy_client: httpx.AsyncClient, estate: Estate, holders: Holders, forge: Any
) -> None:
    outcome = await verify(policy_client, estate, forge(estate, holders.valid[0]))
    assert outcome == {
        "valid": False,
        "failure": "SIGNATURE_INVALID",
        "permitNumber": None,
        "holderName": None,
        "employerName": None,
        "validTo": None,
        "channel": "QR_CODE",
    }


async def test_a_tampered_qr_code_is_signature_invalid(
    policy_client: httpx.AsyncClient, estate: Estate, holders: Holders
) -> None:
    genuine = (await my_permit(policy_client, estate, holders.valid[0]))["workPermit"]["qrCode"]
    other = holders.valid[1]
    for tampered in (
        _tampered(genuine, permit=other.permit["number"], sub=other.id),
        _tampered(genuine, exp=int(datetime.now(UTC).timestamp()) + 365 * 86400),
        genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBB"),
    ):
        outcome = await verify(policy_client, estate, tampered)
        assert (outcome["valid"], outcome["failure"], outcome["permitNumber"]) == (
            False,
            "SIGNATURE_INVALID",
            None,
        )


async def test_an_expired_qr_code_and_an_expired_permit_are_expired(
    policy_client: httpx.AsyncClient, estate: Estate, holders: Holders
) -> None:
    keys = hub_keys(estate)
    holder = holders.valid[0]
    yesterday = datetime.now(UTC) - timedelta(hours=24, minutes=1)
    old = keys.issue_qr(holder.permit["number"], holder.id, now=yesterday)
    outcome = await verify(policy_client, estate, old)
    assert (outcome["valid"], outcome["failure"], outcome["channel"]) == (False, "EXPIRED", "QR_CODE")
    assert outcome["permitNumber"] is None  # nothing of an expired code is looked up

    # A fresh code for a permit that has expired since: the permit's status decides.
    expired = holders.expired
    outcome = await verify(policy_client, estate, keys.issue_qr(expired.permit["number"], expired.id))
    assert outcome["failure"] == "EXPIRED" and outcome["valid"] is False
    assert outcome["permitNumber"] == expired.permit["number"] and outcome["holderName"] == expired.name


async def test_a_permit_no_longer_valid_and_an_unknown_permit(
    policy_client: httpx.AsyncClient, estate: Estate, holders: Holders
) -> None:
    keys = hub_keys(estate)
    stale = holders.not_valid
    outcome = await verify(policy_client, estate, keys.issue_qr(stale.permit["number"], stale.id))
    assert (outcome["valid"], outcome["failure"], outcome["permitNumber"]) == (
        False,
        "NOT_VALID",
        stale.permit["number"],
    )
    outcome = await verify(policy_client, estate, keys.issue_qr("110105202400000000", stale.id))
    assert (outcome["valid"], outcome["failure"]) == (False, "NOT_FOUND")


async def test_a_qr_code_naming_another_person_is_a_holder_mismatch(
    policy_client: httpx.AsyncClient, estate: Estate, holders: Holders
) -> None:
    permit_holder, other = holders.valid[0], holders.valid[1]
    crafted = hub_keys(estate).issue_qr(permit_holder.permit["number"], other.id)
    outcome = await verify(policy_client, estate, crafted)
    assert (outcome["valid"], outcome["failure"], outcome["permitNumber"], outcome["holderName"]) == (
        False,
        "HOLDER_MISMATCH",
        permit_holder.permit["number"],
        None,
    )


# --- a QR code is never a login -------------------------------------------------------------


async def test_a_qr_code_is_refused_as_a_bearer_token(
    policy_client: httpx.AsyncClient, estate: Estate, holders: Holders
) -> None:
    qr_code = (await my_permit(policy_client, estate, holders.valid[0]))["workPermit"]["qrCode"]
    with pytest.raises(InvalidToken):
        TokenAuthority(load_or_create_key(estate.settings.data_dir, TOKEN_KEY)).verify(qr_code)
    bearer = {"Authorization": f"Bearer {qr_code}"}
    response = await policy_client.post("/graphql", json={"query": "{ me { id } }"}, headers=bearer)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    for path in (QR_IMAGE, DOCUMENT):
        response = await policy_client.get(path, headers=bearer)
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}


def test_the_qr_and_document_keys_are_their_own_owner_only_files(estate: Estate) -> None:
    directory: Path = estate.settings.data_dir / KEY_DIRECTORY
    files = [directory / f"{name}.pem" for name in (QR_KEY, DOCUMENT_KEY, TOKEN_KEY)]
    assert len({path.read_bytes() for path in files}) == 3
    for path in files[:2]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- the cardholder's downloads -------------------------------------------------------------


async def test_the_cardholder_downloads_the_qr_code_as_an_svg_image(
    policy_client: httpx.AsyncClient, estate: Estate, holders: Holders
) -> None:
    holder = holders.valid[0]
    response = await policy_client.get(QR_IMAGE, headers=cardholder(estate, holder))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cache-control"] == "no-store"
    assert response.text.startswith(("<?xml", "<svg"))
    assert 'class="segno"' in response.text and "<path" in response.text

    [record] = await audit_records(estate.settings.audit_url, response.headers["x-request-id"])
    assert (record["person_id"], record["role"], record["purpose"], json.loads(record["fields"])) == (
        holder.key,
        "CARDHOLDER",
        None,
        ["WorkPermit.qrCode"],
    )


async def test_the_downloads_refuse_other_callers(
    policy_client: httpx.AsyncClient, estate: Estate, holders: Holders
) -> None:
    for path in (QR_IMAGE, DOCUMENT):
        missing = await policy_client.get(path)
        assert missing.status_code == 401
        body = missing.json()  # the gate's JSON error shape, as for /graphql
        assert body["data"] is None and body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
        assert missing.headers["x-request-id"]
        bad = await policy_client.get(path, headers={"Authorization": "Bearer not.a.token"})
        assert bad.status_code == 401
        for agency in (
            exit_entry(estate),
            headers(estate, CallerRole.WORK_PERMIT_AUTHORITY, "permit-administration"),
        ):
            refused = await policy_client.get(path, headers=agency)
            assert refused.status_code == 403
            assert refused.json()["errors"][0]["extensions"] == {"code": "FORBIDDEN"}
            assert await audit_records(estate.settings.audit_url, refused.headers["x-request-id"]) == []


async def test_no_qr_image_for_a_permit_that_is_not_valid(
    policy_client: httpx.AsyncClient, estate: Estate, holders: Holders
) -> None:
    response = await policy_client.get(QR_IMAGE, headers=cardholder(estate, holders.expired))
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"] == {"code": "NOT_FOUND"}
    # "No valid permit" is about the person too: recorded.
    [record] = await audit_records(estate.settings.audit_url, response.headers["x-request-id"])
    assert record["person_id"] == holders.expired.key


async def test_the_signed_document_verifies_with_the_published_key_and_names_the_permit(
    policy_client: httpx.AsyncClient, estate: Estate, holders: Holders
) -> None:
    for holder in (holders.valid[0], holders.expired):
        response = await policy_client.get(DOCUMENT, headers=cardholder(estate, holder))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/jose"
        signed = response.text
        header = jwt.get_unverified_header(signed)
        assert header["typ"] == DOCUMENT_TYPE
        keys = await published(policy_client)
        claims = jwt.decode(signed, keys[header["kid"]].key, algorithms=["EdDSA"], issuer=ISSUER)
        permit = holder.permit
        assert {k: claims[k] for k in ("sub", "number", "status", "category", "validFrom", "validTo")} == {
            "sub": holder.id,
            "number": permit["number"],
            "status": permit["status"],
            "category": permit["category"],
            "validFrom": permit["validFrom"],
            "validTo": permit["validTo"],
        }
        assert claims["employer"] == permit["employer"]
        assert claims["holderName"] == holder.name
        assert claims["asOf"] == estate.settings.today().isoformat()
        assert datetime.fromisoformat(claims["issuedAt"]).utcoffset() == timedelta(hours=8)

        # A document is no QR code, though anyone can check its signature.
        assert (await verify(policy_client, estate, signed))["failure"] == "SIGNATURE_INVALID"
        [record] = await audit_records(estate.settings.audit_url, response.headers["x-request-id"])
        assert (record["person_id"], json.loads(record["fields"])) == (holder.key, ["WorkPermit.document"])


async def test_reading_the_qr_code_in_the_graph_is_audited(
    policy_client: httpx.AsyncClient, estate: Estate, holders: Holders
) -> None:
    holder = holders.valid[1]
    response = await policy_client.post(
        "/graphql", json={"query": "{ me { workPermit { qrCode } } }"}, headers=cardholder(estate, holder)
    )
    assert response.json()["data"]["me"]["workPermit"]["qrCode"]
    [record] = await audit_records(estate.settings.audit_url, response.headers["x-request-id"])
    assert record["person_id"] == holder.key and "WorkPermit.qrCode" in json.loads(record["fields"])


async def test_a_failing_audit_write_withholds_the_downloads(
    estate: Estate, holders: Holders, tmp_path: Path
) -> None:
    url = sqlite_url(tmp_path / "audit.sqlite")
    holder = holders.valid[0]
    async with serve(replace(estate.settings, audit_url=url)) as http:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("DROP TABLE audit_record"))
        finally:
            await engine.dispose()
        for path in (QR_IMAGE, DOCUMENT):
            response = await http.get(path, headers=cardholder(estate, holder))
            assert response.status_code == 503
            assert response.json()["errors"][0]["extensions"] == {"code": "AUDIT_UNAVAILABLE"}
            assert "<svg" not in response.text and holder.permit["number"] not in response.text
        # The published keys name no one: they need no record and still answer.
        assert (await http.get(JWKS)).status_code == 200
