"""Real-person attestations: the verification provider's signed statement that the person
registering an e-card passed a face, bank or counter check (DOMAIN.md, workflow 3).

The e-card app's backend (CARD_SERVICE) hands the hub the provider's compact JWS; the hub
trusts only the provider's public keys (`HUB_VERIFIER_JWKS`: a JWK Set, inline JSON or a
file), verifies it with PyJWT, and takes nothing the card service merely asserts. An
attestation names the check's reference, its method, the identifier the person registers
with, and a short life:

    header  {"alg": "EdDSA" | "ES256" | "RS256", "kid": "<a key of the set>", "typ": "JWT"}
    claims  {"iss": "...", "iat": ..., "exp": ..., "reference": "<RZBH>",
             "method": "FACE" | "BANK" | "COUNTER", "identifier": "<permit or SS number>",
             "passed": true}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

# Asymmetric signatures only: a symmetric one would let anyone holding the key set sign.
ALGORITHMS = ("EdDSA", "ES256", "RS256", "PS256")
MAX_LIFETIME_SECONDS = 24 * 3600
MAX_ATTESTATION_BYTES = 8192


class AttestationRejected(Exception):
    """Why an attestation does not prove the real-person check; the message is for the client."""


@dataclass(frozen=True)
class Attestation:
    issuer: str
    reference: str
    method: str
    identifier: str


class Verifiers:
    """The verification providers the hub trusts, by their published keys."""

    def __init__(self, keys: dict[str, jwt.PyJWK]) -> None:
        self._keys = keys

    @classmethod
    def from_setting(cls, value: str | None) -> Verifiers:
        """A JWK Set as inline JSON (`{"keys": [...]}`) or the path of a file holding one; none
        set trusts no provider. A set that cannot be read stops the start."""
        if not value or not value.strip():
            return cls({})
        text = value if value.lstrip().startswith("{") else Path(value).read_text()
        try:
            document = json.loads(text)
            keys = jwt.PyJWKSet(document["keys"]).keys
        except (ValueError, KeyError, TypeError, jwt.PyJWKSetError) as error:
            raise ValueError(f"HUB_VERIFIER_JWKS: not a usable JWK Set ({type(error).__name__})") from None
        by_id = {key.key_id: key for key in keys if key.key_id}
        if len(by_id) != len(keys):
            raise ValueError("HUB_VERIFIER_JWKS: every key needs its own `kid`")
        return cls(by_id)

    @property
    def configured(self) -> bool:
        return bool(self._keys)

    def verify(
        self, token: str, *, method: str, reference: str, identifier: str | frozenset[str]
    ) -> Attestation:
        """The attestation, if a trusted provider signed it for exactly this check and person
        (`identifier`, or any of several the person is known by)."""
        accepted = frozenset({identifier}) if isinstance(identifier, str) else identifier
        if not self._keys:
            raise AttestationRejected("no verification provider is trusted here (HUB_VERIFIER_JWKS)")
        if len(token) > MAX_ATTESTATION_BYTES:
            raise AttestationRejected("the attestation is too long to be one")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AttestationRejected("the attestation is not a compact JWS") from None
        key = self._keys.get(str(header.get("kid")))
        if key is None or header.get("alg") not in ALGORITHMS:
            raise AttestationRejected("the attestation is not signed by a trusted provider's key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                options={"require": ["iss", "iat", "exp", "reference", "method", "identifier", "passed"]},
            )
        except jwt.ExpiredSignatureError:
            raise AttestationRejected("the attestation has expired") from None
        except jwt.InvalidTokenError:
            raise AttestationRejected("the attestation's signature or claims do not hold") from None
        issued, expires = claims["iat"], claims["exp"]
        if not (
            type(issued) is int and type(expires) is int and 0 < expires - issued <= MAX_LIFETIME_SECONDS
        ):
            raise AttestationRejected("the attestation's lifetime is not a provider's")
        if claims["passed"] is not True:
            raise AttestationRejected("the real-person check did not pass")
        if claims["method"] != method:
            raise AttestationRejected("the attestation is of another method")
        if claims["reference"] != reference:
            raise AttestationRejected("the attestation is of another check (reference)")
        named = claims["identifier"].strip().upper() if isinstance(claims["identifier"], str) else None
        if named not in accepted:
            raise AttestationRejected("the attestation is of another person (identifier)")
        return Attestation(str(claims["iss"]), reference, method, named)
