"""Resolvers of the mutations: each runs its workflow and answers what the payload shows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from access import activation
from adapters.card_service.spec import ELECTRONIC_CARD_BY_ID, SOCIAL_SECURITY_CARDS
from adapters.exit_entry.spec import ENTRY_BY_KEY, RESIDENCE_PERMIT_BY_NUMBER, VISA_BY_NUMBER
from adapters.relationships import KeyedRead
from adapters.work_permit.spec import PERMIT_BY_ID
from domain.errors import ClientError, SourceDataInvalid, SourceUnavailable, UserErrorCode
from domain.records import CallerRole, WorkPermit
from resolvers.context import Info
from workflows import cards, exit_entry, permits
from workflows.engine import Journal, UserFailure
from workflows.permits import PermitWork

_Record = TypeVar("_Record")


@dataclass(frozen=True)
class UserErrorData:
    code: str
    message: str
    field: list[str] | None


@dataclass(frozen=True)
class PermitAnswer:
    work_permit: WorkPermit | None
    user_errors: list[UserErrorData]


Body = Callable[[PermitWork, Journal], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Answer:
    """A workflow's answer: the record it made or changed, or why it did nothing."""

    record: Any
    user_errors: list[UserErrorData]


async def run_workflow(
    info: Info,
    kind: str,
    idempotency_key: str | None,
    arguments: dict[str, Any],
    body: Body,
    fetch: Callable[[dict[str, Any]], Awaitable[Any]],
) -> Answer:
    context = info.context
    work = PermitWork(context.sources, context.store, context.today, context.ids, context.hub.permit_keys)
    outcome = await context.workflows.run(
        kind, context.caller.subject, idempotency_key, arguments, lambda journal: body(work, journal)
    )
    if outcome.errors:
        return Answer(None, [UserErrorData(e.code, e.message, e.field) for e in outcome.errors])
    return Answer(await fetch(outcome.result), [])


async def run_permit_workflow(
    info: Info, kind: str, idempotency_key: str | None, arguments: dict[str, Any], body: Body
) -> PermitAnswer:
    context = info.context

    async def permit(result: dict[str, Any]) -> WorkPermit | None:
        reread: WorkPermit | SourceDataInvalid | None = await context.loaders.reread(
            PERMIT_BY_ID, str(result["permit"])
        )
        return _valid(reread)

    answer = await run_workflow(info, kind, idempotency_key, arguments, body, permit)
    return PermitAnswer(answer.record, answer.user_errors)


def permit_key(work: PermitWork, global_id: str) -> str:
    try:
        return work.ids.key_of(global_id, "WorkPermit", "input.workPermitId")
    except ClientError as error:
        raise UserFailure(UserErrorCode.INVALID_INPUT, str(error), ["input", "workPermitId"]) from None


async def apply_for_work_permit(info: Info, arguments: dict[str, Any], key: str | None) -> PermitAnswer:
    return await run_permit_workflow(
        info, "applyForWorkPermit", key, arguments, lambda w, j: permits.apply(w, j, arguments)
    )


async def issue_notification_letter(info: Info, permit_id: str, key: str | None) -> PermitAnswer:
    return await run_permit_workflow(
        info,
        "issueNotificationLetter",
        key,
        {"workPermitId": permit_id},
        lambda w, j: permits.issue_notice(w, j, permit_key(w, permit_id)),
    )


async def reject_work_permit_application(
    info: Info, permit_id: str, reason: str, key: str | None
) -> PermitAnswer:
    return await run_permit_workflow(
        info,
        "rejectWorkPermitApplication",
        key,
        {"workPermitId": permit_id, "reason": reason},
        lambda w, j: permits.reject(w, j, permit_key(w, permit_id), reason),
    )


async def activate_work_permit(info: Info, number: str, entered_on: date, key: str | None) -> PermitAnswer:
    return await run_permit_workflow(
        info,
        "activateWorkPermit",
        key,
        {"workPermitNumber": number, "enteredOn": entered_on},
        lambda w, j: permits.activate(w, j, number, entered_on),
    )


async def extend_work_permit(info: Info, number: str, valid_to: date, key: str | None) -> PermitAnswer:
    return await run_permit_workflow(
        info,
        "extendWorkPermit",
        key,
        {"workPermitNumber": number, "validTo": valid_to},
        lambda w, j: permits.extend(w, j, number, valid_to),
    )


async def change_work_permit(
    info: Info, number: str, changes: dict[str, Any], key: str | None
) -> PermitAnswer:
    return await run_permit_workflow(
        info,
        "changeWorkPermit",
        key,
        {"workPermitNumber": number, **changes},
        lambda w, j: permits.change(w, j, number, changes),
    )


async def cancel_work_permit(info: Info, number: str, reason: str, key: str | None) -> PermitAnswer:
    return await run_permit_workflow(
        info,
        "cancelWorkPermit",
        key,
        {"workPermitNumber": number, "reason": reason},
        lambda w, j: permits.cancel(w, j, number, reason),
    )


# ---------------------------------------------------------------- exit-entry


async def issue_z_visa(info: Info, arguments: dict[str, Any], key: str | None) -> Answer:
    return await run_workflow(
        info,
        "issueZVisa",
        key,
        arguments,
        lambda w, j: exit_entry.issue_z_visa(w, j, arguments),
        lambda result: _reread(info, VISA_BY_NUMBER, result["visa"]),
    )


async def record_entry(info: Info, arguments: dict[str, Any], key: str | None) -> Answer:
    return await run_workflow(
        info,
        "recordEntry",
        key,
        arguments,
        lambda w, j: exit_entry.record_entry(w, j, arguments),
        lambda result: _reread(info, ENTRY_BY_KEY, tuple(result["entry"])),
    )


async def apply_for_residence_permit(info: Info, arguments: dict[str, Any], key: str | None) -> Answer:
    return await run_workflow(
        info,
        "applyForResidencePermit",
        key,
        arguments,
        lambda w, j: exit_entry.apply_for_residence(w, j, arguments),
        lambda result: _reread(info, RESIDENCE_PERMIT_BY_NUMBER, result["residencePermit"]),
    )


async def extend_residence_permit(info: Info, arguments: dict[str, Any], key: str | None) -> Answer:
    return await run_workflow(
        info,
        "extendResidencePermit",
        key,
        arguments,
        lambda w, j: exit_entry.extend_residence(w, j, arguments),
        lambda result: _reread(info, RESIDENCE_PERMIT_BY_NUMBER, result["residencePermit"]),
    )


async def _reread(info: Info, read: KeyedRead[Any], key: Any) -> Any:
    return _valid(await info.context.loaders.reread(read, key))


def _valid(record: _Record | SourceDataInvalid) -> _Record | None:
    """A payload's record, or null where the agency's row does not read as one."""
    return None if isinstance(record, SourceDataInvalid) else record


# ---------------------------------------------------------------- insurance and cards

CARDHOLDER_TOKEN_LIFETIME = timedelta(days=30)
ACTIVATION_PURPOSE = b"activation-code"


def _bound(info: Info) -> cards.Bound:
    caller = info.context.caller
    return cards.Bound(caller.role, caller.person_id, caller.employer)


async def enroll_in_insurance(info: Info, arguments: dict[str, Any], key: str | None) -> Answer:
    context = info.context
    bound = _bound(info)

    async def answer(result: dict[str, Any]) -> tuple[Any, Any]:
        person = (await context.store.persons_by_id([result["person"]]))[0]
        card = None
        if result.get("card"):
            found = await context.loaders.reread_related(SOCIAL_SECURITY_CARDS, result["person"])
            card = next((c for c in found if c.number == result["card"]), None)
        return person, card

    return await run_workflow(
        info, "enrollInInsurance", key, arguments, lambda w, j: cards.enroll(w, j, arguments, bound), answer
    )


async def activate_social_security_card(info: Info, card_number: str, key: str | None) -> Answer:
    context = info.context

    async def answer(result: dict[str, Any]) -> Any:
        holder = (await context.store.person_ids_by_identifier([("CARD_NUMBER", result["card"])]))[0]
        if holder is None:
            return None
        found = await context.loaders.reread_related(SOCIAL_SECURITY_CARDS, holder)
        return next((c for c in found if c.number == result["card"]), None)

    return await run_workflow(
        info,
        "activateSocialSecurityCard",
        key,
        {"cardNumber": card_number},
        lambda w, j: cards.activate_card(w, j, card_number),
        answer,
    )


async def register_electronic_card(info: Info, arguments: dict[str, Any], key: str | None) -> Answer:
    """Registration hands the e-card app's backend a one-time activation code for the person's
    own app, never a token that reads as the person. A retry with the same key answers the same
    code (kept sealed with the run's outcome)."""
    context = info.context
    hub = context.hub
    codes = hub.sealer

    async def answer(result: dict[str, Any]) -> tuple[Any, str | None]:
        card = await _reread(info, ELECTRONIC_CARD_BY_ID, result["electronicCard"])
        opened = codes.open(ACTIVATION_PURPOSE, result["activationCode"])
        return card, opened.decode() if opened else None

    async def body(work: PermitWork, journal: Journal) -> dict[str, Any]:
        registered = await cards.register_electronic_card(
            work, journal, arguments, hub.verifiers, context.caller.subject
        )
        sealed = codes.seal(ACTIVATION_PURPOSE, registered.pop("activationCode").encode())
        return {**registered, "activationCode": sealed}

    return await run_workflow(info, "registerElectronicCard", key, arguments, body, answer)


async def revoke_electronic_card(info: Info, card_id: str, reason: str, key: str | None) -> Answer:
    context = info.context

    async def answer(result: dict[str, Any]) -> Any:
        return await _reread(info, ELECTRONIC_CARD_BY_ID, result["electronicCard"])

    return await run_workflow(
        info,
        "revokeElectronicCard",
        key,
        {"electronicCardId": card_id, "reason": reason},
        lambda w, j: cards.revoke_electronic_card(w, j, card_id, reason, context.caller.subject),
        answer,
    )


async def reissue_activation_code(info: Info, arguments: dict[str, Any], key: str | None) -> Answer:
    """A new code for the person's new phone; the person's access log shows that the card
    service was handed one (an audit record naming `ElectronicCard.activationCode`)."""
    context = info.context
    hub = context.hub
    codes = hub.sealer

    async def body(work: PermitWork, journal: Journal) -> dict[str, Any]:
        issued = await cards.reissue_activation_code(
            work, journal, arguments, hub.verifiers, context.caller.subject
        )
        return {**issued, "activationCode": codes.seal(ACTIVATION_PURPOSE, issued["activationCode"].encode())}

    async def answer(result: dict[str, Any]) -> tuple[Any, str | None]:
        await _audit_handover(info, result["person"], ("ElectronicCard.activationCode",))
        card = await _reread(info, ELECTRONIC_CARD_BY_ID, result["electronicCard"])
        opened = codes.open(ACTIVATION_PURPOSE, result["activationCode"])
        return card, opened.decode() if opened else None

    return await run_workflow(info, "reissueActivationCode", key, arguments, body, answer)


async def _audit_handover(info: Info, person_id: int, fields: tuple[str, ...]) -> None:
    """Record, before it is answered, that the caller was handed a credential of the person's."""
    context = info.context
    if context.audit is None:
        return
    caller = context.caller
    entry = caller.audit_entry(person_id, fields, datetime.now(UTC))
    await context.audit.append([entry])


async def activate_cardholder(info: Info, arguments: dict[str, Any]) -> Answer:
    """The app's exchange of its activation code for a cardholder token (no token needed)."""
    context = info.context
    hub = context.hub
    work = PermitWork(context.sources, context.store, context.today, context.ids)
    subject = activation.new_subject()

    async def belongs_to(person_id: int) -> bool:
        return await cards.is_named_holder(work, person_id, arguments["name"], arguments["workPermitNumber"])

    try:
        person_id = await activation.exchange(context.store, arguments["activationCode"], belongs_to, subject)
    except activation.ActivationRefused as refused:
        return Answer(None, [UserErrorData(refused.code, str(refused), refused.field)])
    except SourceUnavailable as unavailable:  # the name check needs the agencies' records
        return Answer(
            None, [UserErrorData(UserErrorCode.SOURCE_UNAVAILABLE, f"{unavailable} Try again later.", None)]
        )
    token = hub.tokens.issue(
        subject=subject, role=CallerRole.CARDHOLDER, ttl=CARDHOLDER_TOKEN_LIFETIME, person_id=person_id
    )
    return Answer(token, [])
