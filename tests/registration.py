"""E-card registration as the e-card app and its backend do it: a stand-in verification
provider (the face, bank or counter check's signer, whose public keys the hub is told to trust
through HUB_VERIFIER_JWKS) signing real-person attestations, and the person's app exchanging
its activation code for a cardholder token."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from settings import Settings


class Provider:
    def __init__(self, kid: str = "test-provider-1") -> None:
        self.kid = kid
        self.key = Ed25519PrivateKey.generate()

    def jwks(self) -> str:
        public = json.loads(OKPAlgorithm.to_jwk(self.key.public_key()))
        return json.dumps({"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "EdDSA"}]})

    def attest(
        self,
        identifier: str,
        reference: str,
        method: str = "FACE",
        *,
        passed: bool = True,
        lifetime: timedelta = timedelta(minutes=10),
        issued: datetime | None = None,
        **claims: Any,
    ) -> str:
        """A compact JWS attesting that the person registering with `identifier` passed check `reference`."""
        at = issued or datetime.now(UTC)
        body = {
            "iss": "https://verifier.example",
            "iat": int(at.timestamp()),
            "exp": int((at + lifetime).timestamp()),
            "reference": reference,
            "method": method,
            "identifier": identifier,
            "passed": passed,
            **claims,
        }
        return jwt.encode(body, self.key, algorithm="EdDSA", headers={"kid": self.kid})


PROVIDER = Provider()


def trusting(settings: Settings, provider: Provider = PROVIDER) -> Settings:
    """The settings with the provider's keys trusted for e-card registration."""
    return replace(settings, verifier_jwks=provider.jwks())


ACTIVATE = (
    "mutation($i: ActivateCardholderInput!) { activateCardholder(input: $i) "
    "{ cardholderToken userErrors { code message field } } }"
)


async def exchange(
    client: httpx.AsyncClient, code: str, name: dict[str, Any], permit_number: str
) -> dict[str, Any]:
    """The person's app exchanging its activation code: no token, as the app has none yet."""
    response = await client.post(
        "/graphql",
        json={
            "query": ACTIVATE,
            "variables": {"i": {"activationCode": code, "name": name, "workPermitNumber": permit_number}},
        },
        headers={"Authorization": ""},
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()["data"]["activateCardholder"]
    return answer


async def activate(client: httpx.AsyncClient, code: str, name: dict[str, Any], permit_number: str) -> str:
    """The cardholder token the app receives for its code."""
    answer = await exchange(client, code, name, permit_number)
    assert answer["userErrors"] == [], answer["userErrors"]
    token: str = answer["cardholderToken"]
    return token
