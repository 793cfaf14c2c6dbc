"""actions/cache semantics over the store: version check, fallbacks and the warning-not-failure policy."""

import os

import pytest

from ci_actions.cache import CacheSpec, enforce_budget, restore, save
from ci_actions.paths import PathError
from ci_actions.store.keys import InvalidKey


@pytest.fixture
def ws(tmp_path):
    workspace = tmp_path / "ws"
    (workspace / "node_modules" / "pkg").mkdir(parents=True)
    (workspace / "node_modules" / "pkg" / "index.js").write_text("v1\n")
    (workspace / "dist").mkdir()
    (workspace / "dist" / "out.js").write_text("built\n")
    return workspace


def spec(ws, key="deps-1", paths=("node_modules",), restore_keys=()):
    return CacheSpec(key, list(paths), ws, ws.parent / "store", list(restore_keys))


def test_restore_key_with_another_path_set_is_not_restored(ws):
    assert save(spec(ws, paths=["node_modules", "dist"])).saved
    outcome = restore(spec(ws, key="deps-2", restore_keys=["deps-"]))
    assert outcome.matched_key is None and not outcome.hit


def test_damaged_entry_falls_back_to_the_next_candidate_with_a_warning(ws):
    assert save(spec(ws, key="deps-old")).saved
    (ws / "node_modules" / "pkg" / "index.js").write_text("v2\n")
    assert save(spec(ws, key="deps-new")).saved
    store = ws.parent / "store"
    newest = max((store / "entries").glob("*/*.json"), key=lambda p: p.stat().st_mtime_ns)
    newest.write_bytes(newest.read_bytes()[:-20])
    outcome = restore(spec(ws, key="deps-x", restore_keys=["deps-"]))
    assert outcome.matched_key == "deps-old"
    assert len(outcome.warnings) == 1 and "damaged manifest" in outcome.warnings[0]
    assert (ws / "node_modules" / "pkg" / "index.js").read_text() == "v1\n"


def test_unreadable_cache_dir_is_a_warning_and_a_miss(ws):
    not_a_dir = ws.parent / "store-file"
    not_a_dir.write_text("oops")
    outcome = restore(CacheSpec("deps-1", ["node_modules"], ws, not_a_dir))
    assert outcome.matched_key is None
    assert outcome.warnings and outcome.warnings[0].startswith("Failed to restore: NotADirectoryError")
    saved = save(CacheSpec("deps-1", ["node_modules"], ws, not_a_dir))
    assert not saved.saved and saved.warnings[0].startswith("Failed to save:")


def test_bad_key_and_outside_path_raise(ws):
    with pytest.raises(InvalidKey):
        restore(spec(ws, key="k" * 513))
    with pytest.raises(PathError, match="cannot be cached"):
        save(spec(ws, paths=["/etc"]))


def test_nothing_to_save_is_a_warning_not_an_error(ws):
    outcome = save(spec(ws, paths=["missing-dir"]))
    assert not outcome.saved and outcome.warnings == [
        "Path Validation Error: none of the paths exist, so no cache was saved: missing-dir"]


def test_enforce_budget_only_prunes_when_over(ws):
    assert save(spec(ws)).saved
    assert enforce_budget(ws.parent / "store", max_bytes=10**9, max_age=86400) == (None, [])
    report, warnings = enforce_budget(ws.parent / "store", max_bytes=1, max_age=86400)
    assert warnings == [] and [e.key for e in report.evicted] == ["deps-1"]
    assert not os.listdir(ws.parent / "store" / "entries" / os.listdir(ws.parent / "store" / "entries")[0])
