"""The hash chain and its verification, independent of where records are stored."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """What one response showed of one person: never the values, only the field paths."""

    at: datetime
    request_id: str
    client: str
    role: str
    purpose: str | None
    case_reference: str | None
    person_id: int
    fields: tuple[str, ...]
    restricted_until: date | None = None

    def canonical(self) -> bytes:
        return orjson.dumps(
            {
                "at": self.at.isoformat(),
                "request_id": self.request_id,
                "client": self.client,
                "role": self.role,
                "purpose": self.purpose,
                "case_reference": self.case_reference,
                "person_id": self.person_id,
                "fields": list(self.fields),
                "restricted_until": self.restricted_until.isoformat() if self.restricted_until else None,
            },
            option=orjson.OPT_SORT_KEYS,
        )


@dataclass(frozen=True)
class ChainedEntry:
    seq: int
    entry: AuditEntry
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    signature: str


def link_hash(prev_hash: str, entry: AuditEntry) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + entry.canonical()).hexdigest()


def seal(key: Ed25519PrivateKey, seq: int, head_hash: str) -> str:
    return base64.b64encode(key.sign(f"{seq}:{head_hash}".encode())).decode()


def seal_is_valid(public: Ed25519PublicKey, checkpoint: Checkpoint) -> bool:
    try:
        public.verify(base64.b64decode(checkpoint.signature), f"{checkpoint.seq}:{checkpoint.hash}".encode())
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_chain(
    records: Iterable[ChainedEntry], checkpoints: Iterable[Checkpoint], public: Ed25519PublicKey
) -> list[str]:
    """The findings, first break first; an empty list means the trail is whole."""
    findings: list[str] = []
    hashes: dict[int, str] = {}
    prev_hash = GENESIS
    expected = 1
    for record in records:
        if record.seq != expected:
            findings.append(f"record {expected} is missing (the next is {record.seq}): deleted")
            break
        if link_hash(record.prev_hash, record.entry) != record.hash:
            findings.append(f"record {record.seq} was edited: its contents no longer match its hash")
            break
        if record.prev_hash != prev_hash:
            findings.append(
                f"record {record.seq} is not chained to record {record.seq - 1}: "
                f"a record was inserted before it, or records were reordered"
            )
            break
        hashes[record.seq] = record.hash
        prev_hash = record.hash
        expected += 1
    last = expected - 1
    for checkpoint in checkpoints:
        if not seal_is_valid(public, checkpoint):
            findings.append(f"checkpoint at record {checkpoint.seq} has no valid signature")
        elif checkpoint.seq > last and not findings:
            findings.append(
                f"the tail was cut: a checkpoint seals record {checkpoint.seq}, the trail ends at {last}"
            )
        elif checkpoint.seq in hashes and hashes[checkpoint.seq] != checkpoint.hash:
            findings.append(
                f"record {checkpoint.seq} differs from its signed checkpoint: the chain was rebuilt"
            )
        if findings:
            break
    return findings
