"""The store on a real filesystem: save, restore, dedup, integrity, eviction."""

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from ci_actions.paths import WORKSPACE, Place, Tree, places
from ci_actions.store import manifest as mf
from ci_actions.store.keys import cache_version
from ci_actions.store.store import EntryBroken, Store

VERSION = cache_version(["node_modules"])


def at(workspace: Path) -> dict[str, Place]:
    """Where a consumer of these entries restores them: its path lines, in its workspace."""
    return places(["node_modules"], workspace)


def in_ws(workspace: Path, paths: list[str]) -> list[Tree]:
    """What a save of workspace-relative paths takes (match_paths' trees)."""
    return [Tree(WORKSPACE, str(workspace), paths)]


def make_tree(root: Path) -> None:
    (root / "node_modules" / "pkg" / "lib").mkdir(parents=True)
    (root / "node_modules" / "pkg" / "index.js").write_text("module.exports = 1\n")
    (root / "node_modules" / "pkg" / "lib" / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))
    tool = root / "node_modules" / "pkg" / "cli.sh"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    (root / "node_modules" / ".bin").mkdir()
    (root / "node_modules" / ".bin" / "cli").symlink_to("../pkg/cli.sh")
    (root / "node_modules" / "empty").mkdir()
    (root / "node_modules" / ".prisma" / "client").mkdir(parents=True)
    (root / "node_modules" / ".prisma" / "client" / "index.js").write_text("generated\n")
    (root / "node_modules" / "pkg" / "engine.node").write_bytes(b"\x7fELF native")


def walk(root: Path, top: str = "node_modules") -> list[Path]:
    found = [root / top]
    for dirpath, dirnames, filenames in os.walk(root / top):
        dirnames.sort()
        found += [Path(dirpath, n) for n in sorted(dirnames + filenames)]
    return found


def relative(paths: list[Path], root: Path) -> list[str]:
    return [path.relative_to(root).as_posix() for path in paths]


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything a restore must reproduce: type, mode, content or link target."""
    out = {}
    for path in walk(root):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            out[rel] = ("dir", st.st_mode & 0o777)
        else:
            out[rel] = ("file", st.st_mode & 0o777, path.read_bytes(), st.st_mtime_ns)
    return out


@pytest.fixture
def saved(tmp_path):
    source = tmp_path / "source"
    make_tree(source)
    store = Store(tmp_path / "store")
    result = store.save("deps-1", VERSION, ["node_modules"], in_ws(source, relative(walk(source), source)))
    assert result.saved, result.message
    return store, source, result


@pytest.mark.parametrize("link_mode", ["auto", "copy", "hardlink"])
def test_restore_is_identical(saved, tmp_path, link_mode):
    store, source, result = saved
    target = tmp_path / f"target-{link_mode}"
    target.mkdir()
    header = store.lookup(["deps-1"], VERSION)
    restored = store.restore(header, at(target), link_mode)
    want, got = snapshot(source), snapshot(target)
    if link_mode == "hardlink":  # a link shares the blob's inode: read-only mode, the blob's mtime
        want = {k: (v[0], v[1] & 0o111, v[2]) if v[0] == "file" else v for k, v in want.items()}
        got = {k: (v[0], v[1] & 0o111, v[2]) if v[0] == "file" else v for k, v in got.items()}
    assert got == want
    assert (restored.files, restored.bytes) == (result.files, result.bytes)


def test_hardlink_mode_copies_files_edited_in_place(saved, tmp_path):
    store, _, _ = saved
    store.restore(store.lookup(["deps-1"], VERSION), at(tmp_path), "hardlink")
    linked = tmp_path / "node_modules" / "pkg" / "index.js"
    assert linked.stat().st_mode & 0o222 == 0  # read-only: an in-place edit fails instead of corrupting
    assert (tmp_path / "node_modules" / ".prisma" / "client" / "index.js").stat().st_nlink == 1
    assert (tmp_path / "node_modules" / "pkg" / "engine.node").stat().st_nlink == 1
    assert linked.stat().st_nlink == 2


def test_existing_key_is_not_saved_again(saved):
    store, source, _ = saved
    again = store.save("deps-1", VERSION, ["node_modules"], in_ws(source, relative(walk(source), source)))
    assert not again.saved
    assert "already exists" in again.message and "update: true" in again.message


def test_update_replaces_the_entry(saved):
    store, source, _ = saved
    (source / "node_modules" / "pkg" / "index.js").write_text("module.exports = 2\n")
    again = store.save("deps-1", VERSION, ["node_modules"], in_ws(source, relative(walk(source), source)),
                       update=True)
    assert again.saved
    manifest = store.load(VERSION, "deps-1")
    assert any(r.path.endswith("index.js") and r.size == 19 for r in manifest.records)


def test_one_changed_file_stores_only_its_bytes(saved):
    store, source, first = saved
    (source / "node_modules" / "pkg" / "index.js").write_text("module.exports = 'changed'\n")
    second = store.save("deps-2", VERSION, ["node_modules"], in_ws(source, relative(walk(source), source)))
    assert second.saved and second.new_bytes == len("module.exports = 'changed'\n")
    assert first.new_bytes == first.bytes


def test_flipped_byte_in_a_blob_drops_the_entry_and_restores_nothing(saved, tmp_path):
    store, _, _ = saved
    manifest = store.load(VERSION, "deps-1")
    big = next(r for r in manifest.records if r.path.endswith("big.bin"))
    blob = store.blobs.path(big.digest)
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[12345] ^= 0x01
    blob.write_bytes(bytes(data))
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(EntryBroken, match="1 corrupt blob"):
        store.restore(store.lookup(["deps-1"], VERSION), at(target))
    assert list(target.iterdir()) == []
    assert store.lookup(["deps-1"], VERSION) is None
    assert not blob.exists()


def test_a_touched_blob_is_rehashed_and_still_restores(saved, tmp_path):
    store, source, _ = saved
    manifest = store.load(VERSION, "deps-1")
    blob = store.blobs.path(next(r for r in manifest.records if r.kind == "file").digest)
    os.utime(blob)  # a new mtime, same bytes: re-hashed, found intact
    store.restore(store.lookup(["deps-1"], VERSION), at(tmp_path))
    assert snapshot(tmp_path) == snapshot(source)


def test_truncated_manifest_is_detected_and_dropped(saved, tmp_path):
    store, _, _ = saved
    path = store.entry_path(VERSION, "deps-1")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EntryBroken, match="damaged manifest"):
        store.restore(store.lookup(["deps-1"], VERSION), at(tmp_path))
    assert not path.exists()


def test_restore_stamps_last_used(saved, tmp_path):
    store, _, _ = saved
    before = store.lookup(["deps-1"], VERSION).last_used
    time.sleep(0.01)
    store.restore(store.lookup(["deps-1"], VERSION), at(tmp_path))
    after = store.lookup(["deps-1"], VERSION)
    assert after.last_used > before
    assert mf.loads(store.entry_path(VERSION, "deps-1").read_bytes()).header.last_used == after.last_used


def test_verify_finds_a_corrupt_blob(saved):
    store, _, _ = saved
    clean = store.verify()
    assert clean.problems == [] and clean.entries == 1 and clean.blobs == 5
    manifest = store.load(VERSION, "deps-1")
    small = next(r for r in manifest.records if r.path.endswith("index.js") and "pkg" in r.path)
    blob = store.blobs.path(small.digest)
    blob.chmod(0o644)
    blob.write_text("module.exports = 666\n")
    report = store.verify()
    assert len(report.problems) == 1
    assert f"blob {small.digest} is corrupt; entries: deps-1" in report.problems[0]


def test_prune_by_age_then_size_keeps_shared_blobs(saved):
    store, source, _ = saved
    (source / "node_modules" / "pkg" / "index.js").write_text("v2\n")
    store.save("deps-2", VERSION, ["node_modules"], in_ws(source, relative(walk(source), source)))
    old = store.entry_path(VERSION, "deps-1")
    fd = os.open(old, os.O_WRONLY)
    os.pwrite(fd, mf.format_time(time.time() - 30 * 86400).encode(), len(mf.LAST_USED_PREFIX))
    os.close(fd)
    preview = store.prune(max_bytes=10**12, max_age=7 * 86400, dry_run=True)
    assert [e.key for e in preview.evicted] == ["deps-1"] and old.exists()
    report = store.prune(max_bytes=10**12, max_age=7 * 86400)
    assert [e.key for e in report.evicted] == ["deps-1"]
    assert report.blobs_removed == 1 and report.bytes_freed == len("module.exports = 1\n")
    assert store.verify().problems == []
    report = store.prune(max_bytes=1024, max_age=7 * 86400)
    assert [e.key for e in report.evicted] == ["deps-2"]
    assert list(store.blobs.dir.glob("*/*")) == []


@pytest.mark.parametrize("link_mode", ["copy", "hardlink"])
def test_restore_merges_into_an_existing_tree(saved, tmp_path, link_mode):
    store, source, _ = saved
    target = tmp_path / "target"
    (target / "node_modules" / "pkg").mkdir(parents=True)
    (target / "node_modules" / "pkg" / "index.js").write_text("stale\n")
    (target / "node_modules" / "local.txt").write_text("mine\n")
    store.restore(store.lookup(["deps-1"], VERSION), at(target), link_mode)
    assert (target / "node_modules" / "pkg" / "index.js").read_text() == "module.exports = 1\n"
    assert (target / "node_modules" / "local.txt").read_text() == "mine\n"  # as tar -x: extra files stay
    assert (target / "node_modules" / "pkg" / "lib" / "big.bin").read_bytes() == \
        (source / "node_modules" / "pkg" / "lib" / "big.bin").read_bytes()
    assert sorted(p.name for p in target.iterdir()) == ["node_modules"]  # no staging directory left


def test_sockets_and_fifos_are_left_out(tmp_path):
    source = tmp_path / "source"
    (source / "node_modules").mkdir(parents=True)
    (source / "node_modules" / "a.js").write_text("a\n")
    os.mkfifo(source / "node_modules" / "pipe")
    store = Store(tmp_path / "store")
    result = store.save("deps-fifo", VERSION, ["node_modules"], in_ws(source, relative(walk(source), source)))
    assert result.saved and result.files == 1
    assert [r.path for r in store.load(VERSION, "deps-fifo").records] == ["node_modules", "node_modules/a.js"]


def test_a_read_only_directory_keeps_its_mode_and_contents(tmp_path):
    source = tmp_path / "source"
    (source / "node_modules" / "sealed").mkdir(parents=True)
    (source / "node_modules" / "sealed" / "a.js").write_text("a\n")
    (source / "node_modules" / "sealed").chmod(0o555)
    store = Store(tmp_path / "store")
    store.save("deps-ro", VERSION, ["node_modules"], in_ws(source, relative(walk(source), source)))
    target = tmp_path / "target"
    try:
        store.restore(store.lookup(["deps-ro"], VERSION), at(target), "hardlink")
        assert (target / "node_modules" / "sealed").stat().st_mode & 0o777 == 0o555
        assert (target / "node_modules" / "sealed" / "a.js").read_text() == "a\n"
    finally:
        for tree in (source, target):
            (tree / "node_modules" / "sealed").chmod(0o755)


def test_a_killed_restores_staging_directory_is_removed_by_the_next(saved, tmp_path):
    store, _, _ = saved
    target = tmp_path / "target"
    stale = target / f".ci-actions-restore-{_reaped_pid()}-0000"
    (stale / "node_modules").mkdir(parents=True)
    live = target / f".ci-actions-restore-{os.getpid()}-1111"  # another restore, still running
    live.mkdir()
    store.restore(store.lookup(["deps-1"], VERSION), at(target))
    assert not stale.exists() and live.exists()
    assert sorted(p.name for p in target.iterdir()) == [live.name, "node_modules"]


def _reaped_pid() -> int:
    """The pid of a process that has ended and been waited for: no process has it now."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_content_already_stored_is_found_after_a_long_run_of_new_files(tmp_path):
    """After many misses in a row a save writes first (see Blobs._look_first); content that exists
    must still cost no new bytes, whether a probe or link()'s EEXIST finds it."""
    def tree(root: Path, files: dict[str, bytes]) -> list[str]:
        for name, data in files.items():
            (root / "node_modules" / name).parent.mkdir(parents=True, exist_ok=True)
            (root / "node_modules" / name).write_bytes(data)
        return relative(walk(root), root)

    # Runs of new content then old, in each worker's slice of the paths.
    old = {f"{run}-old/{n:03}.js": f"old {run} {n}\n".encode() for run in (1, 3) for n in range(150)}
    new = {f"{run}-new/{n:03}.js": f"new {run} {n}\n".encode() for run in (0, 2) for n in range(150)}
    store = Store(tmp_path / "store")
    first = store.save("deps-old", VERSION, ["node_modules"],
                       in_ws(tmp_path / "a", tree(tmp_path / "a", old)))
    second = store.save("deps-both", VERSION, ["node_modules"],
                        in_ws(tmp_path / "b", tree(tmp_path / "b", {**new, **old})))
    assert first.new_bytes == sum(map(len, old.values()))
    assert second.new_bytes == sum(map(len, new.values()))
    assert len(list(store.blobs.dir.glob("*/*"))) == 600
    assert store.verify().problems == []


def test_storing_a_blob_outside_held_is_refused(tmp_path):
    (tmp_path / "a.js").write_text("a\n")
    store = Store(tmp_path / "store")
    fd = os.open(tmp_path / "a.js", os.O_RDONLY)
    try:
        with pytest.raises(RuntimeError, match=r"outside Blobs\.held"):
            store.blobs.put(fd, 0o644, 2)
        store.blobs.dir.mkdir(parents=True)
        store.blobs.create_layout()
        with store.blobs.held():
            assert store.blobs.put(fd, 0o644, 2).new_bytes == 2
    finally:
        os.close(fd)


def test_copies_within_one_save_are_stored_once(tmp_path):
    """Identical files in one tree (LICENSE files, vendored copies) share a blob and count their bytes
    once; the same bytes with the executable bit are a blob of their own."""
    source = tmp_path / "source"
    big = os.urandom(9 * 1024 * 1024)  # streamed, not read whole
    for package in ("a", "b", "c"):
        (source / "node_modules" / package).mkdir(parents=True)
        (source / "node_modules" / package / "LICENSE").write_text("MIT\n")
        (source / "node_modules" / package / "engine.bin").write_bytes(big)
    (source / "node_modules" / "c" / "LICENSE").chmod(0o755)
    store = Store(tmp_path / "store")
    result = store.save("deps-1", VERSION, ["node_modules"], in_ws(source, relative(walk(source), source)))
    assert result.files == 6 and result.bytes == 3 * (4 + len(big))
    assert result.new_bytes == 4 + 4 + len(big)
    assert sorted(p.name[64:] for p in store.blobs.dir.glob("*/*")) == ["", "", "x"]
    target = tmp_path / "target"
    store.restore(store.lookup(["deps-1"], VERSION), at(target), "copy")
    assert snapshot(target) == snapshot(source)


@pytest.mark.parametrize("left", [b"", b"module.exp"])
def test_a_blob_left_short_by_a_crash_is_replaced_not_trusted(tmp_path, left):
    """A power cut can leave a blob's name with fewer bytes than its content (delayed allocation), and
    a killed writer a partial file. A save that needs that content must store it again, whole."""
    source = tmp_path / "source"
    (source / "node_modules").mkdir(parents=True)
    content = b"module.exports = 1\n"
    (source / "node_modules" / "index.js").write_bytes(content)
    store = Store(tmp_path / "store")
    store.blobs.dir.mkdir(parents=True)
    store.blobs.create_layout()
    short = store.blobs.path(hashlib.sha256(content).hexdigest())
    short.write_bytes(left)
    short.chmod(0o444)
    result = store.save("deps-1", VERSION, ["node_modules"], in_ws(source, relative(walk(source), source)))
    assert result.saved and result.new_bytes == len(content)
    assert store.blobs.path(short.name).read_bytes() == content
    assert store.verify().problems == []
    target = tmp_path / "target"
    store.restore(store.lookup(["deps-1"], VERSION), at(target), "copy")
    assert snapshot(target) == snapshot(source)


def test_blobs_are_read_only_for_everyone_whatever_the_umask(tmp_path):
    """A restrictive umask must not leave blobs unreadable to the other users of a shared store."""
    source = tmp_path / "source"
    (source / "node_modules").mkdir(parents=True)
    (source / "node_modules" / "a.js").write_text("a\n")
    (source / "node_modules" / "tool").write_text("#!/bin/sh\n")
    (source / "node_modules" / "tool").chmod(0o755)
    (source / "node_modules" / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))  # streamed via tmp/
    old = os.umask(0o077)
    try:
        store = Store(tmp_path / "store")
        saved = store.save("deps-1", VERSION, ["node_modules"], in_ws(source, relative(walk(source), source)))
        assert saved.saved
    finally:
        os.umask(old)
    modes = sorted(oct(blob.stat().st_mode & 0o777) for blob in store.blobs.dir.glob("*/*"))
    assert modes == ["0o444", "0o444", "0o555"]
