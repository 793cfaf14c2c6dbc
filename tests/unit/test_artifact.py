"""The workspace artifact: faithful round trip, verification, and hostile archives refused."""

import fcntl
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
import threading
import time

import pytest
import zstandard

from ci_actions import artifact
from ci_actions.artifact import (
    ARCHIVE,
    CHUNK,
    MANIFEST,
    UNPACK_CEILING,
    UNPACK_FLOOR,
    UNPACK_RATIO,
    ArtifactError,
    RunId,
    _Landed,
    _tar,
    _widen,
    find,
    pack,
    remove_expired,
    unpack,
    unpack_cap,
)
from ci_actions.tar_scan import BLOCK
from tests.support.tar_headers import DEVICE, END, FIFO, file, header, meta, padded, pax

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


# --- hostile archives built by hand; the attacker writes the manifest too, so it matches ---------------

def raw_artifact(tmp_path, stream: bytes, files: dict[str, int], name: str = "hostile"):
    archive = zstandard.ZstdCompressor().compress(stream)
    directory = tmp_path / name
    directory.mkdir()
    (directory / ARCHIVE).write_bytes(archive)
    write_manifest(directory, archive_sha256=hashlib.sha256(archive).hexdigest(), archive_bytes=len(archive),
                   files=files)
    return directory


def write_manifest(directory, **fields):
    manifest = {"run": str(RUN), "archive_sha256": "0" * 64, "archive_bytes": 0, "files": {},
                "created": time.time(), "metadata": {}, "format": "ci-actions-workspace-1", **fields}
    (directory / MANIFEST).write_text(json.dumps(manifest))


@pytest.fixture
def job(tmp_path):
    """A job's workspace with a file in it, and a sentinel directory beside it that nothing may touch."""
    ws = tmp_path / "job" / "ws"
    ws.mkdir(parents=True)
    (ws / "keep.txt").write_text("untouched")
    (tmp_path / "job" / "sentinel").mkdir()
    (tmp_path / "job" / "sentinel" / "secret.txt").write_text("do not overwrite")
    return ws


def tree(root):
    """Everything below `root` as lstat sees it; special files are named, never opened."""
    out = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            kind = stat.S_IFMT(info.st_mode)
            content = None
            if kind == stat.S_IFREG:
                with open(path, "rb") as handle:
                    content = handle.read()
            elif kind == stat.S_IFLNK:
                content = os.readlink(path)
            out[os.path.relpath(path, root)] = (kind, stat.S_IMODE(info.st_mode), content)
    return out


def refused(directory, ws, seconds: float = 60) -> str:
    """unpack's error message; it must finish in time (a hang fails the test instead of blocking it)."""
    outcome = []

    def run():
        try:
            unpack(directory, ws)
            outcome.append(None)
        except Exception as exc:  # the test checks what it was
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"unpack still running after {seconds} s"
    assert isinstance(outcome[0], ArtifactError), f"unpack gave {outcome[0]!r}"
    return str(outcome[0])


def assert_untouched(job_dir, before):
    """The workspace and its sentinel neighbour are as they were, no staging is left, and nothing that
    the archive tried to make (device, FIFO, link) exists anywhere."""
    assert tree(job_dir) == before
    assert sorted(p.name for p in job_dir.iterdir()) == ["sentinel", "ws"]


def smuggle(special: bytes) -> dict[str, tuple[bytes, dict[str, int]]]:
    """Ways past the old scanner, each hiding `special` (a FIFO or device header) where GNU tar finds it."""
    hidden = special + bytes(BLOCK)  # inside a 1024-byte "file", then an end block for tar
    return {
        "pax size hides a member in a file's data": (
            pax(size="0") + header(b"a", b"0", 1024) + hidden + END, {"a": 1024}),
        "global pax size hides a member": (
            pax(b"g", size="0") + header(b"a", b"0", 1024) + hidden + END, {"a": 1024}),
    }


ESCAPES = {
    "GNU K after a pax linkpath": pax(linkpath="/etc") + meta(b"K", b".\0") + header(b"etc", b"2", link=b"x"),
    "global pax linkpath": pax(b"g", linkpath="/etc") + header(b"etc", b"2", link=b"."),
    "global pax path": pax(b"g", path="up") + header(b"sub/up", b"2", link=b".."),
    "a -> . then a/b -> ..": header(b"a", b"2", link=b".") + header(b"a/b", b"2", link=b".."),
    "member below a symlink": header(b"a", b"2", link=b".") + file(b"a/f", b"x"),
    "a later link makes an earlier one escape": (header(b"x", b"2", link=b"a/..")
                                                 + header(b"a", b"2", link=b".")),
}
SMUGGLED = {f"{kind}: {trick}": case for kind, special in (("FIFO", FIFO), ("device", DEVICE))
            for trick, case in smuggle(special).items()}


@pytest.mark.parametrize("case", list(SMUGGLED) + list(ESCAPES))
def test_a_hostile_archive_changes_nothing_outside_staging(tmp_path, job, case):
    if case in SMUGGLED:
        stream, files = SMUGGLED[case]
    else:
        stream, files = ESCAPES[case] + END, {"a/f": 1} if "below" in case else {}
    directory = raw_artifact(tmp_path, stream, files)
    before = tree(job.parent)
    message = refused(directory, job)
    assert "acme/loyalty-app run 1234 attempt 1: refused archive member" in message
    assert_untouched(job.parent, before)


@pytest.mark.parametrize(("case", "stream", "message"), [
    ("malformed pax record", meta(b"x", b"zz path=evil\n") + file(b"a", b"x") + END, "malformed pax record"),
    ("pax record of length 0", meta(b"x", b"0 path=a\n") + file(b"a", b"x") + END, "malformed pax record"),
    ("non-octal size", header(b"a", size_field=b"0000000001x\0") + padded(b"x") + END, "not an octal number"),
])
def test_a_malformed_header_is_refused_and_never_hangs(tmp_path, job, case, stream, message):
    directory = raw_artifact(tmp_path, stream, {"a": 1})
    before = tree(job.parent)
    assert message in refused(directory, job)
    assert_untouched(job.parent, before)


def test_a_decompression_bomb_stops_at_the_cap(tmp_path, job):
    """8 KB of zstd that would become 256 MiB."""
    size = 256 * 1024 * 1024
    compressor = zstandard.ZstdCompressor(level=19).compressobj()
    parts = [compressor.compress(header(b"zeros", b"0", size))]
    parts += [compressor.compress(bytes(CHUNK)) for _ in range(size // CHUNK)]
    archive = b"".join(parts) + compressor.compress(END) + compressor.flush()
    assert len(archive) < 16 * 1024
    directory = tmp_path / "bomb"
    directory.mkdir()
    (directory / ARCHIVE).write_bytes(archive)
    write_manifest(directory, archive_sha256=hashlib.sha256(archive).hexdigest(), archive_bytes=len(archive),
                   files={"zeros": size})
    before = tree(job.parent)
    message = refused(directory, job)
    assert f"{RUN}: the archive unpacks to more than {UNPACK_FLOOR} bytes" in message
    assert "decompression bomb" in message
    assert_untouched(job.parent, before)


def test_the_cap_is_a_multiple_of_the_packed_size_between_a_floor_and_a_ceiling():
    assert unpack_cap(8 * 1024) == UNPACK_FLOOR
    assert unpack_cap(10 * 1024**2) == UNPACK_RATIO * 10 * 1024**2
    assert unpack_cap(10 * 1024**3) == UNPACK_CEILING


def test_setuid_setgid_and_sticky_bits_are_dropped(tmp_path, job):
    stream = (header(b"d", b"5", mode=0o3777) + file(b"d/shell", b"#!/bin/sh\n", mode=0o4755)
              + file(b"group", b"g", mode=0o2750) + END)
    directory = raw_artifact(tmp_path, stream, {"d/shell": 10, "group": 1})
    unpack(directory, job)
    assert stat.S_IMODE((job / "d").lstat().st_mode) == 0o777
    assert stat.S_IMODE((job / "d" / "shell").lstat().st_mode) == 0o755
    assert stat.S_IMODE((job / "group").lstat().st_mode) == 0o750


def test_hardlinked_files_round_trip_as_one_file(tmp_path, workspace):
    (workspace / "twin").hardlink_to(workspace / "backend" / "run.sh")
    packed = pack(workspace, RUN.directory(tmp_path / "root"), run=RUN, exclude=["node_modules"])
    target = tmp_path / "target"
    unpack(packed.directory, target)
    assert (target / "twin").read_text() == "#!/bin/sh\n"
    assert (target / "twin").stat().st_ino == (target / "backend" / "run.sh").stat().st_ino
    assert packed.manifest.files["twin"] == packed.manifest.files["backend/run.sh"] == 10


def test_a_fifo_in_the_workspace_is_skipped_and_named(tmp_path, workspace):
    os.mkfifo(workspace / "backend" / "pipe")
    packed = pack(workspace, RUN.directory(tmp_path / "root"), run=RUN, exclude=["node_modules"])
    assert packed.skipped == ["backend/pipe"]
    target = tmp_path / "target"
    unpack(packed.directory, target)
    assert not os.path.lexists(target / "backend" / "pipe")
    assert (target / "backend" / "run.sh").exists()


@pytest.mark.parametrize("depth", [300, 1200])
def test_a_tree_deeper_than_unpack_takes_is_refused_by_pack_not_truncated(tmp_path, workspace, depth):
    """A tree past 256 levels packed into an artifact unpack always refused; past Python's recursion,
    the walk's RecursionError ended its thread quietly and a truncated artifact was published."""
    fd = os.open(workspace, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        fd, parent = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(parent)
    os.close(fd)
    try:
        with pytest.raises(ArtifactError, match="more than 256 levels deep"):
            pack(workspace, RUN.directory(tmp_path / "root"), run=RUN, exclude=["node_modules"])
        assert not (RUN.directory(tmp_path / "root") / MANIFEST).exists()
    finally:
        subprocess.run(["rm", "-rf", str(workspace / "d")], check=True)


def landed(staging):
    result = _Landed(str(RUN))
    fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    try:
        result.walk(fd)
    finally:
        os.close(fd)
    return result


def test_what_landed_is_checked_on_disk(tmp_path):
    """The second line, behind the scanner: a FIFO, a link that escapes through another, or a file
    hardlinked to one outside is refused even if tar made it."""
    staging = tmp_path / "staging"
    (staging / "sub").mkdir(parents=True)
    os.mkfifo(staging / "sub" / "pipe")
    with pytest.raises(ArtifactError, match=r"refused archive member 'sub/pipe': it landed as a FIFO"):
        landed(staging)
    (staging / "sub" / "pipe").unlink()
    (staging / "x").symlink_to("a/..")
    (staging / "a").symlink_to(".")
    with pytest.raises(ArtifactError, match=r"'x': the symlink to 'a/\.\.' leads outside"):
        landed(staging).check()
    (staging / "x").unlink()
    (tmp_path / "outside").write_text("secret")
    (staging / "sub" / "inside").hardlink_to(tmp_path / "outside")
    with pytest.raises(ArtifactError, match=r"'sub/inside': it is hardlinked to a file outside"):
        landed(staging).check()


@pytest.mark.parametrize("broken", [
    {"files": ["a"]}, {"archive_bytes": "12"}, {"archive_sha256": "../../etc/shadow"}, {"files": {"a": -1}},
    {"files": {"a": True}}, {"metadata": []}, {"extra": 1}, {"run": None},
])
def test_a_manifest_with_a_wrong_field_is_refused_cleanly(tmp_path, broken):
    directory = tmp_path / "run"
    directory.mkdir()
    write_manifest(directory, **broken)
    with pytest.raises(ArtifactError, match="is unreadable"):
        unpack(directory, tmp_path / "ws")


def test_a_manifest_that_is_not_an_object_is_refused(tmp_path):
    (tmp_path / MANIFEST).write_text("[1, 2]")
    with pytest.raises(ArtifactError, match="is unreadable"):
        unpack(tmp_path, tmp_path / "ws")


@pytest.mark.parametrize("name", [ARCHIVE, MANIFEST])
def test_a_fifo_or_link_in_place_of_an_artifact_file_is_damage_not_a_hang(tmp_path, job, workspace, name):
    directory = pack(workspace, RUN.directory(tmp_path / "root"), run=RUN, exclude=[]).directory
    (directory / name).rename(tmp_path / name)
    os.mkfifo(directory / name)
    assert "not a regular file" in refused(directory, job)
    (directory / name).unlink()
    (directory / name).symlink_to(tmp_path / name)
    assert refused(directory, job)


def test_tar_past_its_deadline_is_killed(monkeypatch):
    monkeypatch.setattr(artifact, "TAR_DEADLINE", 0.5)
    started = time.monotonic()
    with pytest.raises(ArtifactError, match=r"tar ran longer than 0\.5 s and was killed"), \
            _tar(["sleep", "60"], "failed", stdin=subprocess.PIPE):
        pass
    assert time.monotonic() - started < 30


def test_on_any_error_tar_is_killed_and_both_pipe_ends_closed():
    with pytest.raises(ZeroDivisionError), _tar(["cat"], "failed", stdin=subprocess.PIPE,
                                                 stdout=subprocess.PIPE) as tar:
        raise ZeroDivisionError
    assert tar.returncode is not None and tar.stdin.closed and tar.stdout.closed


def test_a_chatty_tar_never_blocks_on_its_messages():
    """200 KB on stderr is more than a pipe holds: tar's messages go to a file, and its last words are
    what the error quotes."""
    script = "head -c 200000 /dev/zero | tr '\\0' x >&2; echo; echo 'the real reason' >&2; exit 2"
    with pytest.raises(ArtifactError, match=r"failed: .*the real reason"), \
            _tar(["sh", "-c", script], "failed", stdin=subprocess.PIPE):
        pass


def test_retention_never_follows_a_link_planted_under_the_root(tmp_path):
    outside = tmp_path / "outside" / "1" / "1"
    outside.mkdir(parents=True)
    (outside / MANIFEST).write_text("{}")
    os.utime(outside / MANIFEST, (0, 0))
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "planted").symlink_to(tmp_path / "outside")
    assert remove_expired(tmp_path / "root", older_than=86400, keep=tmp_path / "none") == []
    assert (outside / MANIFEST).exists()


def test_a_tree_deeper_than_python_recurses_is_walked(tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    fd = os.open(staging, os.O_RDONLY)
    for _ in range(1500):  # 3000 bytes of path: tar makes it, and a recursive walk could not go down it
        os.mkdir("d", dir_fd=fd)
        fd, parent = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(parent)
    os.close(os.open("f", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
    os.close(fd)
    try:
        assert landed(staging).files == {"d/" * 1500 + "f": 0}
    finally:  # shutil.rmtree (pytest's clean-up too) recurses, and would fail on it
        subprocess.run(["rm", "-rf", "--", str(staging)], check=True)
