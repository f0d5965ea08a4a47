"""Who calls: the client behind a request, as its verified token and headers say, and the
persons its scope reaches. Grants, scope and audit are applied per field path from outside the
resolvers (schema/access.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

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

    @property
    def scoped(self) -> bool:
        """Whether the caller reaches only some persons (a cardholder, an employer)."""
        return self.role in (CallerRole.CARDHOLDER, CallerRole.EMPLOYER)


@dataclass(frozen=True)
class Scope:
    """The persons a caller reaches: None for every person; lists are narrowed to it."""

    person_ids: frozenset[int] | None = None
    employer: str | None = None
