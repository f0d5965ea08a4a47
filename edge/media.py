"""GraphQL over HTTP's two answer media types: `application/graphql-response+json` for a
client whose `Accept` asks for it (its status codes tell a request error from a result), else
`application/json`, always 200 for anything the graph executed or refused, as before."""

from __future__ import annotations

from collections.abc import Sequence

from graphql import GraphQLError

from domain.errors import ErrorCode

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"

# A request error's status when its code says more than "bad request".
_REQUEST_ERROR_STATUS = {
    ErrorCode.UNAUTHENTICATED.value: 401,
    ErrorCode.FORBIDDEN.value: 403,
    ErrorCode.RATE_LIMITED.value: 429,
    ErrorCode.INTERNAL_SERVER_ERROR.value: 500,
    ErrorCode.SOURCE_UNAVAILABLE.value: 503,
    ErrorCode.AUDIT_UNAVAILABLE.value: 503,
}


def prefers_graphql_response(accept: str | None) -> bool:
    """Whether `Accept` names `application/graphql-response+json` with a weight at least that
    of `application/json` (wildcards do not count: `*/*` alone keeps `application/json`)."""
    if not accept:
        return False
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights.setdefault(media.lower(), weight)
    wanted = weights.get(GRAPHQL_RESPONSE, 0.0)
    return wanted > 0 and wanted >= weights.get(JSON, 0.0)


def is_request_error(data: object, errors: Sequence[GraphQLError] | None) -> bool:
    """A request that never reached execution (parse, validation, variables, a refusal of the
    whole document): no data, and no error at a field's path."""
    return data is None and bool(errors) and all(error.path is None for error in errors or ())


def request_error_status(codes: Sequence[object]) -> int:
    """The status of a request error answered as `application/graphql-response+json`."""
    for code in codes:
        status = _REQUEST_ERROR_STATUS.get(str(code))
        if status is not None:
            return status
    return 400
