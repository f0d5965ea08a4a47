"""What one hub process serves with, made once when it opens: its settings, the agencies'
sources, its own store, the audit trail, the policy, the workflow runner and the keys its
tokens, ids, cursors, QR codes and verifications use."""

from __future__ import annotations

from dataclasses import dataclass

from access.attestation import Verifiers
from access.policy import Policy
from access.qr import PermitKeys
from access.tokens import TokenAuthority
from adapters import Sources
from audit.log import AuditLog
from identity.store import HubStore
from notifications.seats import Seats
from opaque.cursors import Cursors
from opaque.ids import GlobalIds
from opaque.sealing import Sealer
from settings import Settings
from workflows.engine import WorkflowRunner


@dataclass(frozen=True)
class HubState:
    settings: Settings
    sources: Sources
    store: HubStore
    audit: AuditLog
    policy: Policy
    workflows: WorkflowRunner
    tokens: TokenAuthority
    ids: GlobalIds
    cursors: Cursors
    verifiers: Verifiers
    sealer: Sealer  # activation codes kept in a run's outcome
    permit_keys: PermitKeys  # QR codes and signed permit documents
    seats: Seats  # live subscriptions per person, over every process
