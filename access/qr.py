"""The hub's signed permit statements: the QR code (a compact JWS an office scans and checks
offline or online) and the permit document a cardholder downloads, each signed with its own
Ed25519 key, and the public keys published as a JWK Set.

A QR code is never a login: it is signed with the `qr-codes` key, which verifies no client
token, and client tokens are signed with a key that verifies no QR code. Each statement
carries its key id (`kid`) and its type (`typ`) in the protected header, so a document is
never taken for a QR code either."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from access.tokens import ALGORITHM, ISSUER
from domain.errors import ClientError
from domain.records import PermitVerificationFailure
from keys.files import load_or_create_key
from opaque.ids import GlobalIds
from opaque.sealing import sealer

QR_KEY = "qr-codes"
DOCUMENT_KEY = "permit-documents"
QR_TYPE = "permit-qr+jwt"
DOCUMENT_TYPE = "permit-document+jwt"
QR_LIFETIME = timedelta(hours=24)


class QrRejected(Exception):
    """A QR code that does not verify, with the failure `verifyWorkPermit` reports."""

    def __init__(self, failure: PermitVerificationFailure, reason: str) -> None:
        super().__init__(reason)
        self.failure = failure


@dataclass(frozen=True)
class QrClaims:
    """What a verified QR code says: the permit number and the person's global id."""

    permit_number: str
    person: str
    issued_at: datetime
    expires_at: datetime


class SigningKey:
    """One Ed25519 key, its key id (a prefix of its RFC 7638 thumbprint, after its use) and JWK."""

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        self.name = name
        self.private = key
        self.public: Ed25519PublicKey = key.public_key()
        self.jwk: dict[str, Any] = OKPAlgorithm.to_jwk(self.public, as_dict=True)
        self.kid = f"{name}-{thumbprint(self.jwk)[:16]}"

    def published(self) -> dict[str, Any]:
        return {**self.jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}

    def sign(self, claims: dict[str, Any], typ: str) -> str:
        return jwt.encode(claims, self.private, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": typ})


def thumbprint(jwk: dict[str, Any]) -> str:
    """The JWK's RFC 7638 thumbprint (SHA-256, base64url) over its required members."""
    required = {name: jwk[name] for name in ("crv", "kty", "x")}
    digest = hashlib.sha256(orjson.dumps(required, option=orjson.OPT_SORT_KEYS)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class PermitKeys:
    """The QR key and the document key, and what is signed and verified with them."""

    def __init__(self, qr: Ed25519PrivateKey, document: Ed25519PrivateKey, ids: GlobalIds) -> None:
        self.ids = ids  # the QR code's subject is a Person's global id, and nothing else
        self.qr = SigningKey(QR_KEY, qr)
        self.document = SigningKey(DOCUMENT_KEY, document)

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWK Set, for `/.well-known/jwks.json`."""
        return {"keys": [self.qr.published(), self.document.published()]}

    def issue_qr(self, permit_number: str, person: str, now: datetime | None = None) -> str:
        """A QR code for the permit and its holder's global id, valid for 24 hours from `now`."""
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        claims = {
            "iss": ISSUER,
            "sub": person,
            "permit": permit_number,
            "iat": issued,
            "exp": issued + QR_LIFETIME,
        }
        return self.qr.sign(claims, QR_TYPE)

    def verify_qr(self, token: str) -> QrClaims:
        """The claims of a QR code this hub signed and that has not expired; else QrRejected:
        SIGNATURE_INVALID for anything not signed by the QR key as a QR code (a forgery, an
        edit, another key, `alg: none`, a client token, a permit document), EXPIRED for a
        genuine one past its expiry."""
        invalid = PermitVerificationFailure.SIGNATURE_INVALID
        try:
            header = jwt.get_unverified_header(token.strip())
        except jwt.InvalidTokenError:
            raise QrRejected(invalid, "not a compact JWS") from None
        if header.get("kid") != self.qr.kid or header.get("typ") != QR_TYPE:
            raise QrRejected(invalid, "not signed with the hub's QR key")
        try:
            claims = jwt.decode(
                token.strip(),
                self.qr.public,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["iss", "sub", "permit", "iat", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            # Raised only once the signature holds: a genuine QR code, too old.
            raise QrRejected(PermitVerificationFailure.EXPIRED, "the QR code has expired") from None
        except jwt.InvalidTokenError:
            raise QrRejected(invalid, "the signature does not verify") from None
        if not isinstance(claims["permit"], str) or not self._names_a_person(claims["sub"]):
            # Signed with the QR key, yet not what the hub puts in a QR code.
            raise QrRejected(invalid, "the claims are not a QR code's")
        return QrClaims(
            permit_number=claims["permit"],
            person=claims["sub"],
            issued_at=datetime.fromtimestamp(int(claims["iat"]), UTC),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )

    def _names_a_person(self, subject: object) -> bool:
        try:
            return isinstance(subject, str) and self.ids.decode(subject)[0] == "Person"
        except ClientError:
            return False

    def sign_document(self, statement: dict[str, Any], person: str, now: datetime | None = None) -> str:
        """A compact JWS over the permit statement, naming the person by global id."""
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        return self.document.sign({"iss": ISSUER, "sub": person, "iat": issued, **statement}, DOCUMENT_TYPE)


@lru_cache(maxsize=16)
def _keys_in(directory: Path) -> PermitKeys:
    return PermitKeys(
        load_or_create_key(directory, QR_KEY),
        load_or_create_key(directory, DOCUMENT_KEY),
        GlobalIds(sealer(directory)),
    )


def permit_keys(data_dir: Path) -> PermitKeys:
    """The permit keys of a data directory, created on first use and loaded once per process."""
    return _keys_in(data_dir.resolve())
