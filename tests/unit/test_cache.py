"""actions/cache semantics over the store: version check, fallbacks and the warning-not-failure policy."""

import os
import re
import shutil

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


# -- `!` exclusions end to end, and lines that must not be cached -----------------------------------


@pytest.fixture
def box(tmp_path, monkeypatch):
    """A workspace with a dependency cache in it, the job's HOME, a fake /etc and a secret outside."""
    home, ws = tmp_path / "home", tmp_path / "ws"
    for rel in ["ws/node_modules/a/index.js", "ws/node_modules/.cache/babel/x.json",
                "ws/node_modules/.cache/keep/y", "ws/.git/config", "ws/secrets", "home/.npm/index",
                "home/.ssh/id_ed25519", "etc/passwd", "secret"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    monkeypatch.setenv("HOME", str(home))
    return {"root": tmp_path, "ws": ws, "home": home, "store": home / ".cache" / "ci-actions" / "store"}


def box_spec(box, paths, key="deps-1"):
    return CacheSpec(key, list(paths), box["ws"], box["store"])


def test_an_excluded_directory_is_not_saved_and_a_line_after_it_takes_part_back(box):
    lines = ["node_modules", "!node_modules/.cache", "node_modules/.cache/keep"]
    saved = save(box_spec(box, lines))
    assert saved.saved and saved.files == 2, saved
    shutil.rmtree(box["ws"] / "node_modules")
    got = restore(box_spec(box, lines))
    assert got.hit and got.files == 2
    modules = box["ws"] / "node_modules"
    assert sorted(p.relative_to(modules).as_posix() for p in modules.rglob("*")) == [
        ".cache", ".cache/keep", ".cache/keep/y", "a", "a/index.js"]


def but_the_store(tree: dict) -> dict:
    return {rel: value for rel, value in tree.items() if not rel.startswith("home/.cache")}


def test_an_entry_holding_what_the_lines_exclude_is_dropped_and_nothing_is_written(box):
    """Another job planted an entry with these lines' version: a `.git` the lines exclude, and a
    directory `secrets` where they exclude directories of that name (a file of that name they take)."""
    from tests.unit.test_store_hostile import file_row, plant, state

    store = box["store"]
    for lines, rows in [
        ([".", "!.git"], [["d", ".git", 0o755], file_row(store, ".git/hooks/pre-commit", b"evil\n")]),
        (["*", "!secrets/"], [["d", "secrets", 0o755], file_row(store, "secrets/x", b"evil\n")]),
    ]:
        plant(store, rows, key="deps-1", paths=lines)
        before = but_the_store(state(box["root"]))
        got = restore(box_spec(box, lines))
        assert got.matched_key is None and len(got.warnings) == 1, got
        assert "which none of its paths selects; dropped it" in got.warnings[0]
        assert but_the_store(state(box["root"])) == before
    plant(store, [file_row(store, "secrets", b"a file\n")], key="deps-1", paths=["*", "!secrets/"])
    assert restore(box_spec(box, ["*", "!secrets/"])).hit  # a file named so is what the lines take


HOSTILE_LINES = [
    ("../secret", r"uses '\.\.'"),
    ("node_modules/../../secret", r"uses '\.\.'"),
    ("!../secret", r"uses '\.\.'"),
    ("~/../secret", r"uses '\.\.'"),
    ("node_modules/\\.\\./\\.\\./secret", r"uses '\.\.'"),
    ("/opt/app/../../etc/passwd", r"uses '\.\.'"),
    ("node_modules/./a", "has a '.' segment"),
    ("!", "has nothing after '!'"),
    ("!!!", "has nothing after '!'"),
    ("~root/.ssh", "'~root' is not expanded"),
    ("!~root/.ssh", "'~root' is not expanded"),
    ("~", "it is HOME itself"),
    ("~/*", "it is HOME itself"),
    ("~/**", "it is HOME itself"),
    ("<home>", "is or holds HOME"),
    ("<root>", "is or holds HOME"),
    ("~/.cache", "the cache's own store"),
    ("<store>/blobs", "the cache's own store"),
    ("/", "it sits directly under /"),
    ("/*", "a glob in its first component"),
    ("/e*c/passwd", "a glob in its first component"),
    ("/cache", "it sits directly under /"),
    ("/etc/cron.d/*", "lies in /etc, which a cache never writes to"),
    ("/proc/self/environ", "lies in /proc"),
    ("/usr/local", "is or holds the system directory /usr/local"),
    ("/var/*", "is or holds the system directory /var"),
    ("/[u]sr/bin", "is or holds the system directory /usr/bin"),  # a one-character class is literal
]


@pytest.mark.parametrize(("line", "said"), HOSTILE_LINES, ids=[line for line, _ in HOSTILE_LINES])
def test_a_line_that_must_not_be_cached_is_an_error_naming_it_and_nothing_is_written(box, line, said):
    from tests.unit.test_store_hostile import state

    line = line.replace("<home>", str(box["home"])).replace("<root>", str(box["root"]))
    line = line.replace("<store>", str(box["store"]))
    before = state(box["root"])
    for call in (save, restore):
        with pytest.raises(PathError, match=re.escape(f"path {line!r}") + ".*" + said):
            call(box_spec(box, ["node_modules", line]))
    assert state(box["root"]) == before  # no store made, nothing restored, nothing read out


def test_home_that_is_not_a_directory_of_its_own_is_an_error(box, monkeypatch):
    from tests.unit.test_store_hostile import state

    before = state(box["root"])
    for home in ("/", ""):
        monkeypatch.setenv("HOME", home)
        for call in (save, restore):
            with pytest.raises(PathError, match="starts with '~', but HOME is"):
                call(CacheSpec("deps-1", ["~/.npm"], box["ws"], box["root"] / "store"))
    assert state(box["root"]) == before
