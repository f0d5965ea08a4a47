"""A validation rule for text no agency's system stores: NUL (U+0000). PostgreSQL refuses it
in text, so a literal carrying one would otherwise fail inside the hub instead of as the
client's mistake (JSON variables are checked as the request body is read, app.py)."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, StringValueNode
from graphql.validation import ValidationRule

from domain.errors import ErrorCode

NUL_MESSAGE = "Text may not contain NUL (U+0000): no agency's system stores it."


class NoNulInText(ValidationRule):
    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        if "\x00" in node.value:
            self.report_error(GraphQLError(NUL_MESSAGE, node, extensions={"code": ErrorCode.BAD_USER_INPUT}))
