"""The user stories in docs/examples, run as their callers run them: each operation of a
document in order, under the caller its first line names, with the variables it declares
taken from a person every agency knows (and from what an earlier operation answered)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from adapters.registry import DEFAULT_AGENCIES
from domain.records import CallerRole
from tests.conftest import Estate, graphql, person_id_of

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {p.stem: p.read_text() for p in sorted((ROOT / "docs" / "examples").glob("*.graphql"))}
CALLER = re.compile(r"^# Caller: (\w+)(?:, purpose ([\w-]+))?$", re.MULTILINE)
# The operations of an example, in order, with the variables each declares.
OPERATION = re.compile(r"^(query|mutation) (\w+)(?:\(([^)]*)\))?", re.MULTILINE)
VARIABLE = re.compile(r"\$(\w+)")


@dataclass(frozen=True)
class Answer:
    kind: str  # query or mutation
    name: str
    body: dict[str, Any]


def caller_of(document: str) -> tuple[CallerRole, str | None]:
    match = CALLER.search(document)
    assert match is not None, "an example names its caller on its first line"
    return CallerRole(match.group(1)), match.group(2)


async def known_to_all(client: httpx.AsyncClient) -> dict[str, Any]:
    """A person every agency knows, with a card in use (`client` reads every field)."""
    listing = await graphql(
        client,
        "{ persons(first: 100) { edges { node { id workPermit { number } socialSecurityCard { number status }"
        " identityLinks { agency } } } } }",
    )
    return next(
        e["node"]
        for e in listing["data"]["persons"]["edges"]
        if e["node"]["workPermit"]
        and len({ln["agency"] for ln in e["node"]["identityLinks"]}) == len(DEFAULT_AGENCIES)
        and e["node"]["socialSecurityCard"]["status"] == "IN_USE"
    )


async def run_example(
    policy_client: httpx.AsyncClient, client: httpx.AsyncClient, estate: Estate, document: str
) -> list[Answer]:
    """Every operation of the example, in order; a payment an operation answers is the next
    operations' `$paymentId`."""
    role, purpose = caller_of(document)
    person = await known_to_all(client)
    bound: dict[str, Any] = {}
    if role is CallerRole.CARDHOLDER:
        bound["person_id"] = person_id_of(estate.settings, person["id"])
    known: dict[str, Any] = {
        "lookup": {"workPermitNumber": person["workPermit"]["number"]},
        "card": person["socialSecurityCard"]["number"],
    }
    headers = estate.headers(role, purpose, **bound)
    answers = []
    for kind, name, declared in OPERATION.findall(document):
        variables = {v: known[v] for v in VARIABLE.findall(declared) if v in known}
        response = await policy_client.post(
            "/graphql",
            json={"query": document, "operationName": name, "variables": variables},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        answers.append(Answer(kind, name, body))
        for value in (body.get("data") or {}).values():
            if isinstance(value, dict) and value.get("benefitPayment"):
                known["paymentId"] = value["benefitPayment"]["id"]
    return answers
