"""The store's own safety: no hang on a hostile blob or a busy process, no read through a link on a
save, no damaged blob adopted, orphans reclaimed, and a store other users can write to refused.

Each hostile store is built by hand; each check that could hang runs in a child process with a
timeout, so that a regression fails instead of hanging the suite.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ci_actions.cache import CacheSpec, enforce_budget, restore, save
from ci_actions.paths import WORKSPACE, Tree
from ci_actions.store import slices
from ci_actions.store.blobs import BLOB_MTIME_NS
from ci_actions.store.keys import cache_version
from ci_actions.store.store import Store, UnsafeStore, _flushing

PATHS = ["node_modules"]
VERSION = cache_version(PATHS)
SHARED = str(Path(slices.__file__).parents[2])
TIMEOUT = 60  # seconds: far more than any of these takes, far less than forever


CACHE_LOCAL = str(Path(SHARED).parent / "actions" / "cache-local")
CODE = {**os.environ, "PYTHONPATH": os.pathsep.join([SHARED, CACHE_LOCAL])}  # this checkout's code


def cli(*args: str, cwd: Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """`python -m ci_actions cache ...` of this checkout, killed (and the test failed) if it hangs."""
    return subprocess.run([sys.executable, "-m", "ci_actions", "cache", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False, env=CODE)


def script(code: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {SHARED!r})\n"
                           + textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout,
                          check=False)


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / "node_modules" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def state(root: Path) -> dict[str, bytes | str]:
    """Every path under root, with its bytes or link target: to show nothing there changed."""
    out: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else "dir"
    return out


def blob_contents(store: Path) -> set[bytes]:
    return {blob.read_bytes() for blob in (store / "blobs").glob("*/*") if blob.is_file()}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return tree(tmp_path / "ws", {"pkg/index.js": b"module.exports = 1\n", "pkg/other.js": b"other\n",
                                  "b/big.bin": os.urandom(9 * 1024 * 1024)})


def spec(ws: Path, key: str = "deps-1", *, shared: bool = False, paths=PATHS) -> CacheSpec:
    return CacheSpec(key, list(paths), ws, ws.parent / "store", shared=shared)


# -- no hang ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["pkg/index.js", "b/big.bin"])
@pytest.mark.parametrize("link_mode", ["copy", "hardlink"])
def test_a_fifo_in_place_of_a_blob_is_a_miss_not_a_hang(ws, tmp_path, which, link_mode):
    assert save(spec(ws)).saved
    store = Store(ws.parent / "store")
    record = next(r for r in store.load(VERSION, "deps-1").records if r.path.endswith(which))
    blob = store.blobs.path(record.digest)
    blob.unlink()
    os.mkfifo(blob)
    target = tmp_path / "target"
    target.mkdir()
    result = cli("restore", "--cache-dir", str(store.root), "--key", "deps-1", "--path", "node_modules",
                 "--link-mode", link_mode, cwd=target)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cache-matched-key"] == ""
    assert "corrupt blob" in result.stderr and "dropped it" in result.stderr
    assert list(target.iterdir()) == []  # nothing placed, no FIFO linked in
    assert store.headers() == []


def test_verify_reports_a_fifo_blob_without_hanging(ws):
    assert save(spec(ws)).saved
    store = Store(ws.parent / "store")
    record = next(r for r in store.load(VERSION, "deps-1").records if r.path.endswith("other.js"))
    store.blobs.path(record.digest).unlink()
    os.mkfifo(store.blobs.path(record.digest))
    result = cli("verify", "--cache-dir", str(store.root), cwd=ws)
    assert result.returncode == 1
    assert f"blob {record.digest} is corrupt; entries: deps-1" in result.stdout


def test_the_flusher_keeps_no_descriptor_but_its_own(tmp_path):
    """A flusher that kept another save's pipe end (two saves on two threads) waited on it forever."""
    held = os.pipe()  # what another save's flusher must not keep
    try:
        with _flushing(tmp_path):
            children = Path(f"/proc/self/task/{os.getpid()}/children").read_text().split()
            assert len(children) == 1
            deadline = time.monotonic() + 10
            while len(fds := os.listdir(f"/proc/{children[0]}/fd")) > 2:
                assert time.monotonic() < deadline, f"the flusher still holds {fds}"
                time.sleep(0.01)
    finally:
        for fd in held:
            os.close(fd)


def test_a_worker_keeps_no_other_workers_pipe(monkeypatch):
    monkeypatch.setattr(slices, "WORKERS", 4)

    def pipes() -> set[str]:
        found = set()
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(FileNotFoundError):  # the listing's own fd, closed by now
                if (link := os.readlink(f"/proc/self/fd/{fd}")).startswith("pipe:"):
                    found.add(link)
        return found

    before = pipes()
    results = slices.in_slices(list(range(4)), lambda part: [len(pipes() - before)])
    assert results == [3, 1, 1, 1]  # the parent its read ends; each worker its own write end only


def test_a_worker_that_hangs_is_killed_at_the_deadline():
    result = script("""
        import os, time
        from ci_actions.store import slices
        slices.DEADLINE = 1.0
        parent = os.getpid()
        def work(part):
            if os.getpid() != parent:
                print(os.getpid(), flush=True)
                time.sleep(3600)
            return part
        try:
            slices.in_slices([0, 1], work)
        except slices.WorkerFailed as exc:
            print("failed:", exc)
    """, timeout=30)
    worker, outcome = result.stdout.splitlines()
    assert outcome == "failed: a store worker gave no result within 1 s; killed it"
    assert not Path(f"/proc/{worker}").exists()


def test_two_saves_on_two_threads_of_one_process_do_not_hang(tmp_path):
    """Each save forks a flusher; one that kept the other's pipe end made both wait forever."""
    for n in range(2):
        tree(tmp_path / f"ws{n}", {f"f{i}.js": f"{n} {i}\n".encode() for i in range(50)})
    result = script(f"""
        import threading
        from pathlib import Path
        from ci_actions.cache import CacheSpec, save
        root = Path({str(tmp_path)!r})
        results = []
        def run(n, round):
            results.append(save(CacheSpec(f"deps-{{n}}-{{round}}", ["node_modules"], root / f"ws{{n}}",
                                          root / "store")))
        for round in range(100):  # the old flushers hung within a few dozen rounds
            threads = [threading.Thread(target=run, args=(n, round)) for n in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        print(sum(r.saved for r in results), [w for r in results for w in r.warnings])
    """, timeout=120)
    assert result.stdout.strip() == "200 []", result.stderr


# -- damage never becomes truth --------------------------------------------------------------------

def test_a_blob_edited_in_place_through_a_hardlink_is_not_adopted(ws, tmp_path):
    """Root ignores the blob's 0444: an edit through a hardlinked restore writes into the store."""
    assert save(spec(ws)).saved
    linked = tmp_path / "linked"
    linked.mkdir()
    assert restore(spec(linked), link_mode="hardlink").hit
    edited = linked / "node_modules" / "pkg" / "index.js"
    assert edited.stat().st_nlink == 2
    with open(edited, "r+b") as handle:  # same size, other bytes: only the mtime tells
        handle.write(b"module.exports = 2\n")
    second = save(spec(ws, "deps-2"))  # the same, intact content again, from the original tree
    assert second.saved and second.new_bytes == len(b"module.exports = 1\n")
    for key in ("deps-2", "deps-1"):
        out = tmp_path / f"out-{key}"
        out.mkdir()
        assert restore(spec(out, key), link_mode="copy").hit
        assert (out / "node_modules" / "pkg" / "index.js").read_bytes() == b"module.exports = 1\n"
    assert edited.read_bytes() == b"module.exports = 2\n"  # the workspace's copy is its own now
    assert Store(ws.parent / "store").verify().problems == []


def test_blobs_are_made_with_one_known_mtime_and_a_touched_intact_one_is_adopted(ws):
    assert save(spec(ws)).saved
    blobs = list((ws.parent / "store" / "blobs").glob("*/*"))
    assert {blob.stat().st_mtime_ns for blob in blobs} == {BLOB_MTIME_NS}
    os.utime(blobs[0])
    assert save(spec(ws, "deps-2")).new_bytes == 0  # re-read, found intact, taken as it is


def test_orphans_of_a_killed_save_make_the_budget_check_prune(tmp_path):
    kept = tree(tmp_path / "kept", {"a.js": b"kept\n"})
    store = tmp_path / "store"
    assert save(CacheSpec("kept", PATHS, kept, store)).saved
    big = tree(tmp_path / "big", {f"p{i % 50}/f{i}.js": os.urandom(4096) for i in range(6000)})
    saving = subprocess.Popen([sys.executable, "-m", "ci_actions", "cache", "save", "--cache-dir", str(store),
                               "--key", "big", "--path", "node_modules"], cwd=big, env=CODE)
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(list((store / "blobs").glob("*/*"))) < 200:
            assert time.monotonic() < deadline and saving.poll() is None, "the save never got going"
            time.sleep(0.005)
    finally:
        saving.send_signal(signal.SIGKILL)
        saving.wait()
    store_ = Store(store)
    # Its forked workers hold the marker's lock until SIGKILL (parent death) reaches them too.
    deadline = time.monotonic() + TIMEOUT
    while store_.failed_saves() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [h.key for _, h in store_.headers()] == ["kept"] and store_.failed_saves() == 1
    orphans = sum(b.stat().st_size for b in (store / "blobs").glob("*/*")) - len(b"kept\n")
    report, warnings = enforce_budget(store, max_bytes=10**12, max_age=86400)  # the headers fit
    assert warnings == [] and report is not None and report.evicted == []
    assert report.orphan_bytes == orphans > 0
    assert blob_contents(store) == {b"kept\n"} and list((store / "tmp").iterdir()) == []
    assert enforce_budget(store, max_bytes=10**12, max_age=86400) == (None, [])


def test_a_symlinked_manifest_is_neither_read_nor_stamped(ws, tmp_path):
    assert save(spec(ws)).saved
    store = Store(ws.parent / "store")
    entry = store.entry_path(VERSION, "deps-1")
    outside = tmp_path / "outside.json"
    outside.write_bytes(entry.read_bytes())
    entry.unlink()
    entry.symlink_to(outside)
    before = outside.read_bytes()
    target = tmp_path / "target"
    target.mkdir()
    outcome = restore(spec(target))
    assert outcome.matched_key is None and list(target.iterdir()) == []
    store._stamp_last_used(VERSION, "deps-1")
    assert store.headers() == [] and store.manifests()[0] == []
    with pytest.raises(Exception, match="link"):
        store.load(VERSION, "deps-1")
    assert outside.read_bytes() == before and not entry.is_symlink()  # the link was dropped, not its target


# -- saves never read through a link ----------------------------------------------------------------

def test_a_path_below_a_symlinked_directory_is_not_saved(ws, tmp_path):
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(b"the production database password\n")
    (outside / "sub" / "more.txt").write_bytes(b"more secrets\n")
    (ws / "link").symlink_to(outside)
    before = state(outside)
    outcome = save(spec(ws, paths=["node_modules", "link/secret.txt", "link/sub/*"]))
    assert outcome.saved
    assert len(outcome.warnings) == 2 and all("link is a symbolic link" in w for w in outcome.warnings)
    assert not blob_contents(ws.parent / "store") & {b"the production database password\n", b"more secrets\n"}
    only = save(spec(ws, "deps-2", paths=["link/secret.txt"]))
    assert not only.saved and "'link/secret.txt' was not saved" in only.warnings[0]
    assert state(outside) == before


def test_a_link_swapped_in_after_the_walk_is_not_followed(ws, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"the production database password\n")
    (ws / "node_modules" / "pkg" / "secret.txt").write_bytes(b"harmless\n")
    matched = ["node_modules", "node_modules/pkg", "node_modules/pkg/secret.txt"]  # what the walk saw
    pkg = ws / "node_modules" / "pkg"
    os.rename(pkg, ws / "node_modules" / "pkg-moved")
    pkg.symlink_to(outside)  # then a directory became a link
    store = Store(tmp_path / "store")
    with pytest.raises(OSError, match="changed during the save"):
        store.save("deps-1", VERSION, PATHS, [Tree(WORKSPACE, str(ws), matched)])
    assert store.headers() == []
    assert b"the production database password\n" not in blob_contents(tmp_path / "store")


def test_a_file_replaced_after_its_lstat_is_not_read(ws):
    """The open must find the inode lstat saw, not whatever took its name since."""
    from ci_actions.store.store import _open_same
    parent = os.open(ws / "node_modules" / "pkg", os.O_RDONLY | os.O_DIRECTORY)
    try:
        seen = os.stat("index.js", dir_fd=parent, follow_symlinks=False)
        os.rename(ws / "node_modules" / "pkg" / "other.js", ws / "node_modules" / "pkg" / "index.js")
        with pytest.raises(OSError, match="was replaced"):
            _open_same(parent, "index.js", seen, "node_modules/pkg/index.js")
    finally:
        os.close(parent)


# -- a shared store is refused unless it is safe ------------------------------------------------------

def _open_up(store: Path) -> None:
    os.chmod(store, 0o777)


def _blobs_to_nobody(store: Path) -> None:
    os.chown(next((store / "blobs").iterdir()), 65534, 65534)


def _group_writable_version(store: Path) -> None:
    os.chmod(next((store / "entries").iterdir()), 0o775)


@pytest.mark.parametrize("damage", [_open_up, _blobs_to_nobody, _group_writable_version])
def test_a_store_others_can_write_is_refused_unless_shared(ws, tmp_path, damage):
    assert save(spec(ws)).saved
    store = ws.parent / "store"
    damage(store)
    target = tmp_path / "target"
    target.mkdir()
    outcome = restore(spec(target))
    assert outcome.matched_key is None and list(target.iterdir()) == []
    assert "UnsafeStore: cache store" in outcome.warnings[0] and "shared-store: true" in outcome.warnings[0]
    refused = save(spec(ws, "deps-2"))
    assert not refused.saved and "is not safe to use" in refused.warnings[0]
    listing = cli("list", "--cache-dir", str(store), cwd=tmp_path)
    assert listing.returncode == 1 and listing.stderr.startswith("error: cache store")
    assert restore(spec(target, shared=True)).hit
    assert save(spec(ws, "deps-2", shared=True)).saved
    assert cli("list", "--cache-dir", str(store), "--shared-store", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(("mode", "refused"), [(0o777, True), (0o1777, False), (0o775, True)])
def test_an_ancestor_others_can_write_is_refused_unless_sticky(ws, tmp_path, mode, refused):
    above = tmp_path / "above"
    above.mkdir()
    os.chmod(above, mode)
    outcome = save(CacheSpec("deps-1", PATHS, ws, above / "cache" / "store"))
    assert outcome.saved is not refused
    if refused:
        assert f"{above} is writable by" in outcome.warnings[0]
        with pytest.raises(UnsafeStore):
            Store(above / "cache" / "store").headers()
    else:
        assert oct(os.stat(above / "cache").st_mode & 0o777) == "0o755"  # made with the store's mode


def test_a_store_reached_through_a_link_others_can_repoint_is_refused(ws, tmp_path):
    """The check judged only where the link led today: a link owned by another user, or in a directory
    others can write to, can be re-pointed at their own store after it."""
    real = tmp_path / "real-store"
    assert save(CacheSpec("deps-1", PATHS, ws, real)).saved
    theirs = tmp_path / "theirs"
    theirs.symlink_to(real)
    os.lchown(theirs, 65534, 65534)
    with pytest.raises(UnsafeStore, match="is a link owned by another user"):
        Store(theirs).headers()
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    (open_dir / "store").symlink_to(real)
    with pytest.raises(UnsafeStore, match=f"{open_dir} is writable by others"):
        Store(open_dir / "store").headers()
    mine = tmp_path / "mine"
    mine.symlink_to(real)
    assert Store(mine).headers()  # a link of our own, in a directory of our own, is fine
