"""Relay global ids: opaque, and naming the type and the record's own key."""

from __future__ import annotations

import base64
import binascii

from resolvers.errors import ClientError

NODE_TYPES = ("Person", "Employer", "WorkPermit", "ElectronicCard", "Notification")


def to_global_id(type_name: str, key: str | int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode().rstrip("=")


def from_global_id(global_id: str, field: str = "id") -> tuple[str, str]:
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, _, key = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ClientError(field, "is not an id this hub issued") from None
    if type_name not in NODE_TYPES or not key:
        raise ClientError(field, "is not an id this hub issued")
    return type_name, key


def key_of(global_id: str, expected_type: str, field: str) -> str:
    type_name, key = from_global_id(global_id, field)
    if type_name != expected_type:
        raise ClientError(field, f"is the id of a {type_name}, not of a {expected_type}")
    return key
