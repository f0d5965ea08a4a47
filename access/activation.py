"""One-time activation codes: how a registered person's own app, and nobody else, comes to
hold a cardholder token (DOMAIN.md: no agency client ever holds a token that reads as the
person).

Registration (by the e-card app's backend) makes a code for the person and stores only its
SHA-256. The app exchanges it, without any token, together with the person's name and permit
number: once, within its lifetime, and with a bounded number of wrong tries, after which the
code is dead and a new one must be issued. The token it becomes names a fresh client of its own,
never the person and never the card service, so the audit shows who held it."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.errors import UserErrorCode
from identity.store import HubStore
from identity.tables import ActivationCode, table_of

ACTIVATION_CODE = table_of(ActivationCode)
CODE_LIFETIME = timedelta(days=7)
MAX_FAILED_TRIES = 5
CODE_BYTES = 15  # 120 bits: 24 base32 letters in six groups of four


class ActivationRefused(Exception):
    """The exchange does not turn into a token; `code` and `field` as a user error gives them."""

    def __init__(self, code: str, message: str, field: list[str]) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


@dataclass(frozen=True)
class NewCode:
    code: str  # shown once, to the registering client, for the person's app
    row: dict[str, object]  # what the registration stores (through its journal)


def new_code(person_id: int, electronic_card: str, issued_to: str, now: datetime | None = None) -> NewCode:
    code = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode()
    issued = now or datetime.now(UTC)
    readable = "-".join(code[i : i + 4] for i in range(0, len(code), 4))
    row = {
        "code_hash": code_hash(readable),
        "person_id": person_id,
        "electronic_card": electronic_card,
        "issued_to": issued_to,
        "issued_at": issued,
        "expires_at": issued + CODE_LIFETIME,
        "failed_tries": 0,
        "used_at": None,
        "used_by": None,
        "revoked_at": None,
    }
    return NewCode(readable, row)


def code_hash(code: str) -> str:
    """The code as stored: spaces, dashes and case do not matter to whoever types it."""
    normalised = "".join(code.split()).replace("-", "").upper()
    return hashlib.sha256(normalised.encode()).hexdigest()


SUBJECT_PREFIX = "cardholder-app-"


def new_subject() -> str:
    """A cardholder token's client: names nobody, differs for every activation."""
    return f"{SUBJECT_PREFIX}{secrets.token_hex(8)}"


MISMATCH = "The activation code, the name and the permit number do not belong together."


async def exchange(
    store: HubStore,
    code: str,
    belongs_to: Callable[[int], Awaitable[bool]],
    subject: str,
    now: datetime | None = None,
) -> int:
    """The person the code was issued for, once `belongs_to(person)` confirms the name and
    permit number given with it; the code is then used up, exactly once even when two
    exchanges race. Raises ActivationRefused."""
    moment = now or datetime.now(UTC)
    digest = code_hash(code)
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(select(ACTIVATION_CODE).where(ACTIVATION_CODE.c.code_hash == digest))
        ).first()
    if row is None:
        raise ActivationRefused(UserErrorCode.VERIFICATION_FAILED, MISMATCH, ["input"])
    usable = and_(
        ACTIVATION_CODE.c.code_hash == digest,
        ACTIVATION_CODE.c.used_at.is_(None),
        ACTIVATION_CODE.c.revoked_at.is_(None),
        ACTIVATION_CODE.c.failed_tries < MAX_FAILED_TRIES,
        ACTIVATION_CODE.c.expires_at > moment,
    )
    spent = row.used_at is not None or row.revoked_at is not None or row.failed_tries >= MAX_FAILED_TRIES
    if spent or _aware(row.expires_at) <= moment:
        raise _spent()
    if not await belongs_to(row.person_id):
        async with store.engine.begin() as conn:
            await conn.execute(
                update(ACTIVATION_CODE).where(usable).values(failed_tries=ACTIVATION_CODE.c.failed_tries + 1)
            )
        raise ActivationRefused(UserErrorCode.VERIFICATION_FAILED, MISMATCH, ["input"])
    async with store.engine.begin() as conn:
        claimed = await conn.execute(
            update(ACTIVATION_CODE).where(usable).values(used_at=moment, used_by=subject)
        )
    if claimed.rowcount != 1:
        raise _spent()
    return int(row.person_id)


async def codes_of(conn: AsyncConnection, electronic_card: str) -> list[str]:
    """The hashes of every code issued for an e-card that is not revoked yet."""
    statement = select(ACTIVATION_CODE.c.code_hash).where(
        and_(ACTIVATION_CODE.c.electronic_card == electronic_card, ACTIVATION_CODE.c.revoked_at.is_(None))
    )
    return list((await conn.execute(statement)).scalars().all())


async def is_revoked(store: HubStore, subject: str) -> bool:
    """Whether a cardholder token's client came from a code since revoked (a lost phone, a
    revoked e-card): such a token is refused like an expired one."""
    if not subject.startswith(SUBJECT_PREFIX):
        return False
    statement = select(ACTIVATION_CODE.c.revoked_at).where(ACTIVATION_CODE.c.used_by == subject)
    async with store.engine.connect() as conn:
        revoked = (await conn.execute(statement)).scalars().first()
    return revoked is not None


def _spent() -> ActivationRefused:
    return ActivationRefused(
        UserErrorCode.NOT_ELIGIBLE,
        "This activation code has been used, has expired or was tried too often; ask for a new one.",
        ["input", "activationCode"],
    )


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive times; the hub writes UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
