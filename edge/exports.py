"""`GET /exports/<name>?format=csv|ndjson|parquet&...`: an export streamed as a file, behind
the graph's gate (the same token, X-Purpose and rate limit) and the grants of the graph's
fields it answers from: aggregates for REPORTING, person-level exports for the work-permit
authority and an employer (its own staff only).

Audit: each batch's persons are recorded, durably, before the batch's bytes are sent. If the
trail cannot take the first batch the answer is 503 `AUDIT_UNAVAILABLE`; if it fails later
the stream is cut there, so the file received ends before the first row nobody recorded (a
cut file fails its transfer: no final chunk, no Parquet footer)."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from access.caller import Caller
from access.policy import Grant, Policy
from audit.log import AuditUnavailable
from domain.errors import AdapterError, ClientError, ErrorCode
from domain.records import CallerRole
from edge.gateway import Gate, Refused
from exports.catalog import EXPORTS, Export
from exports.formats import FORMATS, Writer
from exports.table import Batch, Params, Reader
from resolvers.hub import HubState

EXPORT_PATH = "/exports/{name}"
# Who may call it at all; which export each may run, their grants decide.
ROLES = (CallerRole.REPORTING, CallerRole.WORK_PERMIT_AUTHORITY, CallerRole.EMPLOYER)
ROWS_HEADER = "x-export-rows"
PRIVATE = {"cache-control": "no-store", "x-content-type-options": "nosniff"}

log = logging.getLogger("hub.exports")


def export_routes(gate: Gate) -> list[Route]:
    return [Route(EXPORT_PATH, gate.guard(Exports(gate.policy).serve, *ROLES), methods=["GET"])]


class AuditCut(Exception):
    """The trail could not record a batch's persons: the stream stops before that batch."""


class Exports:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    async def serve(self, request: Request, caller: Caller) -> Response:
        hub: HubState = request.app.state.hub
        export = _export(request.path_params["name"])
        params = _single_values(request)
        format_name = params.pop("format", "csv")
        file_format = FORMATS.get(format_name)
        if file_format is None:
            raise Refused(400, ErrorCode.BAD_USER_INPUT, f"format: must be one of {', '.join(FORMATS)}")
        self._check_grant(export, caller)
        today = hub.settings.today()
        reader = Reader(
            hub.sources,
            hub.store,
            hub.ids,
            today,
            hub.settings.export_batch_rows,
            employer=caller.employer if caller.role is CallerRole.EMPLOYER else None,
        )
        try:
            extract = await export.open(Params(params), reader)
            # The first read answers here, so a source that cannot answer is a 503, not a cut file.
            first = await anext(extract.batches, None)
        except ClientError as error:
            raise Refused(400, ErrorCode.BAD_USER_INPUT, str(error)) from None
        except AdapterError as error:
            raise Refused(503, error.code, f"The {error.agency} source could not answer.") from None
        file_name = f"{export.name}-{today.isoformat()}.{file_format.extension}"
        headers = {**PRIVATE, "content-disposition": f'attachment; filename="{file_name}"'}
        if extract.rows is not None:
            headers[ROWS_HEADER] = str(extract.rows)
        if first is not None and first.person_ids:
            try:
                await _audit(hub, caller, export, first.person_ids)
            except AuditCut:
                raise Refused(
                    503,
                    ErrorCode.AUDIT_UNAVAILABLE,
                    "The access could not be recorded in the audit trail, so no data is returned.",
                ) from None
        writer = file_format.writer(extract.columns)
        body = _body(hub, caller, export, writer, first, extract.batches)
        return StreamingResponse(body, media_type=file_format.media_type, headers=headers)

    def _check_grant(self, export: Export, caller: Caller) -> None:
        grant = self.policy.grant(caller.role, caller.purpose)
        if not all(_reads(self.policy, grant, t, f) for t, f in export.reads):
            kind = "named persons" if export.person_level else "aggregates its grant does not read"
            raise Refused(
                403,
                ErrorCode.FORBIDDEN,
                f"{caller.role.value} may not export {export.name}: it shows {kind}.",
            )
        if caller.role is CallerRole.EMPLOYER and not caller.employer:
            raise Refused(403, ErrorCode.FORBIDDEN, "The EMPLOYER token is bound to no credit code.")


def _export(name: str) -> Export:
    export = EXPORTS.get(name)
    if export is None:
        raise Refused(
            404, ErrorCode.NOT_FOUND, f"name: there is no export {name!r}; there are {', '.join(EXPORTS)}."
        )
    return export


def _single_values(request: Request) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in values:
            raise Refused(400, ErrorCode.BAD_USER_INPUT, f"{key}: is given more than once")
        values[key] = value
    return values


def _reads(policy: Policy, grant: Grant, type_name: str, field_name: str) -> bool:
    """Whether the grant reads the field, as the graph decides it for a request."""
    guarded = (type_name, field_name) in policy.guarded
    return policy.reaches(grant, type_name) and (not guarded or (type_name, field_name) in grant.readable)


async def _body(
    hub: HubState,
    caller: Caller,
    export: Export,
    writer: Writer,
    first: Batch | None,
    batches: AsyncGenerator[Batch, None],
) -> AsyncIterator[bytes]:
    """The file, batch by batch; the first batch was audited before the response started."""
    try:
        yield writer.start()
        if first is None:
            yield writer.end()
            return
        yield writer.batch(first.rows)
        async for batch in batches:
            if batch.person_ids:
                await _audit(hub, caller, export, batch.person_ids)
            yield writer.batch(batch.rows)
        yield writer.end()
    finally:
        await batches.aclose()  # a client gone mid-stream: the open read ends with it


async def _audit(hub: HubState, caller: Caller, export: Export, person_ids: list[int]) -> None:
    if not hub.settings.audit:
        return
    now = datetime.now(UTC)
    try:
        await hub.audit.append([caller.audit_entry(p, export.audited_fields, now) for p in person_ids])
    except AuditUnavailable:
        log.error(
            "export %s for request %s cut: the audit trail is unavailable", export.name, caller.request_id
        )
        raise AuditCut from None
