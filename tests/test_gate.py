"""The HTTP gate: signed client tokens, declared purposes, the `hub token` command, GraphiQL's
page, the signing key's file permissions, and errors that never leak what went wrong inside."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

import app
import resolvers.query
from access.tokens import ISSUER, TOKEN_KEY, TokenAuthority
from adapters.registry import DEFAULT_AGENCIES
from audit.log import AUDIT_KEY
from domain.records import Agency, CallerRole
from identity.store import HubStore
from keys.files import KEY_DIRECTORY, load_or_create_key
from schema.errors import MASKED_MESSAGE as MASKED
from settings import Settings, sqlite_url
from tests.clock import SAFETY_NET
from tests.conftest import AS_OF, Estate, caller_headers, global_ids, graphql, person_id_of, serve
from tests.servers import uvicorn_serving

ROOT = Path(__file__).resolve().parent.parent
HUB = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
GRANTS = "{ accessGrants { role purpose } }"
VALID_CREDIT_CODE = "91110000600037341L"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _bearer(token: str, purpose: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if purpose:
        headers["X-Purpose"] = purpose
    return headers


def _authority(settings: Settings) -> TokenAuthority:
    return TokenAuthority(load_or_create_key(settings.data_dir, TOKEN_KEY))


def _exit_entry_token(settings: Settings) -> str:
    return _authority(settings).issue(
        subject="desk-7", role=CallerRole.EXIT_ENTRY, purposes=("entry-control",)
    )


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "forger",
        "role": CallerRole.EXIT_ENTRY.value,
        "purposes": ["entry-control"],
        "iat": now,
        "exp": now + 86_400,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _code(body: dict[str, Any]) -> str:
    codes: set[str] = {e["extensions"]["code"] for e in body["errors"]}
    assert len(codes) == 1, body
    return codes.pop()


async def _refused(
    client: httpx.AsyncClient, headers: dict[str, str], status: int, code: str, query: str = GRANTS
) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["data"] is None
    assert _code(body) == code
    return body


# Tokens


async def test_a_good_token_and_purpose_are_admitted(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    response = await policy_client.post(
        "/graphql",
        json={"query": GRANTS},
        headers=_bearer(_exit_entry_token(estate.settings), "entry-control"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["accessGrants"] == {"role": "EXIT_ENTRY", "purpose": "entry-control"}
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token abc.def.ghi",
        "Bearer not-a-token",
        "Bearer a.b.c",
        "Bearer ...",
    ],
    ids=[
        "missing",
        "empty",
        "bearer-alone",
        "bearer-blank",
        "basic",
        "other-scheme",
        "garbage",
        "abc",
        "dots",
    ],
)
async def test_missing_or_malformed_tokens_are_unauthenticated(
    policy_client: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"X-Purpose": "entry-control"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = await _refused(policy_client, headers, 401, "UNAUTHENTICATED")
    assert "Bearer" in body["errors"][0]["message"] or "Unauthenticated" in body["errors"][0]["message"]


async def test_a_token_signed_by_another_key_is_unauthenticated(
    policy_client: httpx.AsyncClient,
) -> None:
    stranger = TokenAuthority(Ed25519PrivateKey.generate())
    token = stranger.issue(subject="desk-7", role=CallerRole.EXIT_ENTRY, purposes=("entry-control",))
    await _refused(policy_client, _bearer(token, "entry-control"), 401, "UNAUTHENTICATED")


async def test_a_token_signed_by_the_hubs_audit_key_is_unauthenticated(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    # Each use has its own key: an audit checkpoint's key does not sign client tokens.
    other_use = TokenAuthority(load_or_create_key(estate.settings.data_dir, AUDIT_KEY))
    token = other_use.issue(subject="desk-7", role=CallerRole.EXIT_ENTRY, purposes=("entry-control",))
    await _refused(policy_client, _bearer(token, "entry-control"), 401, "UNAUTHENTICATED")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_an_unsigned_alg_none_token_is_unauthenticated(
    policy_client: httpx.AsyncClient, alg: str
) -> None:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        await _refused(policy_client, _bearer(token, "entry-control"), 401, "UNAUTHENTICATED")


async def test_an_hmac_token_keyed_with_the_public_key_is_unauthenticated(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    # The classic algorithm confusion: HS256 with the (public) verification key as the secret.
    public = (
        load_or_create_key(estate.settings.data_dir, TOKEN_KEY)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    signature = _b64(hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    await _refused(
        policy_client, _bearer(f"{header}.{payload}.{signature}", "entry-control"), 401, "UNAUTHENTICATED"
    )


@pytest.mark.parametrize(
    ("edit", "purpose"),
    [
        (
            {"role": CallerRole.WORK_PERMIT_AUTHORITY.value, "purposes": ["permit-administration"]},
            "permit-administration",
        ),
        ({"role": CallerRole.REPORTING.value}, None),
        ({"purposes": ["entry-control", "investigation"]}, "investigation"),
        ({"sub": "someone-else"}, "entry-control"),
        ({"exp": 4_102_444_800}, "entry-control"),
    ],
    ids=["role", "role-without-purpose", "purposes", "subject", "expiry"],
)
async def test_a_tampered_token_is_unauthenticated(
    policy_client: httpx.AsyncClient, estate: Estate, edit: dict[str, Any], purpose: str | None
) -> None:
    header, payload, signature = _exit_entry_token(estate.settings).split(".")
    claims = json.loads(_unb64(payload))
    claims.update(edit)
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    await _refused(policy_client, _bearer(forged, purpose), 401, "UNAUTHENTICATED")


async def test_a_token_with_a_damaged_signature_is_unauthenticated(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    header, payload, signature = _exit_entry_token(estate.settings).split(".")
    raw = bytearray(_unb64(signature))
    raw[0] ^= 0x01
    await _refused(
        policy_client,
        _bearer(f"{header}.{payload}.{_b64(bytes(raw))}", "entry-control"),
        401,
        "UNAUTHENTICATED",
    )


async def test_an_expired_token_is_unauthenticated(policy_client: httpx.AsyncClient, estate: Estate) -> None:
    token = _authority(estate.settings).issue(
        subject="desk-7",
        role=CallerRole.EXIT_ENTRY,
        purposes=("entry-control",),
        ttl=timedelta(hours=1),
        now=datetime.now(UTC) - timedelta(hours=1, seconds=5),
    )
    body = await _refused(policy_client, _bearer(token, "entry-control"), 401, "UNAUTHENTICATED")
    assert "expired" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "claims",
    [
        _claims(iss="someone-else"),
        _claims(iss=None),
        _claims(exp=None),
        _claims(sub=None),
        _claims(role=None),
        _claims(role="ADMIN"),
        _claims(role=CallerRole.CARDHOLDER.value, purposes=[]),
        _claims(role=CallerRole.EMPLOYER.value, purposes=["employment"]),
    ],
    ids=[
        "foreign-issuer",
        "no-issuer",
        "no-expiry",
        "no-subject",
        "no-role",
        "unknown-role",
        "cardholder-without-person",
        "employer-without-credit-code",
    ],
)
async def test_a_hub_signed_token_with_wrong_claims_is_unauthenticated(
    policy_client: httpx.AsyncClient, estate: Estate, claims: dict[str, Any]
) -> None:
    token = jwt.encode(claims, load_or_create_key(estate.settings.data_dir, TOKEN_KEY), algorithm="EdDSA")
    await _refused(policy_client, _bearer(token, "employment"), 401, "UNAUTHENTICATED")


def _later() -> int:
    return int(datetime.now(UTC).timestamp()) + 86_400


CARDHOLDER_CLAIMS = {"role": CallerRole.CARDHOLDER.value, "purposes": []}


@pytest.mark.parametrize(
    ("claims", "purpose", "claim"),
    [
        (_claims(exp=str(_later())), "entry-control", "`exp`"),
        (_claims(exp=float(_later())), "entry-control", "`exp`"),
        (_claims(iat=str(_later() - 86_400)), "entry-control", "`iat`"),
        (_claims(**CARDHOLDER_CLAIMS, person=True), None, "`person`"),
        (_claims(**CARDHOLDER_CLAIMS, person="7"), None, "`person`"),
        (_claims(**CARDHOLDER_CLAIMS, person=0), None, "`person`"),
        (
            _claims(role=CallerRole.EMPLOYER.value, purposes=["employment"], employer=911100006),
            "employment",
            "`employer`",
        ),
        (_claims(purposes="entry-control"), "entry-control", "`purposes`"),
        (_claims(purposes=["entry-control", 7]), "entry-control", "`purposes`"),
        (_claims(role="exit_entry"), "entry-control", "`role`"),
        (_claims(role=["EXIT_ENTRY"]), "entry-control", "`role`"),
    ],
    ids=[
        "exp-string",
        "exp-float",
        "iat-string",
        "person-true",
        "person-string",
        "person-zero",
        "employer-number",
        "purposes-string",
        "purposes-not-strings",
        "role-lower-case",
        "role-list",
    ],
)
async def test_a_hub_signed_token_with_malformed_claims_is_unauthenticated(
    policy_client: httpx.AsyncClient, estate: Estate, claims: dict[str, Any], purpose: str | None, claim: str
) -> None:
    # Signed with the hub's own key: only the claims' types are wrong.
    token = jwt.encode(claims, load_or_create_key(estate.settings.data_dir, TOKEN_KEY), algorithm="EdDSA")
    body = await _refused(policy_client, _bearer(token, purpose), 401, "UNAUTHENTICATED")
    message = body["errors"][0]["message"]
    assert "the token's claims are malformed" in message and claim in message, message


async def test_refusals_do_not_echo_the_token(policy_client: httpx.AsyncClient, estate: Estate) -> None:
    token = _exit_entry_token(estate.settings)[:-4] + "AAAA"
    response = await policy_client.post("/graphql", json={"query": GRANTS}, headers=_bearer(token))
    assert response.status_code == 401
    assert token not in response.text and token.split(".")[1] not in response.text


# Purposes


@pytest.mark.parametrize(
    ("declared", "why"),
    [
        (None, "must declare"),
        ("", "must declare"),
        ("fishing-expedition", "is not a purpose of EXIT_ENTRY"),
        ("permit-administration", "is not a purpose of EXIT_ENTRY"),
        ("employment", "is not a purpose of EXIT_ENTRY"),
        ("investigation", "does not allow"),
        ("residence-application", "does not allow"),
    ],
    ids=["none", "blank", "unknown", "other-role", "employer-purpose", "not-in-token", "not-in-token-2"],
)
async def test_a_purpose_outside_the_role_or_token_is_forbidden(
    policy_client: httpx.AsyncClient, estate: Estate, declared: str | None, why: str
) -> None:
    headers = _bearer(_exit_entry_token(estate.settings))
    if declared is not None:
        headers["X-Purpose"] = declared
    body = await _refused(policy_client, headers, 403, "FORBIDDEN")
    assert why in body["errors"][0]["message"]


async def test_each_purpose_the_token_names_may_be_declared(
    policy_client: httpx.AsyncClient, estate: Estate
) -> None:
    token = _authority(estate.settings).issue(
        subject="desk-8", role=CallerRole.EXIT_ENTRY, purposes=("entry-control", "residence-application")
    )
    for purpose in ("entry-control", "residence-application"):
        body = await graphql(policy_client, GRANTS, headers=_bearer(token, purpose))
        assert body["data"]["accessGrants"] == {"role": "EXIT_ENTRY", "purpose": purpose}
    await _refused(policy_client, _bearer(token, "investigation"), 403, "FORBIDDEN")


async def test_cardholder_and_reporting_need_no_purpose(
    policy_client: httpx.AsyncClient, client: httpx.AsyncClient, estate: Estate
) -> None:
    reporting = await graphql(policy_client, GRANTS, headers=estate.headers(CallerRole.REPORTING))
    assert reporting["data"]["accessGrants"] == {"role": "REPORTING", "purpose": None}
    person_id = await _some_person_id(client, estate)
    cardholder = await graphql(
        policy_client,
        "{ me { id } accessGrants { role purpose } }",
        headers=estate.headers(CallerRole.CARDHOLDER, person_id=person_id),
    )
    assert "errors" not in cardholder, cardholder["errors"]
    assert cardholder["data"]["accessGrants"] == {"role": "CARDHOLDER", "purpose": None}
    assert cardholder["data"]["me"]["id"] == global_ids(estate.settings).encode("Person", person_id)


@pytest.mark.parametrize("role", [CallerRole.REPORTING, CallerRole.CARDHOLDER])
async def test_a_purpose_from_a_role_without_purposes_is_a_bad_request(
    policy_client: httpx.AsyncClient, client: httpx.AsyncClient, estate: Estate, role: CallerRole
) -> None:
    bound: dict[str, Any] = (
        {"person_id": await _some_person_id(client, estate)} if role is CallerRole.CARDHOLDER else {}
    )
    for declared in ("entry-control", "statistics"):
        headers = {**estate.headers(role, **bound), "X-Purpose": declared}
        body = await _refused(policy_client, headers, 400, "BAD_REQUEST")
        assert body["errors"][0]["message"] == f"X-Purpose: {role.value} declares no purpose; send none."
    # Over WebSocket the same rule refuses connection_init.
    async with uvicorn_serving(app.create_app(estate.settings)) as address:
        async with connect(
            f"ws://{address}/graphql",
            subprotocols=[Subprotocol("graphql-transport-ws")],
            open_timeout=SAFETY_NET,
        ) as ws:
            payload = {**estate.headers(role, **bound), "X-Purpose": "entry-control"}
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), SAFETY_NET)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
    assert closed.value.rcvd.reason.startswith(f"X-Purpose: {role.value} declares no purpose")


# hub token


def _hub_env(settings: Settings) -> dict[str, str]:
    assert settings.fixed_today is not None
    return {
        **os.environ,
        "HUB_DATA_DIR": str(settings.data_dir),
        "HUB_TODAY": settings.fixed_today.isoformat(),
        "HUB_STORE_URL": settings.store_url,
        "HUB_AUDIT_URL": settings.audit_url,
        **{spec.url_variable: settings.source_urls[spec.id] for spec in settings.agencies},
    }


async def _hub_token(settings: Settings, *args: str) -> str:
    """`hub token ...` against the estate's databases and keys; its token, or the test fails."""
    process = await asyncio.create_subprocess_exec(
        *HUB,
        "token",
        *args,
        cwd=ROOT,
        env=_hub_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    token = out.decode().strip()
    assert token.count(".") == 2, token
    return token


async def _some_person_id(client: httpx.AsyncClient, estate: Estate) -> int:
    listing = await graphql(client, "{ persons(first: 1) { edges { node { id } } } }")
    return person_id_of(estate.settings, listing["data"]["persons"]["edges"][0]["node"]["id"])


async def _permit_holder(client: httpx.AsyncClient) -> dict[str, Any]:
    """A person with a work permit and an employer, known to all five agencies."""
    listing = await graphql(
        client,
        "{ persons(first: 100) { edges { node { id workPermit { number employer { creditCode } } "
        "identityLinks { agency } } } } }",
    )
    return next(
        e["node"]
        for e in listing["data"]["persons"]["edges"]
        if e["node"]["workPermit"]
        and e["node"]["workPermit"]["employer"]
        and len({link["agency"] for link in e["node"]["identityLinks"]}) == len(DEFAULT_AGENCIES)
    )


async def test_hub_token_issues_tokens_the_hub_accepts(
    policy_client: httpx.AsyncClient, client: httpx.AsyncClient, estate: Estate
) -> None:
    holder = await _permit_holder(client)
    number = holder["workPermit"]["number"]
    credit_code = holder["workPermit"]["employer"]["creditCode"]
    agency, cardholder, employer = await asyncio.gather(
        _hub_token(
            estate.settings,
            "--role",
            "EXIT_ENTRY",
            "--subject",
            "desk-cli",
            "--purpose",
            "entry-control",
            "--purpose",
            "investigation",
            "--ttl",
            "90s",
        ),
        _hub_token(
            estate.settings,
            "--role",
            "CARDHOLDER",
            "--subject",
            "e-card-app",
            "--person",
            f"workPermitNumber={number}",
        ),
        _hub_token(
            estate.settings,
            "--role",
            "EMPLOYER",
            "--subject",
            "hr-portal",
            "--purpose",
            "employment",
            "--employer",
            credit_code,
        ),
    )

    for purpose in ("entry-control", "investigation"):
        body = await graphql(policy_client, GRANTS, headers=_bearer(agency, purpose))
        assert body["data"]["accessGrants"] == {"role": "EXIT_ENTRY", "purpose": purpose}
    await _refused(policy_client, _bearer(agency, "residence-application"), 403, "FORBIDDEN")
    claims = jwt.decode(agency, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 90
    assert claims["iss"] == ISSUER and claims["sub"] == "desk-cli"
    assert jwt.get_unverified_header(agency)["alg"] == "EdDSA"

    me = await graphql(policy_client, "{ me { id workPermit { number } } }", headers=_bearer(cardholder))
    assert "errors" not in me, me["errors"]
    assert me["data"]["me"]["id"] == holder["id"]
    assert me["data"]["me"]["workPermit"]["number"] == number

    grants = await graphql(policy_client, GRANTS, headers=_bearer(employer, "employment"))
    assert grants["data"]["accessGrants"] == {"role": "EMPLOYER", "purpose": "employment"}
    assert jwt.decode(employer, options={"verify_signature": False})["employer"] == credit_code


async def test_hub_token_binds_a_cardholder_by_person_id(
    policy_client: httpx.AsyncClient, client: httpx.AsyncClient, estate: Estate
) -> None:
    person_id = await _some_person_id(client, estate)
    token = await _hub_token(
        estate.settings, "--role", "CARDHOLDER", "--subject", "e-card-app", "--person", str(person_id)
    )
    me = await graphql(policy_client, "{ me { id } }", headers=_bearer(token))
    assert me["data"]["me"]["id"] == global_ids(estate.settings).encode("Person", person_id)


BAD_OPTIONS: dict[str, tuple[list[str], str]] = {
    "unknown-purpose": (["--role", "EXIT_ENTRY", "--purpose", "fishing-expedition"], "--purpose"),
    "purpose-of-another-role": (["--role", "EXIT_ENTRY", "--purpose", "permit-administration"], "--purpose"),
    "agency-without-purpose": (["--role", "EXIT_ENTRY"], "--purpose"),
    "reporting-with-purpose": (["--role", "REPORTING", "--purpose", "entry-control"], "--purpose"),
    "cardholder-without-person": (["--role", "CARDHOLDER"], "--person"),
    "cardholder-unknown-person": (["--role", "CARDHOLDER", "--person", "workPermitNumber=NOPE"], "--person"),
    "cardholder-unknown-lookup": (["--role", "CARDHOLDER", "--person", "shoeSize=42"], "--person"),
    "ttl-unit": (["--role", "REPORTING", "--ttl", "8x"], "--ttl"),
    "ttl-zero": (["--role", "REPORTING", "--ttl", "0h"], "--ttl"),
    "ttl-negative": (["--role", "REPORTING", "--ttl", "-1h"], "--ttl"),
    "ttl-words": (["--role", "REPORTING", "--ttl", "eight hours"], "--ttl"),
    "ttl-huge": (["--role", "REPORTING", "--ttl", "99999999d"], "--ttl"),
    "employer-invalid-credit-code": (
        ["--role", "EMPLOYER", "--purpose", "employment", "--employer", VALID_CREDIT_CODE[:-1] + "A"],
        "--employer",
    ),
    "employer-short-credit-code": (
        ["--role", "EMPLOYER", "--purpose", "employment", "--employer", "123"],
        "--employer",
    ),
    "employer-without-credit-code": (["--role", "EMPLOYER", "--purpose", "employment"], "--employer"),
    "unknown-role": (["--role", "ADMIN"], "--role"),
    # argparse takes the last --subject: a blank one overrides the runner's.
    "blank-subject": (["--role", "REPORTING", "--subject", "  "], "--subject"),
}
KNOWN_GAPS: dict[str, str] = {}


@pytest.fixture(scope="module")
async def bad_token_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str]]:
    """Every bad `hub token` invocation, a few at a time, against a data directory whose hub
    store is linked but empty: (exit status, stdout, stderr) by case."""
    data_dir = tmp_path_factory.mktemp("hub-token")
    settings = Settings.for_directory(data_dir, fixed_today=AS_OF)
    store = HubStore.open(settings.store_url)
    try:
        await store.create_tables()
    finally:
        await store.close()
    env = _hub_env(settings)
    slots = asyncio.Semaphore(max(2, os.cpu_count() or 1))

    async def run(args: list[str]) -> tuple[int, str, str]:
        async with slots:
            process = await asyncio.create_subprocess_exec(
                *HUB,
                "token",
                "--subject",
                "bad",
                *args,
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), timeout=120)
            assert process.returncode is not None
            return process.returncode, out.decode(), err.decode()

    done = await asyncio.gather(*(run(args) for args, _ in BAD_OPTIONS.values()))
    return dict(zip(BAD_OPTIONS, done, strict=True))


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_GAPS[name], strict=True))
        if name in KNOWN_GAPS
        else name
        for name in BAD_OPTIONS
    ],
)
def test_hub_token_refuses_a_bad_option_clearly(
    bad_token_runs: dict[str, tuple[int, str, str]], case: str
) -> None:
    status, out, err = bad_token_runs[case]
    assert status != 0
    assert out == "", "no token is printed"
    assert "Traceback" not in err, err
    assert BAD_OPTIONS[case][1] in err, err


def test_hub_token_for_a_cardholder_without_an_estate_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "HUB_DATA_DIR": str(tmp_path), "HUB_TODAY": "2026-06-15"}
    run = subprocess.run(
        [*HUB, "token", "--role", "CARDHOLDER", "--subject", "x", "--person", "workPermitNumber=1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr
    assert "nobody is found" in run.stderr, run.stderr


# GraphiQL


async def test_graphiqls_page_loads_without_a_token(policy_client: httpx.AsyncClient) -> None:
    page = await policy_client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()


async def test_a_query_by_get_needs_a_token_even_from_a_browser(policy_client: httpx.AsyncClient) -> None:
    for accept in ("text/html", "application/json"):
        answer = await policy_client.get(
            "/graphql", params={"query": GRANTS}, headers={"Accept": accept, "X-Purpose": "entry-control"}
        )
        assert answer.status_code == 401
        assert _code(answer.json()) == "UNAUTHENTICATED"
    posted = await policy_client.post("/graphql", json={"query": GRANTS}, headers={"Accept": "text/html"})
    assert posted.status_code == 401


# Keys


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_signing_key_is_created_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0)  # even where the process would let everybody read what it writes
    try:
        key = load_or_create_key(tmp_path, TOKEN_KEY)
    finally:
        os.umask(previous)
    directory = tmp_path / KEY_DIRECTORY
    assert _mode(directory) == 0o700
    assert _mode(directory / f"{TOKEN_KEY}.pem") == 0o600
    assert sorted(p.name for p in directory.iterdir()) == [f"{TOKEN_KEY}.pem"]
    again = load_or_create_key(tmp_path, TOKEN_KEY)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert again.public_key().public_bytes(*raw) == key.public_key().public_bytes(*raw)


def test_an_existing_key_directory_is_made_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / KEY_DIRECTORY
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    load_or_create_key(tmp_path, TOKEN_KEY)
    assert _mode(directory) == 0o700


def test_a_loosened_key_file_is_made_owner_only_again(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path, TOKEN_KEY)
    path = tmp_path / KEY_DIRECTORY / f"{TOKEN_KEY}.pem"
    os.chmod(path, 0o644)
    again = load_or_create_key(tmp_path, TOKEN_KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert first.public_key().public_bytes(*raw) == again.public_key().public_bytes(*raw)


def test_keys_created_at_once_are_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda _: load_or_create_key(tmp_path, TOKEN_KEY), range(16)))
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert len({k.public_key().public_bytes(*raw) for k in keys}) == 1
    assert [p.name for p in (tmp_path / KEY_DIRECTORY).iterdir()] == [f"{TOKEN_KEY}.pem"]


async def test_the_app_creates_its_keys_owner_only(tmp_path: Path) -> None:
    settings = Settings.for_directory(tmp_path / "fresh")
    async with serve(settings) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
    directory = settings.data_dir / KEY_DIRECTORY
    assert _mode(directory) == 0o700
    pems = sorted(directory.glob("*.pem"))
    assert {p.stem for p in pems} >= {TOKEN_KEY, AUDIT_KEY}
    assert all(_mode(p) == 0o600 for p in pems)


def test_the_estates_keys_are_owner_only(estate: Estate) -> None:
    directory = estate.settings.data_dir / KEY_DIRECTORY
    assert _mode(directory) == 0o700
    assert all(_mode(p) == 0o600 for p in directory.iterdir())


# Errors are masked and coded


async def test_an_unexpected_error_is_masked(
    policy_client: httpx.AsyncClient, estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_info: object) -> None:
        raise RuntimeError('SELECT "WP_SQR"."HZH" FROM "WP_SQR" -- legacy: ORA-00942 at adapters/work_permit')

    monkeypatch.setattr(resolvers.query, "access_grants", broken)
    response = await policy_client.post(
        "/graphql", json={"query": GRANTS}, headers=estate.headers(CallerRole.REPORTING)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["errors"][0]["message"] == MASKED
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    for leak in ("SELECT", "WP_SQR", "ORA-", "RuntimeError", "Traceback", "adapters/"):
        assert leak not in response.text


async def test_a_failing_legacy_database_is_masked(
    client: httpx.AsyncClient, estate: Estate, tmp_path: Path
) -> None:
    number = (await _permit_holder(client))["workPermit"]["number"]
    # The exit-entry source is an empty database: every read of it fails in SQL.
    settings = estate.settings
    broken = replace(
        settings,
        source_urls={**settings.source_urls, Agency.EXIT_ENTRY: sqlite_url(tmp_path / "empty.sqlite")},
    )
    async with serve(broken) as http:
        response = await http.post(
            "/graphql",
            json={
                "query": "query($lookup: PersonLookup!) { person(lookup: $lookup) { id visas { number } } }",
                "variables": {"lookup": {"workPermitNumber": number}},
            },
            headers=caller_headers(settings, CallerRole.EXIT_ENTRY, "entry-control"),
        )
    body = response.json()
    assert body.get("errors"), body
    for error in body["errors"]:
        assert error["extensions"]["code"] in {"INTERNAL_SERVER_ERROR", "SOURCE_UNAVAILABLE"}
        assert error["message"] == MASKED or error["extensions"]["code"] == "SOURCE_UNAVAILABLE"
    for leak in ("SELECT", "CRJ_", "no such table", "sqlite", "OperationalError", "Traceback"):
        assert leak not in response.text


async def test_an_error_before_the_graph_runs_is_masked(
    policy_client: httpx.AsyncClient, estate: Estate, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object) -> None:
        raise RuntimeError("connection to server at 10.0.0.7 failed: password authentication failed")

    monkeypatch.setattr(app, "scope_of", broken)
    response = await policy_client.post(
        "/graphql", json={"query": GRANTS}, headers=estate.headers(CallerRole.REPORTING)
    )
    assert response.status_code == 500
    assert response.json() == {
        "data": None,
        "errors": [{"message": MASKED, "extensions": {"code": "INTERNAL_SERVER_ERROR"}}],
    }
    assert "10.0.0.7" not in response.text and "password" not in response.text


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("{ accessGrants { role ", "GRAPHQL_PARSE_FAILED"),
        ("query { accessGrants { role } } }", "GRAPHQL_PARSE_FAILED"),
        ("{ accessGrants { nope } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ accessGrants }", "GRAPHQL_VALIDATION_FAILED"),
        ("query($n: Int!) { persons(first: $n) { totalCount } }", "BAD_USER_INPUT"),
    ],
    ids=["unterminated", "extra-brace", "unknown-field", "no-selection", "missing-variable"],
)
async def test_a_bad_document_gets_a_code(
    policy_client: httpx.AsyncClient, estate: Estate, document: str, code: str
) -> None:
    response = await policy_client.post(
        "/graphql", json={"query": document}, headers=estate.headers(CallerRole.REPORTING)
    )
    body = response.json()
    assert body["errors"], body
    codes = [e.get("extensions", {}).get("code") for e in body["errors"]]
    assert set(codes) == {code}, codes
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        {"json": {"variables": {}}},
        {"json": {"query": GRANTS, "variables": "not an object"}},
        {"content": b"query=1", "headers": {"Content-Type": "text/plain"}},
    ],
    ids=["not-json", "no-query", "variables-not-object", "content-type"],
)
async def test_a_bad_request_body_gets_a_code(
    policy_client: httpx.AsyncClient, estate: Estate, request_kwargs: dict[str, Any]
) -> None:
    headers = {**estate.headers(CallerRole.REPORTING), **request_kwargs.pop("headers", {})}
    response = await policy_client.post("/graphql", headers=headers, **request_kwargs)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["errors"] and all(e["extensions"]["code"] for e in body["errors"]), body


async def test_a_mutation_by_get_gets_a_code(policy_client: httpx.AsyncClient, estate: Estate) -> None:
    response = await policy_client.get(
        "/graphql",
        params={"query": "mutation { nothing }"},
        headers=estate.headers(CallerRole.REPORTING),
    )
    assert 400 <= response.status_code < 500
    assert all(e["extensions"]["code"] for e in response.json()["errors"])
