"""What the Node peer (bench/peer/) needs from the hub, exported as one JSON file.

Usage::

    .venv/bin/python bench/peer_config.py --data-dir DIR --out FILE [--policy policy.toml]

- the public key the hub verifies client tokens with (SPKI PEM; the private key stays in
  `<data dir>/keys/`), and the tokens' issuer;
- every grant of the policy as the hub reads it (`access.policy.load_policy` against the
  hub's own schema): per role and purpose, the readable fields and the types reached, and
  the fields that need a grant at all;
- the adapters' code tables the peer maps legacy codes with (never copied by hand);
- the global ids of every person, permit period and employer, and the cursor after every
  person, sealed by the hub's own `opaque` package (AES-SIV from `cryptography`): the peer
  looks them up both ways and does no cryptography of its own for them (no maintained
  JavaScript library offers RFC 5297 AES-SIV, and none is written here). The sealing secret
  is not exported.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from enum import Enum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from access.policy import DEFAULT_POLICY, load_policy
from access.tokens import ISSUER, TOKEN_KEY
from adapters.card_service import mapping as sbk
from adapters.social_insurance import mapping as si
from adapters.work_permit import mapping as wp
from adapters.work_permit.spec import SPEC as WORK_PERMIT
from keys.files import load_or_create_key
from opaque.cursors import Cursors
from opaque.ids import GlobalIds
from opaque.sealing import sealer
from schema import build_schema


def _values(table: dict[str, Enum]) -> dict[str, str]:
    return {code: str(value.value) for code, value in table.items()}


def _column(path: Path, sql: str) -> list[Any]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute(sql)]


def sealed_values(data_dir: Path) -> dict[str, dict[str, str]]:
    """Global ids by key (`Person`, `WorkPermit`, `Employer`) and the persons connection's
    cursor by the person it follows, as the hub hands them out."""
    sealed = sealer(data_dir)
    ids, cursors = GlobalIds(sealed), Cursors(sealed)
    work_permits = data_dir / WORK_PERMIT.file_name
    persons = _column(data_dir / "hub_store.sqlite", "SELECT id FROM person")
    permits = _column(work_permits, 'SELECT "XKID" FROM "WP_XKZ"')
    employers = _column(work_permits, 'SELECT DISTINCT "TYSHXYDM" FROM "WP_XKZ"')
    return {
        "Person": {str(p): ids.encode("Person", p) for p in persons},
        "WorkPermit": {str(k): ids.encode("WorkPermit", k) for k in permits},
        "Employer": {str(c): ids.encode("Employer", c) for c in employers if c},
        "personsCursor": {str(p): cursors.encode("persons", (p,)) for p in persons},
    }


def export(data_dir: Path, policy_path: Path) -> dict[str, Any]:
    schema = build_schema()
    policy = load_policy(schema._schema, policy_path)
    public = load_or_create_key(data_dir, TOKEN_KEY).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    grants = [
        {
            "role": role.value,
            "purpose": purpose,
            "readable": grant.names(),
            "types": sorted(grant.types),
        }
        for (role, purpose), grant in sorted(
            policy.grants.items(), key=lambda g: (g[0][0].value, g[0][1] or "")
        )
    ]
    return {
        "token": {"issuer": ISSUER, "algorithm": "EdDSA", "publicKeyPem": pem.decode()},
        "guarded": sorted(f"{t}.{f}" for t, f in policy.guarded),
        "openTypes": sorted(policy.open_types),
        "grants": grants,
        "sealed": sealed_values(data_dir),
        "codes": {
            "permitStatus": _values(wp.STATUS),  # type: ignore[arg-type]
            "category": _values(wp.CATEGORY),  # type: ignore[arg-type]
            "procedure": _values(wp.PROCEDURE),  # type: ignore[arg-type]
            "eventKind": _values(wp.EVENT_KIND),  # type: ignore[arg-type]
            "eventOutcome": _values(wp.EVENT_OUTCOME),  # type: ignore[arg-type]
            "endedPermitCodes": list(wp.ENDED_CODES),
            "insuranceType": _values(si.INSURANCE_TYPE),  # type: ignore[arg-type]
            "insuranceStatus": _values(si.INSURANCE_STATUS),  # type: ignore[arg-type]
            "cardStatus": _values(sbk.CARD_STATUS),  # type: ignore[arg-type]
            "cardStatusPrecedence": list(sbk.CARD_STATUS_PRECEDENCE),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the hub's data directory")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON")
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help="the grants policy")
    args = parser.parse_args()
    args.out.write_text(json.dumps(export(args.data_dir.resolve(), args.policy), indent=1))


if __name__ == "__main__":
    main()
