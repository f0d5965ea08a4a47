"""The permit services of the e-card app outside the graph: the published verification keys,
and the cardholder's QR code image and signed permit document.

`/.well-known/jwks.json` is open to anyone (an office verifies offline with it). The two
downloads are a cardholder's own data: they pass the gate like the graph, read the token's
person's current permit through the same declared reads, and write an audit record before
anything leaves; if the record cannot be written, the data is withheld."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import segno
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from access.caller import Caller
from access.qr import PermitKeys, permit_keys
from adapters.work_permit.spec import CURRENT_WORK_PERMIT
from audit.log import AuditUnavailable
from domain.errors import AdapterError, ErrorCode, SourceDataInvalid
from domain.records import SHANGHAI, CallerRole, WorkPermit, WorkPermitStatus
from edge.gateway import Gate, Refused
from identity.store import PersonCore
from resolvers.hub import HubState
from resolvers.loaders import Loaders
from resolvers.verification import full_name

JWKS_PATH = "/.well-known/jwks.json"
QR_IMAGE_PATH = "/cardholder/permit-qr.svg"
DOCUMENT_PATH = "/cardholder/permit.jws"
# What each download shows of the person, as its audit record names it.
QR_IMAGE_FIELDS = ("WorkPermit.qrCode",)
DOCUMENT_FIELDS = ("WorkPermit.document",)
PRIVATE = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


def permit_routes(gate: Gate, data_dir: Path) -> list[Route]:
    """The routes, signing with the data directory's permit keys (created here on first run)."""
    downloads = PermitDownloads(permit_keys(data_dir))
    return [
        Route(JWKS_PATH, downloads.jwks, methods=["GET"]),
        Route(QR_IMAGE_PATH, gate.guard(downloads.qr_image, CallerRole.CARDHOLDER), methods=["GET"]),
        Route(DOCUMENT_PATH, gate.guard(downloads.document, CallerRole.CARDHOLDER), methods=["GET"]),
    ]


@dataclass(frozen=True)
class Holding:
    """The cardholder and their current permit period (None: they have none)."""

    person: PersonCore
    permit: WorkPermit | None
    today: date


class PermitDownloads:
    def __init__(self, keys: PermitKeys) -> None:
        self.keys = keys
        self._jwks = orjson.dumps(keys.jwks())

    async def jwks(self, _request: Request) -> Response:
        return Response(
            self._jwks,
            media_type="application/jwk-set+json",
            headers={"cache-control": "public, max-age=3600", "access-control-allow-origin": "*"},
        )

    async def qr_image(self, request: Request, caller: Caller) -> Response:
        """The current permit's QR code as an SVG image, for a permit valid today."""
        holding = await _holding(request, caller)
        permit = holding.permit
        qr_code = None
        if permit is not None and permit.status is WorkPermitStatus.VALID:
            qr_code = self.keys.issue_qr(permit.number, _person_global_id(request, holding.person.id))
        await _audit(request, caller, holding.person.id, QR_IMAGE_FIELDS)
        if qr_code is None:
            raise Refused(404, ErrorCode.NOT_FOUND, "There is no valid work permit to make a QR code for.")
        image = io.BytesIO()
        segno.make(qr_code, error="m", micro=False).save(
            image, kind="svg", scale=4, border=4, title="Work permit QR code"
        )
        return Response(
            image.getvalue(),
            media_type="image/svg+xml",
            headers={**PRIVATE, "content-disposition": 'attachment; filename="work-permit-qr.svg"'},
        )

    async def document(self, request: Request, caller: Caller) -> Response:
        """The current permit period as a signed statement (compact JWS, `application/jose`)."""
        holding = await _holding(request, caller)
        await _audit(request, caller, holding.person.id, DOCUMENT_FIELDS)
        if holding.permit is None:
            raise Refused(404, ErrorCode.NOT_FOUND, "There is no work permit to document.")
        now = datetime.now(UTC).replace(microsecond=0)
        signed = self.keys.sign_document(
            statement(holding, now), _person_global_id(request, holding.person.id), now
        )
        return Response(
            signed.encode(),
            media_type="application/jose",
            headers={**PRIVATE, "content-disposition": 'attachment; filename="work-permit.jws"'},
        )


def statement(holding: Holding, now: datetime) -> dict[str, Any]:
    """What the document states: the permit period as it stands on the hub's today (`asOf`)."""
    permit = holding.permit
    assert permit is not None
    employer = permit.employer
    return {
        "issuedAt": now.astimezone(SHANGHAI).isoformat(),
        "asOf": holding.today.isoformat(),
        "number": permit.number,
        "status": permit.status.value,
        "category": permit.category.value,
        "validFrom": permit.valid_from.isoformat() if permit.valid_from else None,
        "validTo": permit.valid_to.isoformat() if permit.valid_to else None,
        "employer": {"name": employer.name, "creditCode": employer.credit_code} if employer else None,
        "holderName": full_name(holding.person.surname, holding.person.given_names),
    }


def _person_global_id(request: Request, person_id: int) -> str:
    hub: HubState = request.app.state.hub
    return hub.ids.encode("Person", person_id)


async def _holding(request: Request, caller: Caller) -> Holding:
    """The token's person and their current permit period, read as the graph reads them."""
    hub: HubState = request.app.state.hub
    today = hub.settings.today()
    loaders = Loaders(hub.sources, hub.store, None, today)
    if caller.person_id is None:  # a cardholder token always names its person
        raise Refused(403, ErrorCode.FORBIDDEN, "The token names no person.")
    person = await loaders.person_by_id.load(caller.person_id)
    if person is None:
        raise Refused(404, ErrorCode.NOT_FOUND, "The token's person is not known to the hub.")
    try:
        permit = await loaders.person_relation(CURRENT_WORK_PERMIT).load(person.id)
    except SourceDataInvalid as invalid:
        raise Refused(502, ErrorCode.SOURCE_DATA_INVALID, str(invalid)) from None
    except AdapterError as error:
        raise Refused(
            503, ErrorCode.SOURCE_UNAVAILABLE, f"The {error.agency} source could not answer."
        ) from None
    return Holding(person, permit, today)


async def _audit(request: Request, caller: Caller, person_id: int, fields: tuple[str, ...]) -> None:
    """One durable audit record for what the response shows; without it nothing is shown."""
    hub: HubState = request.app.state.hub
    if not hub.settings.audit:
        return
    entry = caller.audit_entry(person_id, fields, datetime.now(UTC))
    try:
        await hub.audit.append([entry])
    except AuditUnavailable:
        raise Refused(
            503,
            ErrorCode.AUDIT_UNAVAILABLE,
            "The access could not be recorded in the audit trail, so no data is returned.",
        ) from None
