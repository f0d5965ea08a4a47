"""Documents known by their SHA-256: automatic persisted queries and trusted documents.

Automatic persisted queries (APQ, the protocol of Apollo Client's persisted-queries link and
of other clients): a request carries `extensions.persistedQuery = {version: 1, sha256Hash: H}`.
Without a `query`, the hub runs the document it keeps under H, or answers
`PERSISTED_QUERY_NOT_FOUND` (HTTP 200, message `PersistedQueryNotFound`, which clients look
for), and the client sends the request again with its `query`. With a `query`, H must be the
query's hash (else 400 naming `extensions.persistedQuery.sha256Hash`) and the document is kept.
Each process keeps at most MAX_KEPT documents, the most recently used first; with
HUB_REDIS_URL they are also kept in Redis for every process (shared_documents.py), so a
document registered through one process runs by its hash through any other.

Trusted documents (HUB_TRUSTED_DOCUMENTS, a JSON file, docs/decisions.md "Trusted
documents"): as agency frontends deploy them, the documents each client may run, built with
the frontend and installed with the hub:

    {"documents": {"<sha256 of the text>": "query AgencyDesk(...) { ... }"},
     "clients": {"EXIT_ENTRY": ["<sha256>"], "desk-app-7": ["<sha256>"], "anonymous": [...]}}

A client key is a role or a token's subject (`anonymous`: the callers without a token). A
caller runs the documents listed for its role and for its subject, sent by hash alone or as
text; any other document is refused with 403 `PERSISTED_QUERY_NOT_IN_LIST`, and nothing is
learned from requests in this mode.

Both are applied at the gate, after the caller is admitted, by rewriting the request into one
with its `query`: the view, the parser's and the validator's caches (keyed by the text) then
treat it as any other request.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.types import Scope

from access.caller import Caller
from domain.errors import ErrorCode
from edge.shared_documents import SharedDocuments

MAX_KEPT = 10_000  # per process, and in Redis (edge/shared_documents.py)
ANONYMOUS = "anonymous"


class DocumentRefused(Exception):
    """A request the document rules answer themselves: its HTTP status, code and message."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class TrustedDocuments:
    """The documents of HUB_TRUSTED_DOCUMENTS, and which clients may run each."""

    documents: dict[str, str]
    clients: dict[str, frozenset[str]]

    @classmethod
    def load(cls, path: Path) -> TrustedDocuments:
        """The file's documents; anything wrong in it stops the start, naming the entry."""
        try:
            raw = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as error:
            raise ValueError(f"HUB_TRUSTED_DOCUMENTS: {path} cannot be read as JSON ({error})") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("documents"), dict):
            raise ValueError(f"HUB_TRUSTED_DOCUMENTS: {path} needs a `documents` object of hash: text")
        documents: dict[str, str] = {}
        for digest, text in raw["documents"].items():
            if not isinstance(text, str) or sha256_of(text) != digest.lower():
                raise ValueError(f"HUB_TRUSTED_DOCUMENTS: documents.{digest} is not the SHA-256 of its text")
            documents[digest.lower()] = text
        clients: dict[str, frozenset[str]] = {}
        for client, hashes in (raw.get("clients") or {}).items():
            if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
                raise ValueError(f"HUB_TRUSTED_DOCUMENTS: clients.{client} must be a list of hashes")
            unknown = [h for h in hashes if h.lower() not in documents]
            if unknown:
                raise ValueError(f"HUB_TRUSTED_DOCUMENTS: clients.{client} lists unknown documents {unknown}")
            clients[client] = frozenset(h.lower() for h in hashes)
        return cls(documents, clients)

    def allowed(self, caller: Caller) -> frozenset[str]:
        if not caller.authenticated:
            return self.clients.get(ANONYMOUS, frozenset())
        return self.clients.get(caller.role.value, frozenset()) | self.clients.get(
            caller.subject, frozenset()
        )


def _hash_of(persisted: Any) -> str:
    """The hash of `extensions.persistedQuery`, in lower case, or the rule it breaks."""
    if not isinstance(persisted, dict) or persisted.get("version", 1) != 1:
        raise DocumentRefused(
            400, ErrorCode.BAD_REQUEST, "extensions.persistedQuery must be an object of version 1."
        )
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or len(digest) != 64:
        raise DocumentRefused(
            400,
            ErrorCode.BAD_REQUEST,
            "extensions.persistedQuery.sha256Hash must be the document's SHA-256, 64 hex digits.",
        )
    return digest.lower()


class KnownDocuments:
    """The documents a gate runs by hash: those clients registered (APQ), or only the trusted."""

    def __init__(
        self, trusted: TrustedDocuments | None = None, shared: SharedDocuments | None = None
    ) -> None:
        self.trusted = trusted
        self.shared = shared
        self.kept: OrderedDict[str, str] = OrderedDict()

    async def rewrite(self, scope: Scope, body: bytes, caller: Caller) -> tuple[Scope, bytes]:
        """The request with its document's text in `query`, or DocumentRefused. Requests
        that are not a GraphQL request object (a batch, broken JSON) pass unchanged: the view
        answers them as before."""
        if scope["method"] == "GET":
            parameters = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            try:
                extensions = orjson.loads(parameters["extensions"]) if "extensions" in parameters else None
            except orjson.JSONDecodeError:
                return scope, body  # the view names the broken parameter
            query = await self.document(parameters.get("query"), extensions, caller)
            if query is None or parameters.get("query") == query:
                return scope, body
            parameters["query"] = query
            return {**scope, "query_string": urlencode(parameters).encode("latin-1")}, body
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return scope, body
        if not isinstance(request, dict):
            return scope, body
        query = await self.document(request.get("query"), request.get("extensions"), caller)
        if query is None or request.get("query") == query:
            return scope, body
        return scope, orjson.dumps({**request, "query": query})

    async def document(self, query: Any, extensions: Any, caller: Caller) -> str | None:
        """The text to run: the query sent, or the one kept under the hash sent; None where
        the request has no document (the view or the protocol answers it); DocumentRefused."""
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        digest = None if persisted is None else _hash_of(persisted)
        if isinstance(query, str) and digest is not None and sha256_of(query) != digest:
            raise DocumentRefused(
                400,
                ErrorCode.BAD_REQUEST,
                "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query sent.",
            )
        if self.trusted is not None:
            return self._trusted(query, digest, caller)
        if isinstance(query, str):
            if digest is not None:
                new = digest not in self.kept
                self._keep(digest, query)
                if new and self.shared is not None:
                    await self.shared.keep(digest, query)
            return query
        if digest is None:
            return None  # no document at all: the view answers it
        kept = self.kept.get(digest)
        if kept is None and self.shared is not None:
            found = await self.shared.find(digest)  # registered through another process
            # Run only what is the hash's text, whatever else may write to Redis.
            if found is not None and sha256_of(found) == digest:
                kept = found
                self._keep(digest, kept)
        if kept is None:
            raise DocumentRefused(200, ErrorCode.PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
        self.kept.move_to_end(digest)
        return kept

    def _trusted(self, query: Any, digest: str | None, caller: Caller) -> str | None:
        assert self.trusted is not None
        if digest is None:
            if not isinstance(query, str):
                return None
            digest = sha256_of(query)
        if digest not in self.trusted.allowed(caller):
            who = caller.role.value if caller.authenticated else "a caller without a token"
            raise DocumentRefused(
                403,
                ErrorCode.PERSISTED_QUERY_NOT_IN_LIST,
                f"This document is not among the trusted documents of {who} (HUB_TRUSTED_DOCUMENTS): "
                "send one of them, by its extensions.persistedQuery.sha256Hash.",
            )
        return self.trusted.documents[digest]

    def _keep(self, digest: str, query: str) -> None:
        self.kept[digest] = query
        self.kept.move_to_end(digest)
        while len(self.kept) > MAX_KEPT:
            self.kept.popitem(last=False)
