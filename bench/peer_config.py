"""What the Node peer (bench/peer/) needs from the hub, exported as one JSON file.

Usage::

    .venv/bin/python bench/peer_config.py --data-dir DIR --out FILE [--policy policy.toml]

- the public key the hub verifies client tokens with (SPKI PEM; the private key stays in
  `<data dir>/keys/`), and the tokens' issuer;
- every grant of the policy as the hub reads it (`access.policy.load_policy` against the
  hub's own schema): per role and purpose, the readable fields and the types reached, and
  the fields that need a grant at all;
- the adapters' code tables the peer maps legacy codes with (never copied by hand).

The sealing secret of global ids and cursors is not exported: the peer reads
`<data dir>/keys/sealed-values.key` itself, as any second server of the same hub would.
"""

from __future__ import annotations

import argparse
import json
from enum import Enum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from access.policy import DEFAULT_POLICY, load_policy
from access.tokens import ISSUER, TOKEN_KEY
from adapters.card_service import mapping as sbk
from adapters.social_insurance import mapping as si
from adapters.work_permit import mapping as wp
from keys.files import load_or_create_key
from schema import build_schema


def _values(table: dict[str, Enum]) -> dict[str, str]:
    return {code: str(value.value) for code, value in table.items()}


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
