"""Signed client tokens (JWT, EdDSA, by PyJWT): who the client is, its role, the purposes it
may declare, when it expires, and the party it is bound to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.records import CallerRole

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
        role, person, employer = _checked(claims)
        if role is CallerRole.CARDHOLDER and person is None:
            raise InvalidToken("a cardholder token must name its person")
        if role is CallerRole.EMPLOYER and employer is None:
            raise InvalidToken("an employer token must name its credit code")
        return Claims(
            subject=claims["sub"],
            role=role,
            purposes=tuple(claims.get("purposes", [])),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            person_id=person,
            employer=employer,
        )


def _checked(claims: dict[str, Any]) -> tuple[CallerRole, int | None, str | None]:
    """The role, person and employer of claims whose every value has the type the hub signs
    (PyJWT reads `exp: "1"` as a number, and True is an int in Python); InvalidToken if not."""

    def malformed(rule: str) -> InvalidToken:
        return InvalidToken(f"the token's claims are malformed: {rule}")

    for name in ("exp", "iat", "nbf"):
        if name in claims and type(claims[name]) is not int:
            raise malformed(f"`{name}` must be an integer (seconds since the epoch)")
    if not isinstance(claims["sub"], str) or not claims["sub"].strip():
        raise malformed("`sub` must name the client")
    role = claims.get("role")
    roles = [known.value for known in CallerRole]
    if role not in roles:
        raise malformed(f"`role` must be one of {', '.join(roles)}")
    purposes = claims.get("purposes", [])
    if not isinstance(purposes, list) or not all(isinstance(p, str) for p in purposes):
        raise malformed("`purposes` must be a list of strings")
    person = claims.get("person")
    if person is not None and (type(person) is not int or person < 1):
        raise malformed("`person` must be a positive integer, the person's id")
    employer = claims.get("employer")
    if employer is not None and not isinstance(employer, str):
        raise malformed("`employer` must be a string, the employer's credit code")
    return CallerRole(role), person, employer
