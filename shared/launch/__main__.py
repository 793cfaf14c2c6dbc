"""Start an action's Python package inside a venv built once per (lock file, Python) pair.

Usage: python3 shared/launch ACTION_DIR [MODULE] [ARG...]

Stdlib only: this runs before any dependency exists. The venv lives under
``$RUNNER_TOOL_CACHE/ci-actions/<key>`` (``~/.cache/ci-actions`` outside a runner), never under
``RUNNER_TEMP``, which the runner wipes every job. It is built under an ``fcntl`` lock, installed with
``pip --require-hashes`` from ``requirements/runtime.lock``, and marked ready by a file written last, so
a build killed half-way is found and redone. The warm path reads one small file and ``exec``s.

``CI_ACTIONS_WHEELHOUSE`` names a directory of wheels for air-gapped runners (``pip --no-index``).

Production shares this machine, so the action, and every process it starts (npm installs, tar, zstd,
the compose client), runs at a lowered CPU and I/O priority: ``CI_ACTIONS_PRIORITY=low`` (the default:
nice 10, best-effort I/O at its lowest level) or ``normal``. hotswap-deploy sets ``normal``: its work is
production's own. Builds run inside dockerd, which the engine schedules, not this process.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent
LOCK_FILE = SHARED.parent / "requirements" / "runtime.lock"
MARKER = ".ci-actions-ready"
PRIORITIES = ("low", "normal")
LOW_NICE = 10
# ioprio_set(2): (class << 13) | level; best-effort class 2, level 7 (the lowest that still progresses
# while production writes: the idle class could stall an install for as long as production is busy)
IOPRIO_BEST_EFFORT_LOWEST = (2 << 13) | 7
IOPRIO_SET = {"x86_64": 251, "aarch64": 30}  # syscall numbers (unistd.h)


def env_key(lock_bytes: bytes) -> str:
    """Name a venv by everything that makes its contents differ."""
    digest = hashlib.sha256(lock_bytes)
    digest.update(f"\0{sys.implementation.cache_tag}\0{os.uname().machine}\0{sys.version}".encode())
    return digest.hexdigest()[:20]


def cache_root() -> Path:
    tool_cache = os.environ.get("RUNNER_TOOL_CACHE")
    base = Path(tool_cache) if tool_cache else Path.home() / ".cache"
    return base / "ci-actions"


def is_ready(env_dir: Path, key: str) -> bool:
    try:
        return (env_dir / MARKER).read_text() == key
    except OSError:
        return False


def write_marker(env_dir: Path, key: str) -> None:
    """Write the marker atomically: a reader sees the key or nothing."""
    tmp = env_dir / f"{MARKER}.tmp"
    with tmp.open("w") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(env_dir / MARKER)


def pip_install_argv(python: Path, wheelhouse: str | None) -> list[str]:
    argv = [str(python), "-m", "pip", "install", "--require-hashes", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--no-input", "-r", str(LOCK_FILE)]
    if wheelhouse:
        argv += ["--no-index", "--find-links", wheelhouse]
    return argv


def build(env_dir: Path, key: str) -> None:
    """Create the venv from scratch; anything already there is a half-built leftover."""
    import shutil  # imported here: the warm path never builds, and these cost ~15 ms to import
    import subprocess
    import venv

    print(f"::group::ci-actions: building the Python environment {env_dir}", flush=True)
    try:
        shutil.rmtree(env_dir, ignore_errors=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
        result = subprocess.run(
            pip_install_argv(env_dir / "bin" / "python", os.environ.get("CI_ACTIONS_WHEELHOUSE")),
            stdout=sys.stderr, check=False)
        if result.returncode != 0:
            print(f"::error::ci-actions: installing {LOCK_FILE.name} into {env_dir} failed "
                  f"(pip exit {result.returncode}); see the log above. Air-gapped runner? Set "
                  "CI_ACTIONS_WHEELHOUSE to a directory of the locked wheels.", flush=True)
            raise SystemExit(1)
        write_marker(env_dir, key)
    finally:
        print("::endgroup::", flush=True)


def ensure_env() -> Path:
    key = env_key(LOCK_FILE.read_bytes())
    root = cache_root()
    env_dir = root / key
    if not is_ready(env_dir, key):
        root.mkdir(parents=True, exist_ok=True)
        with (root / f"{key}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not is_ready(env_dir, key):  # another job may have built it while we waited
                build(env_dir, key)
    return env_dir


def lower_priority(priority: str) -> None:
    """Apply CI_ACTIONS_PRIORITY to this process, which every child inherits; refuse an unknown value."""
    if priority not in PRIORITIES:
        print(f"::error::ci-actions: CI_ACTIONS_PRIORITY={priority!r} is not one of {', '.join(PRIORITIES)}",
              flush=True)
        raise SystemExit(2)
    if priority == "normal":
        return
    os.setpriority(os.PRIO_PROCESS, 0, max(LOW_NICE, os.getpriority(os.PRIO_PROCESS, 0)))
    number = IOPRIO_SET.get(os.uname().machine)
    if number is not None:
        import ctypes  # only here: the import costs a few ms

        ctypes.CDLL(None, use_errno=True).syscall(number, 1, 0, IOPRIO_BEST_EFFORT_LOWEST)  # 1: this process


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python3 shared/launch ACTION_DIR [MODULE] [ARG...]")
    lower_priority(os.environ.get("CI_ACTIONS_PRIORITY") or "low")
    action_dir = Path(argv[0]).resolve()
    module = argv[1] if len(argv) > 1 else action_dir.name.replace("-", "_")
    python = ensure_env() / "bin" / "python"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SHARED), str(action_dir), env.get("PYTHONPATH", "")) if p)
    os.execve(python, [str(python), "-m", module, *argv[2:]], env)


if __name__ == "__main__":
    main(sys.argv[1:])
