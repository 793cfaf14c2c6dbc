"""The local run history: one JSON line per successful run, `<state>/runs/<owner+repo>/history.jsonl`,
beside the runs' timing folders. Later tools ask it for "the last green commit" (a change detector's
base) and for trends. Appended whole under a file lock; a torn or foreign line is skipped on read."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from ci_actions import timing

FORMAT_VERSION = 1
FILE_NAME = "history.jsonl"
LOCK_TIMEOUT = 30.0


def path(state_dir: Path, repository: str) -> Path:
    return timing.run_dir(state_dir, repository, "x", 1).parent / FILE_NAME


def entry(report: dict[str, Any], recorded_at: float) -> dict[str, Any]:
    """What a run leaves in the history, from its report."""
    ref = report["ref"]
    return {"v": FORMAT_VERSION, "repository": report["repository"], "sha": report["sha"], "ref": ref,
            "branch": ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else "",
            "run_id": report["run_id"], "attempt": report["attempt"], "conclusion": report["conclusion"],
            "start": report["start"], "end": report["end"], "wall_seconds": report["wall_seconds"],
            "critical_path": report["critical_path"],
            "jobs": {job["name"]: {"start": job["start"], "end": job["end"], "seconds": job["seconds"],
                                   "outcome": job["outcome"]} for job in report["jobs"]},
            "recorded_at": round(recorded_at, 3)}


def append(file: Path, line: dict[str, Any]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
    with FileLock(str(file) + ".lock", timeout=LOCK_TIMEOUT):
        fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class Read:
    runs: list[dict[str, Any]]  # oldest first
    skipped: int


def read(file: Path) -> Read:
    try:
        lines = file.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return Read([], 0)
    runs, skipped = [], 0
    for line in lines:
        try:
            run = json.loads(line)
        except ValueError:
            skipped += bool(line.strip())
            continue
        if (isinstance(run, dict) and isinstance(run.get("sha"), str)
                and timing.is_instant(run.get("recorded_at"))
                and isinstance(path := run.get("critical_path", []), list)
                and all(isinstance(job, str) for job in path)):
            runs.append(run)
        else:
            skipped += 1
    return Read(runs, skipped)


def last_green(runs: list[dict[str, Any]], branch: str = "") -> dict[str, Any] | None:
    """The latest recorded successful run (on `branch`, when given) that names its commit."""
    green = [r for r in runs if r.get("conclusion") == "success" and r["sha"]
             and (not branch or r.get("branch") == branch)]
    return max(green, key=lambda r: r["recorded_at"], default=None)
