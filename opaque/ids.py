"""Relay global ids: opaque and authenticated (sealed, access/sealing.py). An id names its type
and the record's own key to the hub only; a client can neither read nor make one."""

from __future__ import annotations

from domain.errors import ClientError
from opaque.sealing import Sealer

NODE_TYPES = ("Person", "Employer", "WorkPermit", "ElectronicCard", "Notification", "BenefitPayment")
PURPOSE = b"global-id"


class GlobalIds:
    """Makes and reads the global ids of one hub (its data directory's sealing secret)."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def encode(self, type_name: str, key: str | int) -> str:
        return self._sealer.seal(PURPOSE, f"{type_name}:{key}".encode())

    def decode(self, global_id: str, field: str = "id") -> tuple[str, str]:
        """(type name, key) of an id this hub issued; anything else is a client error on `field`."""
        opened = self._sealer.open(PURPOSE, global_id) if isinstance(global_id, str) else None
        type_name, _, key = opened.decode().partition(":") if opened is not None else ("", "", "")
        if type_name not in NODE_TYPES or not key:
            raise ClientError(field, "is not an id this hub issued")
        return type_name, key

    def key_of(self, global_id: str, expected_type: str, field: str) -> str:
        type_name, key = self.decode(global_id, field)
        if type_name != expected_type:
            raise ClientError(field, f"is the id of a {type_name}, not of a {expected_type}")
        return key
