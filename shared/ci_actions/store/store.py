"""The local content-addressed store behind cache-local, prepare-workspace and restore-workspace.

Layout under the store root (see docs/store-format.md)::

    blobs/ab/abcd...[x]           file contents by sha256 (+ "x" when executable), read-only
    entries/<version>/<k>.json    one manifest per (path set, scope, key), published last, by link();
                                  <k> hashes the scope and the case-folded key
    tmp/                          staging on the same filesystem (unpublished), and save-<token>
                                  markers, flock'ed while their save runs
    gc.lock                       readers/writer lock: saves and restores share it, prune owns it
    events.jsonl                  one line per lookup, for `stats`

Publishing is link-then-done: blobs first (fsynced with one syncfs), the manifest last, so an entry is
either whole or absent whatever kills the process. ``link()`` refuses an existing name, which makes the
first writer of a key the winner without any lock.

What is read back may have been written by someone else: manifests are opened without following a
link, saves read the workspace through directory fds that no link can redirect, and a store that other
users can write to is refused unless the caller accepts it (`shared`), as ssh's StrictModes does.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import select
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import filelock

from ci_actions.atomic import fsync_dir, syncfs
from ci_actions.beneath import open_beneath
from ci_actions.paths import HOME, WORKSPACE, Place, Tree
from ci_actions.store import manifest as mf
from ci_actions.store.blobs import BlobCorrupt, BlobMissing, Blobs, Placement, blob_name, reflink_works
from ci_actions.store.eviction import EntryUse, Eviction, plan_eviction
from ci_actions.store.keys import Candidate, choose
from ci_actions.store.manifest import Header, Manifest, ManifestError, Record
from ci_actions.store.placement import Staged, build, move_in, new_staging, open_root
from ci_actions.store.slices import WORKERS, WorkerFailed, die_with_parent, in_slices, kill, reap

LINK_MODES = ("auto", "copy", "hardlink")  # see docs/store-format.md, "Restore placement"
LOCK_TIMEOUT = 120.0  # saves and restores wait this long for a prune to finish
PRUNE_WAIT = 10.0  # a prune gives way sooner: the next save will try again
FLUSH_EVERY = 0.1  # seconds between background syncfs() calls while a save writes blobs
FLUSH_EXIT = 600.0  # seconds the flusher may take to finish its last syncfs once the save is done
STORE_DIR_MODE = 0o755  # whatever the umask: a group-writable store would be refused as unsafe
SAVING = "save-"  # tmp/save-<token>: a save at work (flock held) or one that died (lock free)
READ = os.O_RDONLY | os.O_NONBLOCK  # with open_beneath: no link followed, no FIFO blocks the open


class UnsafeStore(PermissionError):
    """The store, or a directory above it, can be written by other users: they could poison it."""


class EntryBroken(Exception):
    """An entry failed its integrity check and was dropped; the job should treat it as a miss."""


@dataclass(frozen=True)
class SaveResult:
    saved: bool
    message: str
    files: int = 0
    bytes: int = 0
    new_bytes: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


class StoredTree(NamedTuple):
    """What a save stored: its manifest lines and totals (one per worker, then summed)."""

    lines: str
    files: int
    bytes: int
    new_bytes: int


@dataclass(frozen=True)
class RestoreResult:
    key: str
    files: int
    bytes: int
    seconds: float


def _entry_name(key: str, scope: str) -> str:
    """One name per key within a scope, whatever its case: keys match case-insensitively."""
    return hashlib.sha256(f"{scope}\0{key.casefold()}".encode()).hexdigest()[:40] + ".json"


def _syncfs(path: Path) -> None:
    """Flush the store's filesystem once, instead of one fsync per blob."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        syncfs(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _flushing(path: Path, every: float = FLUSH_EVERY) -> Iterator[None]:
    """syncfs() over and over, in a forked process, while blobs are being written: the disk works
    while the CPUs read and hash, and the syncfs that makes the save durable only waits for the tail.
    A process rather than a thread, so that the workers forked meanwhile fork a single-threaded parent.

    The flusher closes every descriptor it inherited but its own two at once: one it kept (another
    save's pipe, in a process that saves on two threads) would keep that save's flusher waiting."""
    root = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    read_end, write_end = os.pipe()
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        for fd in (root, read_end, write_end):
            os.close(fd)
        raise
    if pid == 0:
        try:
            low, high = sorted((root, read_end))
            os.closerange(0, low)
            os.closerange(low + 1, high)
            os.closerange(high + 1, os.sysconf("SC_OPEN_MAX"))
            die_with_parent(parent)
            while not select.select([read_end], [], [], every)[0]:  # until the parent closes the pipe
                syncfs(root)
        finally:
            os._exit(0)
    os.close(read_end)
    os.close(root)
    try:
        yield
    finally:
        os.close(write_end)
        if reap(pid, time.monotonic() + FLUSH_EXIT) is None:
            kill(pid)
            raise WorkerFailed(f"the store's flusher did not finish within {FLUSH_EXIT:.0f} s; killed it")


def _judge(path: Path, st: os.stat_result, *, ancestor: bool) -> str | None:
    """What makes a directory unsafe to trust, if anything (ssh's StrictModes rules)."""
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory (a link or a file where the store keeps a directory)"
    if st.st_uid not in (os.geteuid(), 0):
        return f"is owned by another user (uid {st.st_uid})"
    if st.st_mode & 0o022 and not (ancestor and st.st_mode & stat.S_ISVTX):
        who = "others" if st.st_mode & 0o002 else "its group"
        return f"is writable by {who} (mode {st.st_mode & 0o7777:o})"
    return None


def _links_on_the_way(root: Path) -> list[tuple[Path, os.stat_result, bool]]:
    """The path as given, component by component: a link another user owns, or one in a directory
    another user can write to, can be re-pointed after any check of where it leads today."""
    found = []
    given = Path(os.path.abspath(root))
    for prefix in [*reversed(given.parents), given]:
        try:
            st = os.lstat(prefix)
        except FileNotFoundError:
            break
        if stat.S_ISLNK(st.st_mode):
            if st.st_uid not in (os.geteuid(), 0):
                raise UnsafeStore(f"cache store {root} is not safe to use: {prefix} is a link owned by "
                                  f"another user (uid {st.st_uid}), who can point it elsewhere at any time")
        else:
            found.append((prefix, st, prefix != given))
    return found


def check_safe(root: Path) -> None:
    """Raise UnsafeStore when another user could write into the store: through the root, a directory
    it holds (blobs/, each shard, entries/, each version, tmp/), or an ancestor, on the path as given
    and where its links lead (a sticky ancestor, such as /tmp, is fine: others cannot rename what is
    ours). A few hundred stats, once per Store."""
    real = Path(os.path.realpath(root))
    found = _links_on_the_way(root)
    with contextlib.suppress(FileNotFoundError):  # what does not exist yet, this user will make
        for ancestor in reversed(real.parents):
            found.append((ancestor, os.stat(ancestor), True))
        found.append((real, os.stat(real, follow_symlinks=False), False))
        for sub in ("blobs", "entries", "tmp"):
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(real / sub, follow_symlinks=False)
                found.append((real / sub, st, False))
                if sub != "tmp" and stat.S_ISDIR(st.st_mode):
                    with os.scandir(real / sub) as entries:
                        found += [(Path(e.path), e.stat(follow_symlinks=False), False) for e in entries]
    for path, st, ancestor in found:
        if problem := _judge(path, st, ancestor=ancestor):
            raise UnsafeStore(
                f"cache store {root} is not safe to use: {path} {problem}, so another user could poison "
                f"the cache. Make it yours and not group/world-writable (chown, chmod go-w), or set "
                f"shared-store: true to accept a store other users can write to.")


class Store:
    """`shared`: accept a store that other users can write to (they can poison it); otherwise such a
    store raises UnsafeStore on first use."""

    def __init__(self, root: Path, *, shared: bool = False) -> None:
        self.root = root
        self.shared = shared
        self.blobs = Blobs(root)
        self.entries_dir = root / "entries"
        self.tmp = root / "tmp"
        self._checked = shared

    # -- layout ---------------------------------------------------------------------------------

    def _check(self) -> None:
        if not self._checked:
            check_safe(self.root)
            self._checked = True

    def _init(self) -> None:
        self._check()
        for directory in (self.entries_dir, self.tmp, self.blobs.dir):
            _make_dirs(directory)
        self.blobs.create_layout()

    def _gc_lock(self, timeout: float = LOCK_TIMEOUT) -> filelock.ReadWriteLock:
        return filelock.ReadWriteLock(self.root / "gc.lock", timeout=timeout, is_singleton=False)

    def entry_path(self, version: str, key: str, scope: str = "") -> Path:
        return self.entries_dir / version[:16] / _entry_name(key, scope)

    def _manifest_paths(self) -> Iterable[Path]:
        return self.entries_dir.glob("*/*.json") if self.entries_dir.exists() else ()

    def _read(self, path: Path, *, first_line: bool = False) -> bytes:
        """A store file's bytes (or its first line), opened beneath the root without following any
        link and without blocking on a FIFO: what is not a regular file is a ManifestError."""
        self._check()
        root = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = open_beneath(root, str(path.relative_to(self.root)), READ)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO):
                raise ManifestError(f"{path.name} is a link or a socket, not a file") from exc
            raise
        finally:
            os.close(root)
        with open(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ManifestError(f"{path.name} is not a regular file")
            return handle.readline() if first_line else handle.read()

    def headers(self, version: str | None = None) -> list[tuple[Path, Header]]:
        """Every readable entry header (of one version, if given); unreadable ones are skipped."""
        self._check()
        found = []
        paths = (self.entries_dir / version[:16]).glob("*.json") if version else self._manifest_paths()
        for path in paths:
            try:
                header = mf.parse_header(self._read(path, first_line=True))
            except (OSError, ManifestError):
                continue
            if version is None or header.version == version:
                found.append((path, header))
        return found

    # -- lookup and restore ----------------------------------------------------------------------

    def lookup(self, keys: Sequence[str], version: str, scopes: Sequence[str] = ("",)) -> Header | None:
        """actions/cache order over entries of this version: exact, then newest prefix, per key; all
        of that in the first scope, then in the next (an entry of any other scope is never seen).

        A store that does not exist yet is empty; one that exists but cannot be read raises OSError.
        """
        with contextlib.suppress(FileNotFoundError):
            os.listdir(self.root)
        found = self.headers(version)
        for scope in scopes:
            headers = {h.key: h for _, h in found if h.scope == scope}
            if chosen := choose(keys, (Candidate(h.key, h.created) for h in headers.values())):
                return headers[chosen]
        return None

    def load(self, version: str, key: str, scope: str = "") -> Manifest:
        path = self.entry_path(version, key, scope)
        try:
            return mf.loads(self._read(path))
        except ManifestError as exc:
            self._drop(path)
            raise EntryBroken(f"cache entry {key!r} has a damaged manifest ({exc}); dropped it") from exc

    def restore(self, header: Header, places: Mapping[str, Place], link_mode: str = "auto") -> RestoreResult:
        """Build each of the entry's trees in a staging directory in its anchor's root (`places`, from
        the consumer's `path` lines), checking each blob as it goes, and move them in only if every
        blob passed (see placement.py). Every top path of the entry must be one those lines select
        for its anchor: an entry that would write anywhere else (a `.git/hooks` file beside a
        node_modules, a tree for an anchor the lines do not name) is dropped as hostile."""
        started = time.monotonic()
        self._check()
        with self._gc_lock().read_lock():
            manifest = self.load(header.version, header.key, header.scope)
            self._check_tops(manifest, places)
            staged: list[Staged] = []
            try:
                for anchor, records in manifest.trees():
                    root = places[anchor].root
                    fd = open_root(root, from_slash=anchor.startswith("/"))
                    try:
                        staged.append(Staged(fd, new_staging(fd, root), records))
                    except BaseException:
                        os.close(fd)
                        raise
                with self.blobs.held():
                    broken = [failure for tree in staged for failure in build(
                        self.blobs, tree.staging, tree.records, self._placement(link_mode, tree))]
                if broken:
                    self._drop_broken(manifest, broken)
                self._stamp_last_used(header.version, header.key, header.scope)
                move_in(staged)
            finally:
                for tree in staged:
                    shutil.rmtree(tree.staging, ignore_errors=True)
                    os.close(tree.root_fd)
        return RestoreResult(header.key, manifest.header.files, manifest.header.bytes,
                             time.monotonic() - started)

    def check_entry(self, header: Header, places: Mapping[str, Place]) -> int:
        """What a restore checks, building nothing: the whole manifest intact, its trees where the
        consumer's lines place them, and every blob there as saved (a stat each; one whose size or
        mtime moved is re-hashed). A failure drops the entry (EntryBroken), as a restore would; a
        pass stamps it used, so eviction keeps what a later job will restore. Returns its bytes."""
        self._check()
        with self._gc_lock().read_lock():
            manifest = self.load(header.version, header.key, header.scope)
            self._check_tops(manifest, places)
            named = {blob_name(r.digest, r.mode): r for r in manifest.records if r.kind == "file"}
            blobs = list(named.items())

            def probe(part: list[tuple[str, Record]]) -> list[Exception]:
                failures: list[Exception] = []
                for name, record in part:
                    try:
                        self.blobs.quick_check(name, record.size, record.blob_mtime_ns)
                    except (BlobMissing, BlobCorrupt) as exc:
                        failures.append(exc)
                return failures

            with self.blobs.held(), ThreadPoolExecutor(WORKERS) as pool:  # stat() lets go of the GIL
                failures = [f for part in pool.map(probe, [blobs[i::WORKERS] for i in range(WORKERS)])
                            for f in part]
            if failures:
                self._drop_broken(manifest, failures)
            self._stamp_last_used(header.version, header.key, header.scope)
        return manifest.header.bytes

    def _check_tops(self, manifest: Manifest, places: Mapping[str, Place]) -> None:
        """Drop the entry (EntryBroken) unless each of its trees is for an anchor the consumer's lines
        name and every top path in it is one they select there."""
        for anchor, records in manifest.trees():
            place = places.get(anchor)
            dirs = {record.path for record in records if record.kind == "dir"}
            stray = None if place is None else next(
                (record.path for record in records
                 if record.path.rpartition("/")[0] not in dirs
                 and not place.selects(record.path, record.kind == "dir")), None)
            if place is None or stray is not None:
                header = manifest.header
                self._drop(self.entry_path(header.version, header.key, header.scope))
                where = {WORKSPACE: "the workspace", HOME: "HOME"}.get(anchor, anchor)
                what = (f"a tree for {where}, which none of its paths names" if place is None
                        else f"{stray!r} in {where}, which none of its paths selects")
                raise EntryBroken(f"cache entry {manifest.header.key!r} holds {what}; dropped it")

    def _drop_broken(self, manifest: Manifest, failures: list[Exception]) -> None:
        """Drop a damaged entry and its corrupt blobs, and raise EntryBroken: the job gets a miss."""
        failures = list({str(exc): exc for exc in failures}.values())  # files that share a blob
        for exc in failures:
            if not isinstance(exc, BlobMissing):
                self.blobs.remove(str(exc))
        self._drop(self.entry_path(manifest.header.version, manifest.header.key, manifest.header.scope))
        kinds = "missing" if all(isinstance(e, BlobMissing) for e in failures) else "corrupt"
        raise EntryBroken(f"cache entry {manifest.header.key!r} has {len(failures)} {kinds} blob(s) "
                          f"(first: {failures[0]}); dropped it")

    def _stamp_last_used(self, version: str, key: str, scope: str = "") -> None:
        """Overwrite the fixed-width last_used field in place: no rewrite, so no race with a save."""
        stamp = mf.format_time(time.time()).encode()
        root = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = open_beneath(root, str(self.entry_path(version, key, scope).relative_to(self.root)),
                              os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:  # gone (evicted, replaced), or now a link or a FIFO: not ours to stamp
            if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO):
                return
            raise
        finally:
            os.close(root)
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.pwrite(fd, stamp, len(mf.LAST_USED_PREFIX))
        finally:
            os.close(fd)

    def _placement(self, link_mode: str, tree: Staged) -> Placement:
        """How a tree's files are placed; `auto` tries a reflink into its staging directory (each
        anchor's root may be on its own filesystem)."""
        if link_mode in ("copy", "hardlink"):
            return link_mode  # type: ignore[return-value]
        sample = next((r for r in tree.records if r.kind == "file"), None)
        blob = sample and self.blobs.path(blob_name(sample.digest, sample.mode))
        if blob and reflink_works(blob, Path(tree.staging)):
            return "reflink"
        return "copy"

    # -- save -----------------------------------------------------------------------------------

    def save(self, key: str, version: str, paths: Sequence[str], trees: Sequence[Tree], *,
             scope: str = "", update: bool = False) -> SaveResult:
        """Store the matched trees (paths.match_paths: per anchor, root-relative paths, parents first)
        under key in `scope`; the first writer of a key in a scope wins unless `update`."""
        started = time.monotonic()
        final = self.entry_path(version, key, scope)
        self._check()
        if os.path.lexists(final) and not update:
            return SaveResult(False, f"Cache entry {key!r} already exists; keys are immutable, so it was "
                                     "not saved again (set update: true to replace it).")
        self._init()
        _make_dirs(final.parent)
        with self._gc_lock().read_lock(), self._saving() as done:
            with self.blobs.held(), _flushing(self.root):
                stored = [(tree.anchor, self._store_tree(tree)) for tree in trees]
            now = time.time()
            header = Header(key=key, version=version, paths=list(paths), created=now, last_used=now,
                            files=sum(tree.files for _, tree in stored),
                            bytes=sum(tree.bytes for _, tree in stored), scope=scope)
            data = mf.dumps(header, [(anchor, tree.lines) for anchor, tree in stored])
            try:  # what a restore would refuse (a link out of the workspace) is never published
                mf.loads(data)
            except ManifestError as exc:  # its blobs are orphans now: the marker stays, a prune takes them
                return SaveResult(False, "Cache not saved.", warnings=[
                    f"Cache entry {key!r} was not saved: a restore would refuse it ({exc})"])
            staged = self.tmp / f"manifest-{secrets.token_hex(8)}"  # unpublished until linked
            try:
                with staged.open("xb") as handle:
                    handle.write(data)
                _syncfs(self.root)  # the blobs and the staged manifest, in one flush
                published = self._publish(staged, final, update)
            finally:
                staged.unlink(missing_ok=True)
            done()
        if not published:
            return SaveResult(False, f"Another job saved cache entry {key!r} first; kept theirs.")
        return SaveResult(True, f"Cache saved with key: {key}", header.files, header.bytes,
                          sum(tree.new_bytes for _, tree in stored), time.monotonic() - started)

    @contextlib.contextmanager
    def _saving(self) -> Iterator[Callable[[], None]]:
        """A marker in tmp/, flock'ed while this save runs and removed when it ends, published or beaten
        to its key (call the function given; a loser stored the winner's content, mostly, and a prune
        per lost race would cost more than its few orphans). One whose lock is free is a save that
        died or failed, whose blobs may be orphans: enforce_budget sees it (failed_saves) and prunes,
        which reclaims them. It is made under another name and renamed once locked, so no one sees it
        unlocked while it lives."""
        token = secrets.token_hex(8)
        fd = os.open(self.tmp / f"new-{token}", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o644)
        marker = self.tmp / f"{SAVING}{token}"
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(self.tmp / f"new-{token}", marker)
            yield lambda: marker.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def failed_saves(self) -> int:
        """Markers of saves that died or failed (their lock is free): their blobs may be orphans."""
        self._check()
        failed = 0
        with contextlib.suppress(FileNotFoundError), os.scandir(self.tmp) as entries:
            for entry in entries:
                if not entry.name.startswith(SAVING):
                    continue
                try:
                    fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
                except OSError:
                    continue  # gone (published, pruned) or not a marker of ours
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    failed += 1
                except BlockingIOError:
                    pass  # a save at work
                finally:
                    os.close(fd)
        return failed

    def _store_tree(self, tree: Tree) -> StoredTree:
        """Store the matched paths' files as blobs and make their manifest lines, on forked workers,
        each taking a contiguous slice so that the lines come out in the order of the paths. A worker
        sends back one string for its slice, which is cheaper to pass through a pipe than a record per
        file.

        Every path is read relative to its parent directory's fd, opened beneath the anchor's root
        (itself reached from / without following a link, for an absolute root) without following any
        link (the last one is kept: paths come in walk order), and a file is opened
        O_NOFOLLOW and must be the inode lstat saw: a link swapped in after the walk is never
        followed, and the save fails instead (a tree changing under a save is no snapshot anyway)."""
        put = self.blobs.put
        top = _open_anchor(tree)

        def store_slice(part: list[str]) -> list[StoredTree]:
            lines, files, size, new_bytes = [], 0, 0, 0
            head, parent = None, -1
            try:
                with mf.paused_gc():  # tens of thousands of tuples, none of them in a cycle
                    for relative in part:
                        directory, _, name = relative.rpartition("/")
                        if directory != head:
                            if parent >= 0:
                                os.close(parent)
                                parent = -1
                            parent = _open_parent(top, directory, relative)
                            head = directory
                        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                        mode = st.st_mode
                        if stat.S_ISREG(mode):
                            fd = _open_same(parent, name, st, relative)
                            try:
                                blob = put(fd, mode, st.st_size)
                            finally:
                                os.close(fd)
                            record = Record("file", relative, mode & 0o7777, blob.size, blob.digest,
                                            st.st_mtime_ns, "", blob.blob_mtime_ns)
                            files, size, new_bytes = files + 1, size + blob.size, new_bytes + blob.new_bytes
                        elif stat.S_ISDIR(mode):
                            record = Record("dir", relative, mode & 0o7777)
                        elif stat.S_ISLNK(mode):
                            record = Record("symlink", relative, target=os.readlink(name, dir_fd=parent))
                        else:
                            continue  # a socket, FIFO or device: nothing a cache can hold
                        lines.append(record.to_line())
            finally:
                if parent >= 0:
                    os.close(parent)
            return [StoredTree("".join(lines), files, size, new_bytes)]

        try:
            slices = in_slices(list(tree.paths), store_slice)
        finally:
            os.close(top)
        return StoredTree("".join(s.lines for s in slices), sum(s.files for s in slices),
                          sum(s.bytes for s in slices), sum(s.new_bytes for s in slices))

    def _publish(self, staged: Path, final: Path, update: bool) -> bool:
        """Link the durable, staged manifest in as the entry (replace it if `update`); False if
        another save linked this key first."""
        try:
            if update:
                os.replace(staged, final)
                return True
            try:
                os.link(staged, final)
                return True
            except FileExistsError:
                return False
        finally:
            fsync_dir(final.parent)

    # -- maintenance ----------------------------------------------------------------------------

    def _drop(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def record_lookup(self, primary: str, matched: str | None, exact: bool) -> None:
        """Append one line per lookup (O_APPEND keeps concurrent lines whole) for `stats`."""
        self._check()
        _make_dirs(self.root)  # not _init: no blob shards on a lookup
        outcome = "hit" if exact else ("partial" if matched else "miss")
        line = json.dumps({"time": time.time(), "key": primary, "matched": matched, "outcome": outcome})
        append = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(self.root / "events.jsonl", append, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def events(self) -> list[dict]:
        try:
            text = self._read(self.root / "events.jsonl").decode(errors="replace")
        except (FileNotFoundError, ManifestError):  # none yet, or a link: no history to trust
            return []
        events = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events

    def manifests(self) -> tuple[list[tuple[Path, Manifest]], list[tuple[Path, str]]]:
        """Every manifest that parses, and every one that does not (with the reason)."""
        self._check()  # before the loop, which takes any OSError for a bad manifest
        good, bad = [], []
        for path in self._manifest_paths():
            try:
                good.append((path, mf.loads(self._read(path))))
            except (OSError, ManifestError) as exc:
                bad.append((path, str(exc)))
        return good, bad

    def verify(self) -> VerifyReport:
        """Re-hash every blob that an entry names and re-check every manifest; change nothing."""
        good, bad = self.manifests()
        problems = [f"{path.relative_to(self.root)}: {reason}" for path, reason in bad]
        owners: dict[str, list[str]] = {}
        for _, manifest in good:
            for record in manifest.records:
                if record.kind == "file":
                    owners.setdefault(blob_name(record.digest, record.mode), []).append(manifest.header.key)
        with ThreadPoolExecutor(WORKERS) as pool:
            results = list(pool.map(self._check_sized, owners))
        for name, outcome in zip(owners, results, strict=True):
            if isinstance(outcome, Exception):
                what = "missing" if isinstance(outcome, BlobMissing) else "corrupt"
                problems.append(f"blob {name} is {what}; entries: {', '.join(sorted(set(owners[name])))}")
        size = sum(r for r in results if isinstance(r, int))
        return VerifyReport(len(good), len(owners), size, problems)

    def _check_sized(self, name: str) -> int | Exception:
        try:
            return self.blobs.check(name)
        except (BlobMissing, ValueError) as exc:
            return exc

    def prune(self, *, max_bytes: int, max_age: float, dry_run: bool = False) -> PruneReport:
        """Evict by age and size (see eviction.py), then delete blobs no entry names and stale tmp files.

        Holds the store's write lock, so no save is between writing its blobs and its manifest: every
        blob no entry names then is an orphan of a save that died or failed, and everything in tmp/
        (staged files, markers of such saves) is stale.
        """
        self._check()
        if not self.entries_dir.exists():
            return PruneReport([], 0, 0)
        with self._gc_lock(PRUNE_WAIT).write_lock():
            good, bad = self.manifests()
            uses = [EntryUse(str(path), m.header.key, m.header.last_used,
                             frozenset(blob_name(r.digest, r.mode) for r in m.records if r.kind == "file"))
                    for path, m in good]
            sizes = {name: size for _, m in good for r in m.records if r.kind == "file"
                     for name, size in [(blob_name(r.digest, r.mode), r.size)]}
            plan = plan_eviction(uses, sizes, max_bytes=max_bytes, max_age=max_age, now=time.time())
            plan += [Eviction(str(path), "?", f"unreadable manifest: {reason}") for path, reason in bad]
            if dry_run:
                return PruneReport(plan, 0, 0)
            for eviction in plan:
                self._drop(Path(eviction.entry))
            evicted = {e.entry for e in plan}
            keep = set().union(*(u.blobs for u in uses if u.entry not in evicted))
            removed = freed = orphaned = 0
            for shard in sorted(os.listdir(self.blobs.dir)) if self.blobs.dir.exists() else ():
                with os.scandir(self.blobs.dir / shard) as blobs:
                    unnamed = [blob.name for blob in blobs if blob.name not in keep]
                for name in unnamed:
                    size = self.blobs.remove(name)
                    freed += size
                    removed += 1
                    orphaned += size if name not in sizes else 0
            for leftover in self.tmp.glob("*"):
                leftover.unlink(missing_ok=True)
        return PruneReport(plan, removed, freed, orphaned)


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    blobs: int
    bytes: int
    problems: list[str]


@dataclass(frozen=True)
class PruneReport:
    evicted: list[Eviction]
    blobs_removed: int
    bytes_freed: int
    orphan_bytes: int = 0  # of bytes_freed: blobs no entry named, left by saves that died or failed


def _make_dirs(path: Path) -> None:
    """mkdir -p with the store's own mode at every level it creates (the umask could leave one
    group-writable, which check_safe would then refuse)."""
    if path.is_dir():
        return
    _make_dirs(path.parent)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, STORE_DIR_MODE)
        os.chmod(path, STORE_DIR_MODE)


def _open_anchor(tree: Tree) -> int:
    """The fd a save reads a tree through: an absolute root is reached from / without following a
    link (the walk skipped a line below one; one swapped in since fails the save)."""
    if not tree.anchor.startswith("/"):
        return os.open(tree.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    slash = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _open_parent(slash, tree.root[1:], tree.root)
    finally:
        os.close(slash)


def _open_parent(top: int, directory: str, relative: str) -> int:
    """The directory fd a save reads `relative` through, opened beneath the workspace."""
    try:
        return open_beneath(top, directory)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OSError(f"{relative}: a link or a file is now where the walk saw a directory; "
                          "the tree changed during the save, so nothing was saved") from exc
        raise


def _open_same(parent: int, name: str, seen: os.stat_result, relative: str) -> int:
    """Open the file lstat saw, and only it: no link followed, no FIFO waited on, the same inode."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENXIO):
            raise
        fd = -1
    if fd >= 0:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and (st.st_ino, st.st_dev) == (seen.st_ino, seen.st_dev):
            return fd
        os.close(fd)
    raise OSError(f"{relative} was replaced (by a link or another file) while it was being saved; "
                  "the tree changed during the save, so nothing was saved")

