"""The schema check of `make check`: the committed SDL against the public contract and against
`schema.graphql` at the newest `v*` tag, with graphql-core's breaking-change finder.

A breaking change fails unless CHANGELOG.md lists it, with a reason, under `## Breaking`, as

    - `<the finder's description>`: <why it had to break>

Dangerous changes (e.g. an enum value added) are printed, never fatal. Every enum value and
every argument must carry a description; what else lacks one is counted.

Where the clone has no `v*` tag (tags do not travel with every copy of a branch), the release
is the newest `## vX.Y.Z (commit)` heading of CHANGELOG.md whose commit the clone has. Where
it has neither (a shallow clone), the comparison with the release is skipped, saying so; the
contract is still compared.

Usage: python tools/check_schema.py [--schema schema.graphql] [--contract FILE]
       [--changelog CHANGELOG.md] [--repo DIR]
Exit status 0 when nothing fails, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
)
from graphql.utilities import find_breaking_changes, find_dangerous_changes

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT.parent / "shared" / "contract" / "schema-contract.graphql"
BREAKING_HEADING = "## Breaking"
LISTED = re.compile(r"^- `(?P<change>[^`]+)`:?\s*(?P<reason>.*)$")


@dataclass(frozen=True)
class Change:
    kind: str  # the finder's BreakingChangeType or DangerousChangeType name
    description: str


@dataclass(frozen=True)
class Missing:
    """Schema coordinates without a description: those that must have one, and the rest."""

    required: list[str]
    others: list[str]


def changes(old: GraphQLSchema, new: GraphQLSchema) -> tuple[list[Change], list[Change]]:
    """(breaking, dangerous) changes from `old` to `new`."""
    breaking = [Change(c.type.name, c.description) for c in find_breaking_changes(old, new)]
    dangerous = [Change(c.type.name, c.description) for c in find_dangerous_changes(old, new)]
    return breaking, dangerous


def listed_breaking_changes(changelog: str) -> dict[str, str]:
    """The breaking changes CHANGELOG.md's `## Breaking` section lists: description -> reason."""
    listed: dict[str, str] = {}
    inside = False
    for line in changelog.splitlines():
        if line.startswith("## "):
            inside = line.strip() == BREAKING_HEADING
        elif inside and (match := LISTED.match(line.rstrip())):
            listed[match["change"].strip()] = match["reason"].strip()
    return listed


def newest_release_tag(repo: Path) -> str | None:
    """The newest `v*` tag by version order, or None where the clone has none (or no git)."""
    try:
        tags = subprocess.run(
            ["git", "-C", str(repo), "tag", "--list", "v*", "--sort=-v:refname"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    return tags[0] if tags else None


RELEASE_HEADING = re.compile(r"^## (?P<version>v\d+(?:\.\d+)*) \((?P<commit>[0-9a-f]{7,40})\)\s*$")


def changelog_release(repo: Path, changelog: str) -> tuple[str, str] | None:
    """The newest release CHANGELOG.md names with its commit that this clone holds:
    (version, commit), or None."""
    for line in changelog.splitlines():
        match = RELEASE_HEADING.match(line)
        if match is None:
            continue
        present = subprocess.run(
            ["git", "-C", str(repo), "cat-file", "-e", f"{match['commit']}:schema.graphql"],
            capture_output=True,
            check=False,
        )
        if present.returncode == 0:
            return match["version"], match["commit"]
    return None


def sdl_at(repo: Path, tag: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "show", f"{tag}:schema.graphql"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def undescribed(schema: GraphQLSchema) -> Missing:
    """Enum values and arguments (directives' too) without a description, and the other
    types, fields and input fields without one."""
    required: list[str] = []
    others: list[str] = []
    for name, graphql_type in schema.type_map.items():
        if name.startswith("__"):
            continue
        if not graphql_type.description:
            others.append(name)
        if isinstance(graphql_type, GraphQLEnumType):
            required += [f"{name}.{v}" for v, value in graphql_type.values.items() if not value.description]
        elif isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in graphql_type.fields.items():
                if not field.description:
                    others.append(f"{name}.{field_name}")
                required += [
                    f"{name}.{field_name}({a}:)" for a, arg in field.args.items() if not arg.description
                ]
        elif isinstance(graphql_type, GraphQLInputObjectType):
            others += [f"{name}.{f}" for f, field in graphql_type.fields.items() if not field.description]
    for directive in schema.directives:
        required += [f"@{directive.name}({a}:)" for a, arg in directive.args.items() if not arg.description]
    return Missing(required, others)


def check(schema_sdl: str, baselines: dict[str, str], changelog: str) -> tuple[list[str], list[str]]:
    """(failures, notes) of the schema against each baseline (name -> SDL) and the changelog."""
    new = build_schema(schema_sdl)
    listed = listed_breaking_changes(changelog)
    failures: list[str] = []
    notes: list[str] = []
    for name, sdl in baselines.items():
        breaking, dangerous = changes(build_schema(sdl), new)
        for change in breaking:
            reason = listed.get(change.description)
            if reason is None:
                failures.append(
                    f"breaking against {name}: {change.kind}: {change.description} "
                    f"(not listed under {BREAKING_HEADING!r} in CHANGELOG.md)"
                )
            elif not reason:
                failures.append(f"breaking against {name}: {change.description} is listed without a reason")
            else:
                notes.append(f"breaking against {name}, listed: {change.description} ({reason})")
        notes += [f"dangerous against {name}: {c.kind}: {c.description}" for c in dangerous]
    missing = undescribed(new)
    failures += [f"no description: {coordinate}" for coordinate in missing.required]
    if missing.others:
        notes.append(f"{len(missing.others)} other types and fields have no description")
    return failures, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--schema", type=Path, default=ROOT / "schema.graphql")
    parser.add_argument("--contract", type=Path, default=CONTRACT)
    parser.add_argument("--changelog", type=Path, default=ROOT / "CHANGELOG.md")
    parser.add_argument("--repo", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    baselines = {"the contract": args.contract.read_text(encoding="utf-8")}
    changelog = args.changelog.read_text(encoding="utf-8") if args.changelog.exists() else ""
    tag = newest_release_tag(args.repo)
    named = changelog_release(args.repo, changelog) if tag is None else None
    if tag is not None:
        baselines[f"{tag}:schema.graphql"] = sdl_at(args.repo, tag)
    elif named is not None:
        version, commit = named
        baselines[f"{version} ({commit}):schema.graphql"] = sdl_at(args.repo, commit)
    else:
        print("no v* tag in this clone, and no release in CHANGELOG.md with a commit it has:")
        print("  the comparison with the last release is skipped")
    failures, notes = check(args.schema.read_text(encoding="utf-8"), baselines, changelog)
    for line in notes:
        print(line)
    for line in failures:
        print(f"FAIL {line}")
    print(f"schema check: {len(failures)} failing, against {', '.join(baselines)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
