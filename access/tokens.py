"""Signed client tokens (JWT, EdDSA, by PyJWT): who the client is, its role, the purposes it
may declare, when it expires, and the party it is bound to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.records import CallerRole

ISSUER = "beijing-foreigner-work-hub"
ALGORITHM = "EdDSA"
TOKEN_KEY = "client-tokens"


class InvalidToken(Exception):
    """A token the hub does not accept; the message says why, without echoing it."""


@dataclass(frozen=True)
class Claims:
    subject: str
    role: CallerRole
    purposes: tuple[str, ...]
    expires_at: datetime
    person_id: int | None = None
    employer: str | None = None


class TokenAuthority:
    """Issues and verifies the hub's client tokens with one Ed25519 key."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._public = key.public_key()

    def issue(
        self,
        *,
        subject: str,
        role: CallerRole,
        purposes: tuple[str, ...] = (),
        ttl: timedelta = timedelta(hours=8),
        person_id: int | None = None,
        employer: str | None = None,
        now: datetime | None = None,
    ) -> str:
        if not subject.strip():
            raise ValueError("a token names its client")
        if role is CallerRole.CARDHOLDER and person_id is None:
            raise ValueError("a CARDHOLDER token is bound to a person")
        if role is CallerRole.EMPLOYER and not employer:
            raise ValueError("an EMPLOYER token is bound to an employer's credit code")
        issued = now or datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": subject,
            "role": role.value,
            "purposes": list(purposes),
            "iat": issued,
            "exp": issued + ttl,
        }
        if person_id is not None:
            claims["person"] = person_id
        if employer:
            claims["employer"] = employer
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> Claims:
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iss", "sub", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("the token is not one this hub signed") from None
        try:
            role = CallerRole(claims["role"])
            purposes = tuple(str(p) for p in claims.get("purposes", []))
            person = claims.get("person")
            employer = claims.get("employer")
        except (KeyError, ValueError, TypeError):
            raise InvalidToken("the token's claims are incomplete") from None
        if not str(claims["sub"]).strip():
            raise InvalidToken("the token names no client")
        if role is CallerRole.CARDHOLDER and not isinstance(person, int):
            raise InvalidToken("a cardholder token must name its person")
        if role is CallerRole.EMPLOYER and not isinstance(employer, str):
            raise InvalidToken("an employer token must name its credit code")
        return Claims(
            subject=str(claims["sub"]),
            role=role,
            purposes=purposes,
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            person_id=person if isinstance(person, int) else None,
            employer=employer if isinstance(employer, str) else None,
        )
