"""The hub's error vocabulary: every code an answer can carry, in one enum, and the errors that
cross parts of the hub (adapters, resolvers, workflows, the gate, the audit) with their codes.

Each error's message is written for the client: it names the field, the rule, the agency or
the record, never SQL, a driver's words or a value of the person's."""

from __future__ import annotations

from enum import StrEnum

from domain.records import AgencyId, DataProblem


class ErrorCode(StrEnum):
    """`extensions.code` of every GraphQL error, and the code of every refusal at the gate."""

    # The client's mistake in the request itself.
    BAD_REQUEST = "BAD_REQUEST"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    # A document sent by its hash (edge/documents.py): not kept (yet), or not a trusted one.
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
    # Who calls, and what they may ask.
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    # Work bounded before it starts and while it runs.
    QUERY_TOO_LARGE = "QUERY_TOO_LARGE"
    QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
    TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
    TOO_MANY_TOKENS = "TOO_MANY_TOKENS"
    RESULT_TOO_LARGE = "RESULT_TOO_LARGE"
    TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"
    # A workflow's rules (the codes of a payload's userErrors, UserErrorCode).
    NOT_FOUND = "NOT_FOUND"
    INVALID_INPUT = "INVALID_INPUT"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    VERIFICATION_FAILED = "VERIFICATION_FAILED"
    CONFLICT = "CONFLICT"
    # The agencies' sources, the audit trail and the hub itself.
    SOURCE_UNAVAILABLE = "SOURCE_UNAVAILABLE"
    SOURCE_DATA_INVALID = "SOURCE_DATA_INVALID"
    AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE"
    NOT_AVAILABLE = "NOT_AVAILABLE"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class UserErrorCode(StrEnum):
    """The codes a mutation's `userErrors` carry (the contract's enum), each an ErrorCode."""

    NOT_FOUND = ErrorCode.NOT_FOUND.value
    INVALID_INPUT = ErrorCode.INVALID_INPUT.value
    NOT_ELIGIBLE = ErrorCode.NOT_ELIGIBLE.value
    VERIFICATION_FAILED = ErrorCode.VERIFICATION_FAILED.value
    CONFLICT = ErrorCode.CONFLICT.value
    FORBIDDEN = ErrorCode.FORBIDDEN.value
    SOURCE_UNAVAILABLE = ErrorCode.SOURCE_UNAVAILABLE.value


class Refusal(Exception):
    """An error the hub answers on purpose, with its code; `field` names the argument when
    one is at fault."""

    code: ErrorCode = ErrorCode.INTERNAL_SERVER_ERROR
    field: str | None = None


class ClientError(Refusal):
    """A request the client can fix: names the argument and the rule it broke."""

    code = ErrorCode.BAD_USER_INPUT

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field


class NotAvailable(Refusal):
    """A field whose capability the hub does not offer here."""

    code = ErrorCode.NOT_AVAILABLE


class Forbidden(Refusal):
    """A field, a type, an argument or a person the caller's grants or scope do not reach;
    `field` names the argument when one was refused."""

    code = ErrorCode.FORBIDDEN

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AuditNotRecorded(Refusal):
    """The response's audit records could not be made durable: its data is withheld."""

    code = ErrorCode.AUDIT_UNAVAILABLE


class AdapterError(Exception):
    """Something an agency's source could not give."""

    code: ErrorCode = ErrorCode.SOURCE_UNAVAILABLE

    def __init__(self, agency: AgencyId, message: str) -> None:
        super().__init__(message)
        self.agency = agency


class SourceDataInvalid(AdapterError):
    """A legacy row whose values cannot be mapped to the graph's."""

    code = ErrorCode.SOURCE_DATA_INVALID

    def __init__(self, problem: DataProblem) -> None:
        super().__init__(problem.agency, problem.describe())
        self.problem = problem


class SourceUnavailable(AdapterError):
    """A source that failed, gave no answer within its time budget, or is cut off by its
    breaker. The message names the agency and why, never SQL or a driver's words."""

    code = ErrorCode.SOURCE_UNAVAILABLE

    def __init__(self, agency: AgencyId, reason: str) -> None:
        super().__init__(agency, f"The {agency} source could not answer ({reason}).")
        self.reason = reason
