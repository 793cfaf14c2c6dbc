"""cache-local's store against tar + zstd (what actions/cache does) on a real node_modules, side by side.

The tree is `npm ci --ignore-scripts` of bench/node-tree/package-lock.json (about 21k files, 400 MB,
450 MB on disk), installed once into ~/.cache/ci-actions-bench/node-tree-<sha256 of the lock>/ and
reused by later runs. Each round alternates which side goes first and measures:

- save:              cache.save() into a fresh store      vs  tar --posix -cf - node_modules | zstd -T0 -3
- restore, copy:     cache.restore(link_mode="copy")      vs  zstd -dc x.tar.zst | tar -x  (empty dirs)
- restore, hardlink: cache.restore(link_mode="hardlink")  vs  the same extract, measured again
- changed package:   SaveResult.new_bytes of a save under a second key after one package changed,
                     against the entry's total bytes (tar would store the whole archive again)
- verify:            Store(root).verify()                 vs  find blobs -type f -print0 | xargs -0 sha256sum

Both sides run warm: the tree is read once before timing, and what a restore or verify reads was written
moments before, so it is in the page cache; the cache is never dropped. `sync` runs before every timed
step, so neither side pays for the other's writeback. Our save ends with syncfs() (the store is durable
when save returns); zstd -o does not fsync, so the save row favours tar.

Where the work happens matters: on an ext4 without a journal (some VM images), creating inodes within a
minute (six, while the inode table is dirty) of mass deletes, ours between rounds or anyone's, crawls
through the kernel's recently_deleted() check, and timings swing 5x. The bench says which filesystem
it ran on; `--loop-ext4 GB` (root) runs on a fresh, journaled ext4 loop mount instead, as a runner's
own disk would be, and removes it afterwards.

Run as: .venv/bin/python bench/bench_cache.py [--rounds N] [--loop-ext4 GB] [--profile MEASURE]
Exit status 1 when a measure misses its target.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import io
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))

from ci_actions.cache import CacheSpec, restore, save
from ci_actions.store.store import Store

HERE = Path(__file__).resolve().parent
NODE_TREE = HERE / "node-tree"
BENCH_HOME = Path.home() / ".cache" / "ci-actions-bench"
NPM_CI = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
# A small, plain-JS package of the tree that a dependency bump would change; the first one present is used.
CHANGED_PACKAGES = ("express", "debug", "ms", "depd")
KEY1 = "bench-node-linux-x64-1111111111111111111111111111111111111111111111111111111111111111"
KEY2 = "bench-node-linux-x64-2222222222222222222222222222222222222222222222222222222222222222"
PROFILE_CHOICES = ("save", "restore-copy", "restore-hardlink", "verify")


# -- the tree ---------------------------------------------------------------------------------------


def prepared_tree() -> Path:
    """The directory holding node_modules, made by `npm ci` once per lock file and reused after."""
    lock = NODE_TREE / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    tree = BENCH_HOME / f"node-tree-{digest[:16]}"
    if (tree / ".complete").exists():
        return tree
    BENCH_HOME.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="node-tree-staging-", dir=BENCH_HOME))
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(NODE_TREE / name, staging / name)
        print(f"preparing the tree: {' '.join(NPM_CI)} in {staging} (once per lock file)", flush=True)
        started = time.perf_counter()
        subprocess.run(NPM_CI, cwd=staging, check=True, stdout=subprocess.DEVNULL)
        print(f"  npm ci took {time.perf_counter() - started:.1f} s", flush=True)
        (staging / ".complete").write_text(digest + "\n")
        shutil.rmtree(tree, ignore_errors=True)
        staging.rename(tree)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tree


@dataclass(frozen=True)
class TreeStats:
    files: int
    dirs: int
    symlinks: int
    bytes: int


def describe_filesystem(path: Path) -> tuple[str, bool]:
    """'ext4 on vda, no journal' or similar, and whether it is that slow-inode case (ext4 without one)."""
    dev = os.stat(path).st_dev
    name = f"{os.major(dev)}:{os.minor(dev)}"
    with contextlib.suppress(OSError):
        uevent = Path(f"/sys/dev/block/{name}/uevent").read_text()
        name = next(line.split("=", 1)[1] for line in uevent.splitlines() if line.startswith("DEVNAME="))
    if not Path(f"/proc/fs/ext4/{name}").exists():
        fstype = next((line.split()[2] for line in Path("/proc/mounts").read_text().splitlines()
                       if line.split()[1] == _mount_point(path)), "unknown")
        return f"{fstype} on {name}", False
    journal = any(p.name.startswith(f"{name}-") for p in Path("/proc/fs/jbd2").glob("*"))
    return f"ext4 on {name}, {'journaled' if journal else 'NO journal'}", not journal


def _mount_point(path: Path) -> str:
    path = path.resolve()
    while not os.path.ismount(path):
        path = path.parent
    return str(path)


@contextlib.contextmanager
def loop_ext4(size_gb: float) -> Iterator[Path]:
    """A fresh, journaled ext4 on a sparse image under BENCH_HOME, mounted for the run. Its inode tables
    and journal are written by mkfs, not by ext4lazyinit in the background, which would slow the
    first round's writes (a store's disk is not being initialised under it)."""
    image = BENCH_HOME / f"loop-{os.getpid()}.img"
    mount = BENCH_HOME / f"loop-{os.getpid()}"
    with image.open("xb") as handle:
        handle.truncate(int(size_gb * 2**30))
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(image)],
                       check=True)
        mount.mkdir()
        subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
        try:
            yield mount
        finally:
            subprocess.run(["umount", str(mount)], check=True)
    finally:
        with contextlib.suppress(OSError):
            mount.rmdir()
        image.unlink()


def tree_stats(root: Path) -> TreeStats:
    files = dirs = links = size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirs += 1
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path):
                links += 1
            elif name in filenames:
                files += 1
                size += st.st_size
    return TreeStats(files, dirs, links, size)


def read_everything(root: Path) -> None:
    """Warm the page cache with the tree's contents (untimed)."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                with open(path, "rb") as handle:
                    while handle.read(1 << 20):
                        pass


def change_one_package(node_modules: Path) -> tuple[str, int]:
    """Append a line to every .js file of one small package; returns its name and the files changed."""
    for name in CHANGED_PACKAGES:
        package = node_modules / name
        scripts = sorted(p for p in package.rglob("*.js") if p.is_file() and not p.is_symlink())
        if scripts:
            for script in scripts:
                with script.open("a") as handle:
                    handle.write("\n// changed by bench_cache.py: a new version of this package\n")
            return name, len(scripts)
    raise SystemExit(f"none of {CHANGED_PACKAGES} has .js files under {node_modules}")


# -- the two sides ------------------------------------------------------------------------------------


def run_pipeline(first: list[str], second: list[str], *, cwd: Path | None = None) -> None:
    """first | second, as argv lists (no shell); raises if either fails."""
    producer = subprocess.Popen(first, stdout=subprocess.PIPE, cwd=cwd)
    assert producer.stdout is not None
    consumer = subprocess.Popen(second, stdin=producer.stdout, stdout=subprocess.DEVNULL, cwd=cwd)
    producer.stdout.close()  # the consumer holds the pipe now; lets the producer see EPIPE
    codes = (producer.wait(), consumer.wait())
    if any(codes):
        raise SystemExit(f"{' '.join(first)} | {' '.join(second)} failed with exit codes {codes}")


def timed(action: Callable[[], object]) -> tuple[float, object]:
    os.sync()  # the other side's dirty pages are not this side's writeback
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def ours_save(tree: Path, store: Path, key: str = KEY1):
    outcome = save(CacheSpec(key=key, paths=["node_modules"], workspace=tree, cache_dir=store))
    if not outcome.saved or outcome.warnings:
        raise SystemExit(f"save failed: {outcome.message} {outcome.warnings}")
    return outcome


def theirs_save(tree: Path, archive: Path) -> None:
    run_pipeline(["tar", "--posix", "-C", str(tree), "-cf", "-", "node_modules"],
                 ["zstd", "-q", "-T0", "-3", "-f", "-o", str(archive)])


def ours_restore(store: Path, workspace: Path, link_mode: str, expect_files: int):
    outcome = restore(CacheSpec(key=KEY1, paths=["node_modules"], workspace=workspace, cache_dir=store),
                      link_mode=link_mode)
    if outcome.matched_key != KEY1 or outcome.warnings or outcome.files != expect_files:
        raise SystemExit(f"restore ({link_mode}) failed: matched {outcome.matched_key!r}, "
                         f"{outcome.files} files, warnings {outcome.warnings}")
    return outcome


def theirs_restore(archive: Path, workspace: Path) -> None:
    run_pipeline(["zstd", "-q", "-dc", str(archive)], ["tar", "-x", "-C", str(workspace)])


def ours_verify(store: Path):
    report = Store(store).verify()
    if report.problems:
        raise SystemExit(f"verify found problems: {report.problems[:3]}")
    return report


def theirs_verify(store: Path) -> None:
    run_pipeline(["find", str(store / "blobs"), "-type", "f", "-print0"], ["xargs", "-0", "sha256sum"])


# -- rounds ---------------------------------------------------------------------------------------------


@dataclass
class Samples:
    ours: list[float]
    theirs: list[float]


def pair(samples: Samples, round_no: int, ours: Callable[[], object], theirs: Callable[[], object]) -> None:
    """Time both sides, alternating which goes first from round to round."""
    order = [("ours", ours), ("theirs", theirs)]
    if round_no % 2:
        order.reverse()
    for side, action in order:
        seconds, _ = timed(action)
        getattr(samples, side).append(seconds)


def fresh(path: Path) -> Path:
    clear(path)
    path.mkdir(parents=True)
    return path


def clear(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


def run_round(round_no: int, tree: Path, work: Path, expect_files: int,
              measures: dict[str, Samples], delta: list[tuple[int, int, str, int]]) -> None:
    store, archive = work / "store", work / "x.tar.zst"
    clear(store)
    archive.unlink(missing_ok=True)
    pair(measures["save"], round_no, lambda: ours_save(tree, store), lambda: theirs_save(tree, archive))

    for mode in ("copy", "hardlink"):
        ws_ours, ws_theirs = fresh(work / f"ws-ours-{mode}"), fresh(work / "ws-theirs")
        pair(measures[f"restore, {mode}"], round_no,
             lambda mode=mode, ws=ws_ours: ours_restore(store, ws, mode, expect_files),
             lambda ws=ws_theirs: theirs_restore(archive, ws))
        clear(ws_theirs)
    clear(work / "ws-ours-hardlink")
    pair(measures["verify"], round_no, lambda: ours_verify(store), lambda: theirs_verify(store))

    # Edit the copy-mode workspace (editing a hardlinked one would write through into the store).
    changed, scripts = change_one_package(work / "ws-ours-copy" / "node_modules")
    outcome = ours_save(work / "ws-ours-copy", store, KEY2)
    delta.append((outcome.new_bytes, outcome.bytes, changed, scripts))
    clear(work / "ws-ours-copy")
    clear(store)
    archive.unlink(missing_ok=True)


# -- profile --------------------------------------------------------------------------------------------


def profile(measure: str, tree: Path, work: Path, expect_files: int) -> None:
    """cProfile one run of `measure`: the main thread and every pool thread, one profiler each, merged."""
    store, ws = work / "store", fresh(work / "ws-profile")
    clear(store)
    if measure != "save":
        ours_save(tree, store)
    profiler = cProfile.Profile()
    workers: list[cProfile.Profile] = []

    def start_in_thread(*_: object) -> None:  # runs first thing in each new thread
        worker = cProfile.Profile()
        workers.append(worker)
        worker.enable()

    threading.setprofile(start_in_thread)

    def action() -> None:
        if measure == "save":
            ours_save(tree, store)
        elif measure == "verify":
            ours_verify(store)
        else:
            ours_restore(store, ws, measure.removeprefix("restore-"), expect_files)

    os.sync()
    started = time.perf_counter()
    profiler.enable()
    try:
        action()
    finally:
        profiler.disable()
        threading.setprofile(None)
    wall = time.perf_counter() - started
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    for worker in workers:  # their threads have ended with the pools that ran them
        stats.add(worker)
    stats.sort_stats("tottime").print_stats(18)
    print(f"\nprofile of one '{measure}' ({wall:.2f} s wall under the profiler; times are summed over "
          "threads, so they exceed the wall time):")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
    clear(ws)
    clear(store)


# -- report ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per measure; medians are reported")
    parser.add_argument("--loop-ext4", type=float, metavar="GB",
                        help="run on a fresh journaled ext4 loop mount of this size (root; 6 is enough)")
    parser.add_argument("--profile", choices=PROFILE_CHOICES, action="append", default=[],
                        help="after the table, cProfile one run of this measure (repeatable)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    needed = ["npm", "tar", "zstd", "find", "xargs", "sha256sum"]
    needed += ["mkfs.ext4", "mount", "umount", "cp"] if args.loop_ext4 else []
    for tool in needed:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not on PATH; install it to run this bench")

    tree = prepared_tree()
    with contextlib.ExitStack() as stack:
        scratch = BENCH_HOME
        if args.loop_ext4:
            scratch = stack.enter_context(loop_ext4(args.loop_ext4))
            subprocess.run(["cp", "-a", str(tree / "node_modules"), str(scratch)], check=True)
            tree = scratch
        results = measure_all(args, tree, scratch)
    return report(*results)


def measure_all(args: argparse.Namespace, tree: Path, scratch: Path):
    stats = tree_stats(tree / "node_modules")
    print(f"tree: {tree / 'node_modules'}: {stats.files} files, {stats.dirs} dirs, {stats.symlinks} "
          f"symlinks, {stats.bytes / 1e6:.0f} MB (apparent size); {os.cpu_count()} CPUs")
    fs, slow_inodes = describe_filesystem(tree)
    print(f"filesystem: {fs}" + ("; expect noisy, inflated file-creation times (see --loop-ext4)"
                                 if slow_inodes else ""))
    read_everything(tree / "node_modules")
    print(f"warm runs: the tree is read once before timing and the page cache is never dropped; sync "
          f"before each timed step; {args.rounds} rounds, sides alternating, medians shown", flush=True)

    names = ("save", "restore, copy", "restore, hardlink", "verify")
    measures = {name: Samples([], []) for name in names}
    delta: list[tuple[int, int, str, int]] = []
    work = Path(tempfile.mkdtemp(prefix="run-", dir=scratch))  # the tree's filesystem: hardlinks work
    try:
        for round_no in range(args.rounds):
            started = time.perf_counter()
            run_round(round_no, tree, work, stats.files, measures, delta)
            print(f"  round {round_no + 1}/{args.rounds}: {time.perf_counter() - started:.1f} s "
                  + " ".join(f"[{n}: {s.ours[-1]:.2f}/{s.theirs[-1]:.2f}]" for n, s in measures.items()),
                  flush=True)
        size = archive_size(tree, work)
        for measure in args.profile:
            profile(measure, tree, work, stats.files)
    finally:
        clear(work)
    return names, measures, delta, size


def report(names, measures: dict[str, Samples], delta: list[tuple[int, int, str, int]], size: int) -> int:
    targets = {"save": 1.0, "restore, copy": 1.0, "restore, hardlink": 0.2, "verify": 1.5}
    theirs_names = {"save": "tar | zstd -T0 -3", "restore, copy": "zstd -dc | tar -x",
                    "restore, hardlink": "zstd -dc | tar -x", "verify": "find | xargs sha256sum"}
    rows = []
    for name in names:
        ours_s = statistics.median(measures[name].ours)
        theirs_s = statistics.median(measures[name].theirs)
        ratio = ours_s / theirs_s
        rows.append((name, theirs_names[name], f"{ours_s:.2f} s", f"{theirs_s:.2f} s", f"{ratio:.2f}x",
                     f"<= {targets[name]:.1f}x", "pass" if ratio <= targets[name] else "FAIL"))
    new_bytes, entry_bytes, changed, scripts = delta[-1]
    share = 100 * new_bytes / entry_bytes
    rows.append((f"changed package ({changed}, {scripts} .js)", "whole entry",
                 f"{new_bytes / 1e6:.3f} MB", f"{entry_bytes / 1e6:.0f} MB", f"{share:.3f}%", "<= 5%",
                 "pass" if share <= 5 else "FAIL"))
    header = ("measure", "theirs is", "ours", "theirs", "ratio", "target", "result")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"\nzstd -3 archive: {size / 1e6:.0f} MB; samples (ours/theirs, s): "
          + "; ".join(f"{n}: " + ", ".join(f"{o:.2f}/{t:.2f}" for o, t in zip(s.ours, s.theirs, strict=True))
                      for n, s in measures.items()))
    return 0 if all(row[-1] == "pass" for row in rows) else 1


def archive_size(tree: Path, work: Path) -> int:
    archive = work / "size.tar.zst"
    theirs_save(tree, archive)
    size = archive.stat().st_size
    archive.unlink()
    return size


if __name__ == "__main__":
    sys.exit(main())
