"""Scopes as actions/cache has them: an entry belongs to the ref that saved it; a run reads its own ref's
entries, then a pull request's base branch's, then the default branch's, and never a sibling's."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ci_actions import runner
from ci_actions.cache import NO_SCOPE, CacheSpec, restore, save
from ci_actions.store.keys import Scope
from ci_actions.workspace import Job, StoreEntry, complete

MAIN = Scope("refs/heads/main")
FEATURE = Scope("refs/heads/feature-a", ("refs/heads/main",))
SIBLING = Scope("refs/heads/feature-b", ("refs/heads/main",))
PR = Scope("refs/pull/7/merge", ("refs/heads/feature-a", "refs/heads/main"))  # feature-b into feature-a
NONE = Scope()
ROOT = Path(__file__).parents[2]


@pytest.fixture
def ws(tmp_path):
    return tmp_path / "ws"


def spec(ws, scope: Scope, key: str = "deps-1", restore_keys=()) -> CacheSpec:
    return CacheSpec(key, ["node_modules"], ws, ws.parent / "store", list(restore_keys), scope=scope)


def save_as(ws, scope: Scope, who: str, key: str = "deps-1") -> None:
    """Save a node_modules whose one file says who saved it."""
    (ws / "node_modules").mkdir(parents=True, exist_ok=True)
    (ws / "node_modules" / "who").write_text(who)
    result = save(spec(ws, scope, key))
    assert result.saved, result


def restored_by(ws, scope: Scope, key: str = "deps-1", restore_keys=()) -> str | None:
    """Whose entry a run of `scope` restores (None: a miss); the workspace starts empty."""
    if (ws / "node_modules").exists():
        for child in (ws / "node_modules").iterdir():
            child.unlink()
        (ws / "node_modules").rmdir()
    outcome = restore(spec(ws, scope, key, restore_keys))
    assert outcome.warnings == []
    if outcome.matched_key is None:
        assert not (ws / "node_modules").exists()
        return None
    return (ws / "node_modules" / "who").read_text()


def test_a_feature_branch_entry_is_never_restored_on_main_or_a_sibling(ws):
    save_as(ws, FEATURE, "feature-a")
    assert restored_by(ws, FEATURE) == "feature-a"
    assert restored_by(ws, MAIN) is None
    assert restored_by(ws, MAIN, "deps-2", ["deps-"]) is None  # not through restore-keys either
    assert restored_by(ws, SIBLING) is None
    assert restored_by(ws, SIBLING, "deps-2", ["deps-"]) is None


def test_mains_entry_is_restored_on_a_feature_branch(ws):
    save_as(ws, MAIN, "main")
    assert restored_by(ws, FEATURE) == "main"
    assert restored_by(ws, SIBLING, "deps-2", ["deps-"]) == "main"


def test_a_pull_request_reads_its_base_before_the_default_branch(ws):
    save_as(ws, MAIN, "main")
    assert restored_by(ws, PR) == "main"
    save_as(ws, FEATURE, "feature-a")
    assert restored_by(ws, PR) == "feature-a"


def test_a_pull_requests_save_is_never_visible_to_main_and_does_not_take_its_key(ws):
    """The poisoning upstream's scopes stop: a PR saving the key main will compute, first."""
    save_as(ws, PR, "pull request")
    assert restored_by(ws, PR) == "pull request"  # a re-run of the PR sees it
    assert restored_by(ws, MAIN) is None
    assert restored_by(ws, FEATURE, "deps-2", ["deps-"]) is None
    save_as(ws, MAIN, "main")  # the key is main's to write: not "already exists"
    assert restored_by(ws, MAIN) == "main"
    assert restored_by(ws, PR) == "pull request"


def test_the_own_refs_partial_match_comes_before_the_default_branchs_exact_one(ws):
    """GitHub's search order: key, prefix, restore-keys in the run's own ref; only then the default's."""
    save_as(ws, FEATURE, "feature-a", key="deps-old")
    save_as(ws, MAIN, "main", key="deps-new")
    assert restored_by(ws, FEATURE, "deps-new", ["deps-"]) == "feature-a"


def test_the_same_key_is_one_entry_per_scope_and_the_first_writer_wins_within_one(ws):
    save_as(ws, FEATURE, "feature-a")
    save_as(ws, SIBLING, "feature-b")
    (ws / "node_modules" / "who").write_text("feature-a again")
    again = save(spec(ws, FEATURE))
    assert not again.saved and "already exists" in again.message
    assert restored_by(ws, FEATURE) == "feature-a"
    assert restored_by(ws, SIBLING) == "feature-b"


def test_no_ref_is_its_own_scope_that_only_runs_without_a_ref_see(ws):
    save_as(ws, NONE, "nobody")
    assert restored_by(ws, NONE) == "nobody"
    assert restored_by(ws, MAIN) is None
    assert restored_by(ws, FEATURE, "deps-2", ["deps-"]) is None
    save_as(ws, MAIN, "main", key="deps-main")
    assert restored_by(ws, NONE, "deps-main") is None


def test_keys_match_case_insensitively_within_a_scope(ws):
    save_as(ws, MAIN, "main", key="Deps-Linux-1")
    outcome = restore(spec(ws, MAIN, "deps-linux-1"))
    assert outcome.hit and outcome.matched_key == "Deps-Linux-1"
    again = save(spec(ws, MAIN, "DEPS-LINUX-1"))
    assert not again.saved and "already exists" in again.message
    assert restore(spec(ws, FEATURE, "dePS-linux-9", ["DEPS-"])).matched_key == "Deps-Linux-1"


@pytest.mark.parametrize(("env", "payload", "expected"), [
    ({"GITHUB_REF": "refs/heads/feature-a", "GITHUB_EVENT_NAME": "push"},
     {"repository": {"default_branch": "main"}}, Scope("refs/heads/feature-a", ("refs/heads/main",))),
    ({"GITHUB_REF": "refs/pull/7/merge", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_BASE_REF": "feature-a"},
     {"repository": {"default_branch": "main"}}, PR),
    ({"GITHUB_REF": "refs/tags/v1", "GITHUB_EVENT_NAME": "push"}, {"repository": {"default_branch": "trunk"}},
     Scope("refs/tags/v1", ("refs/heads/trunk",))),
    ({"GITHUB_EVENT_NAME": "push"}, {}, NONE),
])
def test_the_run_context_gives_the_scope(monkeypatch, tmp_path, env, payload, expected):
    for name in ("GITHUB_REF", "GITHUB_BASE_REF", "GITHUB_EVENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "event.json").write_text(json.dumps(payload))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(tmp_path / "event.json"))
    assert runner.run_context().cache_scope() == expected


def test_workspace_entries_built_by_a_pull_request_are_not_main_s(tmp_path, monkeypatch):
    """prepare/restore-workspace complete through the store with the run's scope, so a PR's install
    (whatever its workflow did to it) is never what main's workspace gets for the same key."""
    store = tmp_path / "store"
    (tmp_path / "app").mkdir()
    command = ("sh", "-c", 'mkdir -p node_modules && echo "$WHO" > node_modules/who')
    entry = StoreEntry("deps-all", "app", "ci-actions-deps-app-1", ("app/node_modules",), command)

    def run(scope: Scope, who: str) -> tuple[bool, str]:
        monkeypatch.setenv("WHO", who)
        [result] = complete([Job(entry, tmp_path, command)], store, "copy", scope=scope)
        return result.hit, (tmp_path / "app" / "node_modules" / "who").read_text().strip()

    assert run(PR, "pull request") == (False, "pull request")
    assert run(PR, "unused") == (True, "pull request")
    assert run(MAIN, "main") == (False, "main")  # built again: the PR's entry is not main's
    assert run(FEATURE, "unused") == (True, "main")


def cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """`ci-actions cache ...` of this checkout, in the workspace."""
    code = os.pathsep.join([str(ROOT / "shared"), str(ROOT / "actions" / "cache-local")])
    return subprocess.run([sys.executable, "-m", "ci_actions", "cache", *args, "--cache-dir",
                           str(tmp_path / "store")], cwd=tmp_path / "ws", capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "PYTHONPATH": code})


def cli_matched(tmp_path, *args: str) -> str:
    done = cli(tmp_path, "restore", "--key", "deps-x", "--restore-key", "deps-", "--path", "node_modules",
               *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["cache-matched-key"]


def test_the_cli_takes_the_scope_and_its_fallbacks(tmp_path):
    (tmp_path / "ws" / "node_modules").mkdir(parents=True)
    (tmp_path / "ws" / "node_modules" / "f").write_text("x")
    for scope, key in (("feature-a", "deps-feature"), ("refs/heads/main", "deps-main")):
        done = cli(tmp_path, "save", "--key", key, "--path", "node_modules", "--scope", scope)
        assert done.returncode == 0 and "warning" not in done.stderr, done.stderr
    assert cli_matched(tmp_path, "--scope", "feature-a", "--fallback-scope", "main") == "deps-feature"
    assert cli_matched(tmp_path, "--scope", "feature-b", "--fallback-scope", "main") == "deps-main"
    assert cli_matched(tmp_path, "--scope", "feature-b") == ""
    assert cli_matched(tmp_path, "--scope", "main") == "deps-main"
    listing = cli(tmp_path, "list").stdout
    assert any(line.split()[-2:] == ["refs/heads/feature-a", "deps-feature"] for line in listing.splitlines())


def test_the_cli_without_a_scope_warns_and_sees_only_unscoped_entries(tmp_path):
    (tmp_path / "ws" / "node_modules").mkdir(parents=True)
    saved = cli(tmp_path, "save", "--key", "deps-none", "--path", "node_modules")
    assert saved.returncode == 0 and f"warning: {NO_SCOPE}" in saved.stderr
    assert cli_matched(tmp_path) == "deps-none"
    assert cli_matched(tmp_path, "--scope", "main") == ""
    assert "(none)" in cli(tmp_path, "list").stdout
