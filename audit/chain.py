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
    # The caller's W3C trace id; chained when present, so records without one (all those
    # written before it existed) keep their hashes.
    trace_id: str | None = None

    def canonical(self) -> bytes:
        traced = {"trace_id": self.trace_id} if self.trace_id is not None else {}
        return orjson.dumps(
            {
                **traced,
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


@dataclass(frozen=True)
class Witnessed:
    """What a witness holds: each checkpoint with where it stands (`line 3`, `row 3`), and
    where it holds something that is no checkpoint at all."""

    checkpoints: list[tuple[str, Checkpoint]]
    unreadable: list[str]


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
    """The findings, first break first; an empty list means the trail is whole.

    The chain names the first record that was edited, deleted, inserted or reordered; the
    signed checkpoints catch what the chain alone cannot: a cut tail, a chain rebuilt with
    fresh hashes, and records appended after the last seal."""
    records = list(records)
    # Where each stored hash sits now: a record chained to a later one was moved.
    position = {record.hash: record.seq for record in records}
    hashes: dict[int, str] = {}
    verified: dict[str, int] = {GENESIS: 0}
    prev_hash = GENESIS
    expected = 1
    for record in records:
        if record.seq != expected:
            return [f"record {expected} is missing (the next is {record.seq}): deleted"]
        if link_hash(record.prev_hash, record.entry) != record.hash:
            return [f"record {record.seq} was edited: its contents no longer match its hash"]
        if record.prev_hash != prev_hash:
            return [_unchained(record, verified, position)]
        hashes[record.seq] = record.hash
        verified[record.hash] = record.seq
        prev_hash = record.hash
        expected += 1
    last = expected - 1
    sealed = 0  # the last record a matching checkpoint seals
    for checkpoint in sorted(checkpoints, key=lambda c: c.seq):
        if not seal_is_valid(public, checkpoint):
            return [f"checkpoint at record {checkpoint.seq} has no valid signature: it was forged"]
        if checkpoint.seq > last:
            return [f"the tail was cut: a checkpoint seals record {checkpoint.seq}, the trail ends at {last}"]
        if hashes.get(checkpoint.seq) != checkpoint.hash:
            # The chain holds, so its hashes were recomputed after a change made after the
            # last matching seal and at or before this one.
            changed = _span(sealed + 1, checkpoint.seq)
            return [
                f"{changed if sealed + 1 == checkpoint.seq else f'one of {changed}'} was changed and the "
                f"chain rebuilt: record {checkpoint.seq} differs from its signed checkpoint"
            ]
        sealed = checkpoint.seq
    if last > sealed:
        # Every commit seals its own head, so an unsealed record was not written by the hub.
        return [
            f"{_span(sealed + 1, last)} {'is' if sealed + 1 == last else 'are'} sealed by no checkpoint: "
            f"appended outside the hub, or the checkpoints sealing them were deleted"
        ]
    return []


def verify_against_witness(
    record_hashes: dict[int, str],
    checkpoints: Iterable[Checkpoint],
    witnessed: Witnessed | None,
    public: Ed25519PublicKey,
    witness: str,
) -> list[str]:
    """The findings of holding the trail (its records' stored hashes by seq, its checkpoints)
    against what its witness holds (None: there is no witness); `witness` names it.

    Every checkpoint the witness holds must be in the trail with the same seq and hash, and the
    trail must reach the newest: so a trail emptied or cut together with its checkpoints, and
    checkpoints deleted from it, which the chain alone cannot tell, are caught."""
    last = max(record_hashes, default=0)
    if witnessed is None or not (witnessed.checkpoints or witnessed.unreadable):
        if not last:
            return []  # a new trail, not sealed yet
        missing = "is missing" if witnessed is None else "holds no checkpoint"
        return [f"{witness} {missing}, yet the trail holds records up to {last}: nothing vouches for them"]
    findings = [
        f"the witness's {where} is no checkpoint: it was damaged or forged" for where in witnessed.unreadable
    ]
    genuine: dict[tuple[int, str], Checkpoint] = {}
    for where, checkpoint in witnessed.checkpoints:
        if seal_is_valid(public, checkpoint):
            genuine[(checkpoint.seq, checkpoint.hash)] = checkpoint
        else:
            findings.append(
                f"the witness's {where} (record {checkpoint.seq}) has no valid signature: it was forged"
            )
    newest = max((seq for seq, _ in genuine), default=0)
    if newest > last:
        findings.append(
            f"the tail was cut: the witness seals record {newest}, the trail ends at {last}"
            if last
            else f"the trail was emptied: the witness seals records up to {newest}, the trail holds none"
        )
    # Checkpoints past the trail's end are the cut tail's, already named.
    in_trail = {(checkpoint.seq, checkpoint.hash) for checkpoint in checkpoints}
    absent = sorted(key for key in genuine if key[0] <= last and key not in in_trail)
    deleted = [seq for seq, digest in absent if record_hashes.get(seq) == digest]
    rebuilt = [seq for seq, digest in absent if record_hashes.get(seq) != digest]
    if deleted:
        one = len(deleted) == 1
        findings.append(
            f"the checkpoint{'' if one else 's'} sealing {_records(deleted)} {'was' if one else 'were'} "
            f"deleted from the trail: the witness holds {'it' if one else 'them'}"
        )
    if rebuilt:
        one = len(rebuilt) == 1
        findings.append(
            f"{_records(rebuilt)} {'differs' if one else 'differ'} from the witness's "
            f"checkpoint{'' if one else 's'}, which the trail no longer holds: the chain was rebuilt"
        )
    return findings


def _span(first: int, last: int) -> str:
    return f"record {first}" if first == last else f"records {first}..{last}"


def _records(seqs: list[int]) -> str:
    """`record 4`, `records 5..7`, `records 2, 5..7`: runs of consecutive records as spans."""
    runs: list[list[int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][1] + 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    if len(seqs) == 1:
        return f"record {seqs[0]}"
    return "records " + ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs)


def _unchained(record: ChainedEntry, verified: dict[str, int], position: dict[str, int]) -> str:
    """Why a record whose own hash holds does not follow the record before it."""
    before = verified.get(record.prev_hash)
    if before is not None:
        return (
            f"{_span(before + 1, record.seq - 1)} {'was' if before + 2 == record.seq else 'were'} "
            f"inserted: record {record.seq} is chained to record {before}, not to record {record.seq - 1}"
        )
    moved_from = position.get(record.prev_hash)
    if moved_from is not None:
        return (
            f"record {record.seq} was reordered: it is chained to record {moved_from}, "
            f"not to record {record.seq - 1}"
        )
    return (
        f"record {record.seq} is not chained to record {record.seq - 1}: a record before it was "
        f"deleted and the rest renumbered, or it was forged"
    )
