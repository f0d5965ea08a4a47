"""Errors resolvers raise for a client's mistake; the schema gives each its extensions.code."""

from __future__ import annotations


class ClientError(Exception):
    """A request the client can fix: names the argument and the rule it broke."""

    code = "BAD_USER_INPUT"

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field


class NotAvailable(Exception):
    """A field whose capability the hub does not offer yet."""

    code = "NOT_AVAILABLE"
