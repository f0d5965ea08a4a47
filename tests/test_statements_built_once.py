"""No read statement is built per request: a second request for another person runs the very
statement objects the first one ran, only with other bound keys (issue 11: building them was
a fifth of a request's CPU)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import Select, event
from sqlalchemy.engine import Engine

from tests.conftest import graphql
from tests.test_read_graph import EVERYTHING

# Set while a request of this test runs: the listener records only that request's statements
# (the tasks it starts inherit it; the hub's background tasks, started before, do not).
_recording: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("recording", default=None)


def _record(_conn: Any, statement: Any, *_args: Any) -> None:
    executed = _recording.get()
    if executed is not None and isinstance(statement, Select):
        executed.append(statement)  # kept alive: ids are compared, and must not be reused


@contextmanager
def selects_executed() -> Iterator[list[Any]]:
    """The SELECT statements every engine of the process executed within the block, as objects."""
    executed: list[Any] = []
    token = _recording.set(executed)
    event.listen(Engine, "before_execute", _record)
    try:
        yield executed
    finally:
        event.remove(Engine, "before_execute", _record)
        _recording.reset(token)


async def _two_persons_known_everywhere(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    body = await graphql(
        client,
        "{ persons(first: 100) { edges { node { id identityLinks { agency }"
        " workPermit { number } socialSecurityCard { number } passports { number nationality } } } } }",
    )
    nodes = [e["node"] for e in body["data"]["persons"]["edges"]]
    known = [
        n
        for n in nodes
        if len({link["agency"] for link in n["identityLinks"]}) == 5
        and n["workPermit"]
        and n["socialSecurityCard"]
    ]
    assert len(known) >= 2, "the estate has two persons whom all five agencies know"
    return known[:2]


async def test_a_second_person_request_builds_no_statement(client: httpx.AsyncClient) -> None:
    persons = await _two_persons_known_everywhere(client)
    query = "query($l: PersonLookup!) { person(lookup: $l) {" + EVERYTHING + "} }"
    lookups: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "id": lambda p: {"id": p["id"]},
        "workPermitNumber": lambda p: {"workPermitNumber": p["workPermit"]["number"]},
        "cardNumber": lambda p: {"cardNumber": p["socialSecurityCard"]["number"]},
        "passport": lambda p: {"passport": p["passports"][0]},
    }
    for kind, lookup in lookups.items():
        executed: list[list[Any]] = []
        for person in persons:
            with selects_executed() as statements:
                body = await graphql(client, query, {"l": lookup(person)})
            assert "errors" not in body, body["errors"]
            assert body["data"]["person"]["id"] == person["id"]
            executed.append(statements)
        first, second = executed
        assert len(second) >= 6, f"{kind}: the request read the store and every agency"
        seen = {id(s) for s in first}
        built = [str(s).splitlines()[0] for s in second if id(s) not in seen]
        assert not built, f"lookup by {kind}: statements built for the second request: {built}"
