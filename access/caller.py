"""Who calls: the client behind a request, as its verified token and headers say, and the
persons its scope reaches. Grants, scope and audit are applied per field path from outside the
resolvers (schema/access.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from audit.chain import AuditEntry
from domain.records import CallerRole


@dataclass(frozen=True)
class Caller:
    """The client behind a request, as its verified token and headers say. Grants, scope and
    audit are applied per field path from outside the resolvers (schema/access.py)."""

    subject: str
    role: CallerRole
    purpose: str | None = None
    case_reference: str | None = None
    restricted_until: date | None = None
    request_id: str = ""
    # The party a token is bound to: the cardholder's person, the employer's credit code.
    person_id: int | None = None
    employer: str | None = None
    # False for the one request the hub serves without a token: a person's app exchanging its
    # activation code (policy.toml [anonymous]); it reaches nobody.
    authenticated: bool = True
    # The W3C trace the request belongs to (its traceparent's, or the hub's own span's).
    trace_id: str | None = None

    def audit_entry(self, person_id: int, fields: Iterable[str], at: datetime) -> AuditEntry:
        """The record of this caller reading (or being handed) `fields` of a person."""
        return AuditEntry(
            at=at,
            request_id=self.request_id,
            client=self.subject,
            role=self.role.value,
            purpose=self.purpose,
            case_reference=self.case_reference,
            person_id=person_id,
            fields=tuple(fields),
            restricted_until=self.restricted_until,
            trace_id=self.trace_id,
        )

    @property
    def scoped(self) -> bool:
        """Whether the caller reaches only some persons (a cardholder, an employer)."""
        return self.role in (CallerRole.CARDHOLDER, CallerRole.EMPLOYER)


@dataclass(frozen=True)
class Scope:
    """The persons a caller reaches: None for every person; lists are narrowed to it."""

    person_ids: frozenset[int] | None = None
    employer: str | None = None
