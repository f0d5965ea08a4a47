"""tools/check_schema.py, the schema check of `make check`, run as `make check` runs it on
real git repositories: a breaking change since the newest `v*` tag fails unless CHANGELOG.md
lists it with a reason; a clone without tags compares with the contract only; and the
committed schema describes every enum value and argument."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from graphql import build_schema

from tools.check_schema import listed_breaking_changes, undescribed

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "check_schema.py"

RELEASED = '''
"""What can be read."""
type Query {
  """A greeting."""
  hello(
    """Whom to greet."""
    name: String
  ): String

  """The answer."""
  answer: String
}
'''
WITHOUT_ANSWER = RELEASED.replace('  """The answer."""\n  answer: String\n', "")
REMOVED = "Field Query.answer was removed."


def _git(repo: Path, *args: str) -> str:
    run = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.org", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose v0.1.0 tag has RELEASED as its schema.graphql (and a later v0.0.9)."""
    repo = tmp_path / "hub"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "schema.graphql").write_text(RELEASED.replace("answer: String", "answer: String\n  gone: String"))
    _git(repo, "add", "schema.graphql")
    _git(repo, "commit", "-q", "-m", "an older release")
    _git(repo, "tag", "v0.0.9")
    (repo / "schema.graphql").write_text(RELEASED)
    _git(repo, "commit", "-q", "-am", "the release")
    _git(repo, "tag", "v0.1.0")
    return repo


def _check(repo: Path, schema: str, changelog: str | None = None) -> tuple[int, str]:
    """The tool on `schema` against the repo's newest tag (and RELEASED as the contract)."""
    (repo / "schema.graphql").write_text(schema)
    (repo / "contract.graphql").write_text(RELEASED)
    if changelog is not None:
        (repo / "CHANGELOG.md").write_text(changelog)
    run = subprocess.run(
        [
            sys.executable,
            str(TOOL),
            *("--repo", str(repo), "--schema", str(repo / "schema.graphql")),
            *("--contract", str(repo / "contract.graphql"), "--changelog", str(repo / "CHANGELOG.md")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, run.stdout


def test_an_unlisted_breaking_change_fails_naming_it(repo: Path) -> None:
    status, out = _check(repo, WITHOUT_ANSWER, "# Changelog\n\n## Breaking\n\nNone.\n")
    assert status == 1
    assert f"FAIL breaking against v0.1.0:schema.graphql: FIELD_REMOVED: {REMOVED}" in out, out
    assert f"FAIL breaking against the contract: FIELD_REMOVED: {REMOVED}" in out, out


def test_a_breaking_change_listed_with_a_reason_passes(repo: Path) -> None:
    changelog = f"# Changelog\n\n## Breaking\n\n- `{REMOVED}`: the answer moved to `hello`.\n\n## v0.1.0\n"
    status, out = _check(repo, WITHOUT_ANSWER, changelog)
    assert status == 0, out
    assert f"listed: {REMOVED} (the answer moved to `hello`.)" in out


@pytest.mark.parametrize(
    "changelog",
    [
        pytest.param(f"## Breaking\n\n- `{REMOVED}`\n", id="without-a-reason"),
        pytest.param(
            f"## v0.1.0\n\n- `{REMOVED}`: listed under a release, not under Breaking\n", id="elsewhere"
        ),
        pytest.param(f"## Breaking\n\n    - `{REMOVED}`: an example in a code block\n", id="in-a-code-block"),
        pytest.param(None, id="no-changelog"),
    ],
)
def test_a_breaking_change_not_listed_properly_fails(repo: Path, changelog: str | None) -> None:
    status, out = _check(repo, WITHOUT_ANSWER, changelog)
    assert status == 1, out
    assert REMOVED in out


def test_an_added_field_is_no_breaking_change(repo: Path) -> None:
    added = RELEASED.replace("answer: String", 'answer: String\n\n  """New."""\n  more: String')
    status, out = _check(repo, added)
    assert status == 0, out
    assert "against the contract, v0.1.0:schema.graphql" in out  # the newest tag, not v0.0.9


def test_a_clone_without_tags_compares_with_the_contract_only(repo: Path, tmp_path: Path) -> None:
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "--no-tags", f"file://{repo}", str(shallow)],
        check=True,
        capture_output=True,
    )
    assert _git(shallow, "tag", "--list") == ""
    status, out = _check(shallow, RELEASED)
    assert status == 0, out
    assert (
        "no v* tag in this clone, and no release in CHANGELOG.md" in out and "against the contract\n" in out
    )
    status, out = _check(shallow, WITHOUT_ANSWER)  # the contract still catches the removal
    assert status == 1 and f"against the contract: FIELD_REMOVED: {REMOVED}" in out


def test_an_undescribed_enum_value_or_argument_fails(repo: Path) -> None:
    sdl = RELEASED.replace('    """Whom to greet."""\n', "") + '\n"""A colour."""\nenum Colour {\n  RED\n}\n'
    status, out = _check(repo, sdl)
    assert status == 1
    assert "FAIL no description: Query.hello(name:)" in out
    assert "FAIL no description: Colour.RED" in out


def test_the_committed_schema_describes_every_enum_value_and_argument() -> None:
    missing = undescribed(build_schema((ROOT / "schema.graphql").read_text()))
    assert missing.required == []


def test_the_changelog_lists_what_it_lists_with_reasons() -> None:
    listed = listed_breaking_changes((ROOT / "CHANGELOG.md").read_text())
    assert all(reason for reason in listed.values()), listed


def test_a_clone_without_tags_finds_the_release_by_the_changelogs_commit(repo: Path, tmp_path: Path) -> None:
    released = _git(repo, "rev-parse", "--short", "v0.1.0").strip()
    untagged = tmp_path / "untagged"
    subprocess.run(
        ["git", "clone", "-q", "--no-tags", f"file://{repo}", str(untagged)], check=True, capture_output=True
    )
    assert _git(untagged, "tag", "--list") == ""
    # The contract allows the removal here: only the release can catch it.
    (untagged / "contract.graphql").write_text(WITHOUT_ANSWER)
    changelog = f"# Changelog\n\n## Breaking\n\nNone.\n\n## v0.1.0 ({released})\n\n## v0.0.9\n"
    (untagged / "schema.graphql").write_text(WITHOUT_ANSWER)
    (untagged / "CHANGELOG.md").write_text(changelog)
    run = subprocess.run(
        [
            sys.executable,
            str(TOOL),
            *("--repo", str(untagged), "--schema", str(untagged / "schema.graphql")),
            *(
                "--contract",
                str(untagged / "contract.graphql"),
                "--changelog",
                str(untagged / "CHANGELOG.md"),
            ),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stdout
    assert f"FAIL breaking against v0.1.0 ({released}):schema.graphql: FIELD_REMOVED: {REMOVED}" in run.stdout
