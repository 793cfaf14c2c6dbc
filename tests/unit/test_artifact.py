"""The workspace artifact: faithful round trip, verification, and hostile archives refused."""

import fcntl
import hashlib
import io
import json
import os
import tarfile
import time

import pytest
import zstandard

from ci_actions.artifact import (
    ARCHIVE,
    CHUNK,
    MANIFEST,
    ArtifactError,
    RunId,
    _widen,
    find,
    pack,
    remove_expired,
    unpack,
)

RUN = RunId("acme/loyalty-app", "1234", 1)


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    (ws / "backend" / "src").mkdir(parents=True)
    (ws / "backend" / "src" / "app.ts").write_text("export const x = 1\n")
    (ws / "backend" / ".env.example").write_text("PORT=3000\n")
    script = ws / "backend" / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    (ws / "backend" / "node_modules" / ".prisma" / "client").mkdir(parents=True)
    (ws / "backend" / "node_modules" / ".prisma" / "client" / "index.js").write_text("generated")
    (ws / "backend" / "generated" / ".prisma").mkdir(parents=True)
    (ws / "backend" / "generated" / ".prisma" / "client.js").write_text("hidden but kept")
    (ws / "link-to-src").symlink_to("backend/src")
    (ws / "empty").mkdir()
    deep = ws.joinpath(*[f"level-{i}-of-a-long-path" for i in range(8)])  # past ustar's 100+155 bytes
    deep.mkdir(parents=True)
    (deep / "naïve café ☕.txt").write_text("unicode name")
    return ws


def state(root):
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        mode = path.lstat().st_mode & 0o777
        out[rel] = ("link", os.readlink(path)) if path.is_symlink() else (
            ("dir", mode) if path.is_dir() else ("file", mode, path.read_bytes()))
    return out


def test_round_trip_keeps_hidden_files_modes_symlinks_and_excludes_node_modules(workspace, tmp_path):
    packed = pack(workspace, RUN.directory(tmp_path / "root"), run=RUN, exclude=["node_modules"],
                  metadata={"entries": [1]})
    target = tmp_path / "job" / "ws"
    target.mkdir(parents=True)
    (target / "stale-from-last-run.txt").write_text("old")
    manifest = unpack(find(tmp_path / "root", RUN), target)
    expected = {k: v for k, v in state(workspace).items() if "node_modules" not in k}
    assert state(target) == expected
    assert manifest.metadata == {"entries": [1]}
    assert packed.manifest.files["backend/generated/.prisma/client.js"] == len(b"hidden but kept")


def test_rerun_attempt_finds_the_earlier_attempts_artifact(workspace, tmp_path):
    pack(workspace, RUN.directory(tmp_path), run=RUN, exclude=[])
    assert find(tmp_path, RunId(RUN.repository, RUN.run_id, 3)) == RUN.directory(tmp_path, 1)
    with pytest.raises(ArtifactError, match="no workspace artifact for acme/loyalty-app run 999"):
        find(tmp_path, RunId(RUN.repository, "999", 1))


def test_a_second_pack_for_the_same_run_is_refused(workspace, tmp_path):
    pack(workspace, RUN.directory(tmp_path), run=RUN, exclude=[])
    with pytest.raises(ArtifactError, match="already exists"):
        pack(workspace, RUN.directory(tmp_path), run=RUN, exclude=[])


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "manifest"])
def test_damaged_artifact_is_refused_and_nothing_is_unpacked(workspace, tmp_path, damage):
    directory = pack(workspace, RUN.directory(tmp_path), run=RUN, exclude=[]).directory
    archive = directory / ARCHIVE
    data = archive.read_bytes()
    if damage == "truncate":
        archive.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        archive.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    elif damage == "delete":
        archive.unlink()
    else:
        (directory / MANIFEST).write_text("{not json")
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("untouched")
    with pytest.raises(ArtifactError, match=r"acme/loyalty-app run 1234 attempt 1|unreadable"):
        unpack(directory, target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir() if "unpack" in p.name] == []


def hostile(tmp_path, members):
    """An archive with a correct manifest, so only the member checks can refuse it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    archive = zstandard.ZstdCompressor().compress(buffer.getvalue())
    directory = tmp_path / "hostile"
    directory.mkdir()
    (directory / ARCHIVE).write_bytes(archive)
    files = {info.name: len(data) for info, data in members if info.isreg()}
    (directory / MANIFEST).write_text(json.dumps({
        "run": str(RUN), "archive_sha256": hashlib.sha256(archive).hexdigest(),
        "archive_bytes": len(archive), "files": files, "created": time.time(), "metadata": {},
        "format": "ci-actions-workspace-1"}))
    return directory


def member(name, kind=tarfile.REGTYPE, data=b"x", linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o644
    if kind == tarfile.REGTYPE:
        info.size = len(data)
    return info, data if kind == tarfile.REGTYPE else None


HOSTILE = {
    "absolute path": [member("/tmp/ci-actions-evil")],
    "dot-dot": [member("../evil")],
    "symlink escaping": [member("out", tarfile.SYMTYPE, linkname="/etc"), member("out/evil")],
    "relative symlink escaping": [member("up", tarfile.SYMTYPE, linkname="../../..")],
    "hardlink escaping": [member("pw", tarfile.LNKTYPE, linkname="../../../etc/passwd")],
    "character device": [member("null", tarfile.CHRTYPE)],
    "fifo": [member("pipe", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_archives_are_refused(tmp_path, kind):
    directory = hostile(tmp_path, HOSTILE[kind])
    target = tmp_path / "job" / "ws"
    target.mkdir(parents=True)
    (target / "keep.txt").write_text("untouched")
    with pytest.raises(ArtifactError, match="refused archive member"):
        unpack(directory, target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert not (tmp_path / "evil").exists() and not os.path.lexists("/tmp/ci-actions-evil")


def test_retention_removes_old_runs_but_never_the_current_one(workspace, tmp_path):
    old = pack(workspace, RunId("a/b", "1", 1).directory(tmp_path), run=RunId("a/b", "1", 1), exclude=[])
    current = pack(workspace, RunId("a/b", "2", 1).directory(tmp_path), run=RunId("a/b", "2", 1), exclude=[])
    two_days_ago = time.time() - 2 * 86400
    for packed in (old, current):
        os.utime(packed.directory / MANIFEST, (two_days_ago, two_days_ago))
    removed = remove_expired(tmp_path, older_than=86400, keep=current.directory)
    assert removed == [old.directory]
    assert (current.directory / MANIFEST).exists()


def test_a_walk_that_fails_leaves_no_archive_and_no_manifest(tmp_path):
    destination = tmp_path / "run"
    with pytest.raises(ArtifactError, match=r"packing .*gone for b/b.*failed: .*No such file"):
        pack(tmp_path / "gone", destination, run=RunId("b/b", "1", 1), exclude=[])
    assert list(destination.iterdir()) == []


def test_the_pipes_to_tar_hold_a_whole_chunk():
    """With the default 64 KiB pipe, decompressing and tar's extracting take turns (unpack ran at 0.69x
    `zstd -dc | tar -x`); a pipe that holds a chunk lets them overlap (1.06x)."""
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader, os.fdopen(write_end, "wb") as writer:
        _widen(writer)
        assert fcntl.fcntl(writer.fileno(), fcntl.F_GETPIPE_SZ) == CHUNK
        _widen(reader)  # either end sets the pipe's size
        assert fcntl.fcntl(reader.fileno(), fcntl.F_GETPIPE_SZ) == CHUNK


def test_a_pipe_the_kernel_will_not_widen_keeps_its_size(monkeypatch):
    """Past /proc/sys/fs/pipe-max-size (or the memory it may take) F_SETPIPE_SZ is refused: unpacking
    goes on at the default size instead of failing."""
    monkeypatch.setattr("ci_actions.artifact.CHUNK", 2**30)
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb"), os.fdopen(write_end, "wb") as writer:
        before = fcntl.fcntl(writer.fileno(), fcntl.F_GETPIPE_SZ)
        _widen(writer)
        assert fcntl.fcntl(writer.fileno(), fcntl.F_GETPIPE_SZ) == before
