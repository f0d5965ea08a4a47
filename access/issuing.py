"""Issuing tokens from the command line: the person a cardholder token is bound to, token
lifetimes, a ready-to-paste token per role for the demo, and the demo's stand-in verification
provider for trying e-card registration."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from jwt.algorithms import OKPAlgorithm

from access.policy import ROLES_WITHOUT_PURPOSE, Policy
from access.tokens import TOKEN_KEY, TokenAuthority
from domain.errors import ClientError
from domain.evidence import IdentifierKind
from domain.records import CallerRole
from identity.linking import passport_identifier
from identity.store import HubStore
from keys.files import load_or_create_key
from opaque.ids import GlobalIds

_DURATION = re.compile(r"^(\d+)([smhd])$")
# A client token is a credential: a year is the longest it may live.
MAX_TTL = timedelta(days=366)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
LOOKUP_KINDS = {
    "workPermitNumber": IdentifierKind.WORK_PERMIT_NUMBER,
    "socialSecurityNumber": IdentifierKind.SOCIAL_SECURITY_NUMBER,
    "cardNumber": IdentifierKind.CARD_NUMBER,
    "residencePermitNumber": IdentifierKind.RESIDENCE_PERMIT_NUMBER,
    "passport": IdentifierKind.PASSPORT,
}


class IssuingError(ValueError):
    """A token that cannot be issued as asked; the message says which option and why."""


def parse_ttl(text: str) -> timedelta:
    """`90s`, `30m`, `8h`, `7d`."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise IssuingError(f"--ttl {text!r}: give a positive number with s, m, h or d, e.g. 8h")
    amount = int(match.group(1))
    if amount > MAX_TTL.total_seconds():  # larger than any unit could keep within the bound
        raise IssuingError(f"--ttl {text!r}: at most {MAX_TTL.days} days")
    ttl = timedelta(**{_UNITS[match.group(2)]: amount})
    if ttl > MAX_TTL:
        raise IssuingError(f"--ttl {text!r}: at most {MAX_TTL.days} days")
    return ttl


async def resolve_person(store: HubStore, ids: GlobalIds, lookup: str) -> int:
    """A person by `kind=value` (e.g. `workPermitNumber=1101...`, `passport=DEU:C01X00T47`),
    by the global id the graph gives (`Person.id`), or by the hub's person id."""
    kind, separator, value = lookup.partition("=")
    if not separator:
        person_id = int(lookup) if lookup.strip().isdigit() else _person_of_global_id(ids, lookup.strip())
        if (await store.persons_by_id([person_id]))[0] is not None:
            return person_id
        raise IssuingError(f"--person {lookup!r}: no person with that id")
    identifier_kind = LOOKUP_KINDS.get(kind.strip())
    if identifier_kind is None:
        raise IssuingError(f"--person: {kind!r} is not one of {', '.join(LOOKUP_KINDS)}")
    if identifier_kind is IdentifierKind.PASSPORT:
        nationality, _, number = value.partition(":")
        value = passport_identifier(number, nationality.strip().upper())
    found = (await store.person_ids_by_identifier([(identifier_kind.value, value.strip())]))[0]
    if found is None:
        raise IssuingError(f"--person {lookup!r}: nobody is found by that identifier")
    return found


def _person_of_global_id(ids: GlobalIds, global_id: str) -> int:
    """The person id behind a Person's global id; an id this hub did not issue (edited, or
    another data directory's) or another type's is refused, naming which."""
    try:
        return int(ids.key_of(global_id, "Person", "--person"))
    except ClientError as error:
        hint = "give a Person's id as the graph gives it, a person id or kind=value"
        raise IssuingError(f"{error}; {hint}") from None


def check_purposes(policy: Policy, role: CallerRole, purposes: list[str]) -> tuple[str, ...]:
    allowed = policy.purposes_of(role)
    if role in ROLES_WITHOUT_PURPOSE:
        if purposes:
            raise IssuingError(f"--purpose: {role.value} declares no purpose")
        return ()
    if not purposes:
        raise IssuingError(f"--purpose: {role.value} needs at least one of {', '.join(allowed)}")
    unknown = [p for p in purposes if p not in allowed]
    if unknown:
        raise IssuingError(f"--purpose {unknown[0]!r} is not one of {role.value}'s: {', '.join(allowed)}")
    return tuple(purposes)


@dataclass(frozen=True)
class DemoToken:
    role: CallerRole
    purpose: str | None
    token: str


def demo_tokens(
    data_dir: Path, policy: Policy, cardholder: int | None, employer: str | None, ttl: timedelta
) -> list[DemoToken]:
    """One token per role, with every purpose of the role, for exploring the demo estate."""
    authority = TokenAuthority(load_or_create_key(data_dir, TOKEN_KEY))
    tokens = []
    for role in CallerRole:
        purposes = tuple(policy.purposes_of(role))
        if (
            role is CallerRole.CARDHOLDER
            and cardholder is None
            or role is CallerRole.EMPLOYER
            and not employer
        ):
            continue
        token = authority.issue(
            subject=f"demo-{role.value.lower().replace('_', '-')}",
            role=role,
            purposes=purposes,
            ttl=ttl,
            person_id=cardholder if role is CallerRole.CARDHOLDER else None,
            employer=employer if role is CallerRole.EMPLOYER else None,
        )
        tokens.append(DemoToken(role, purposes[0] if purposes else None, token))
    return tokens


DEMO_VERIFIER_KEY = "demo-verifier"
DEMO_VERIFIER_KID = "demo-verifier"


def demo_verifier_jwks(data_dir: Path) -> str:
    """The JWK Set of the demo's stand-in verification provider (its key made on first use),
    trusted by `hub run --demo` when HUB_VERIFIER_JWKS names no real provider."""
    public = load_or_create_key(data_dir, DEMO_VERIFIER_KEY).public_key()
    jwk = json.loads(OKPAlgorithm.to_jwk(public))
    return json.dumps({"keys": [{**jwk, "kid": DEMO_VERIFIER_KID, "use": "sig", "alg": "EdDSA"}]})


def demo_attestation(data_dir: Path, identifier: str, reference: str, method: str) -> str:
    """A real-person attestation signed by the demo provider (`hub attest`): for trying
    e-card registration against the demo estate, never for a hub trusting a real provider."""
    issued = datetime.now(UTC)
    claims = {
        "iss": "hub-demo-verifier",
        "iat": issued,
        "exp": issued + timedelta(hours=1),
        "reference": reference,
        "method": method,
        "identifier": identifier.strip().upper(),
        "passed": True,
    }
    key = load_or_create_key(data_dir, DEMO_VERIFIER_KEY)
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": DEMO_VERIFIER_KID})
