"""The hub's own refusals; the schema gives each its extensions.code and shows its message,
which is written for the client."""

from __future__ import annotations


class Refusal(Exception):
    code = "INTERNAL_SERVER_ERROR"


class ClientError(Refusal):
    """A request the client can fix: names the argument and the rule it broke."""

    code = "BAD_USER_INPUT"

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field


class NotAvailable(Refusal):
    """A field whose capability the hub does not offer yet."""

    code = "NOT_AVAILABLE"


class Forbidden(Refusal):
    """A field, a type, an argument or a person the caller's grants or scope do not reach;
    `field` names the argument when one was refused."""

    code = "FORBIDDEN"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
