"""Timing records: every action's inner phases (restore, install, pack, build, migrate, switch...), one
JSON line each, appended to a run-scoped file on the runner's disk. pipeline-report draws them inside
the steps the GitHub API knows about, which is what a job-level timeline cannot show.

A record is written when its phase ends, in one `write` on an O_APPEND descriptor, so concurrent jobs
of the same run interleave whole lines. Writing a record never fails the action: timing is advice.
Where nothing set a sink (a CLI run outside a runner), `phase` only times.

    with timing.phase("install", package_dir="backend") as record:
        ...
        record["hit"] = False           # extra fields: hit, bytes_restored, bytes_saved, service...
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
FILE_NAME = "timings.jsonl"
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")

_sink: Path | None = None
_base: dict[str, Any] = {}


def run_dir(state_dir: Path, repository: str, run_id: str, attempt: int) -> Path:
    """`<state>/runs/<owner+repo>/<run id>-<attempt>`: one folder per run attempt, so a re-run starts
    its own timeline and keeps the first one's."""
    return state_dir / "runs" / _SLUG.sub("+", repository) / f"{_SLUG.sub('_', run_id)}-{attempt}"


def record_to(path: Path | None, **base: Any) -> None:
    """Send this process's records to `path` (None: keep none), each carrying `base` (job, action...)."""
    global _sink, _base
    _sink, _base = path, dict(base)


@contextmanager
def phase(name: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Time the block as phase `name`; the yielded dict takes extra fields; an exception marks it failed."""
    record: dict[str, Any] = dict(fields)
    start, outcome = time.time(), "success"
    try:
        yield record
    except BaseException:
        outcome = "failure"
        raise
    finally:
        ended(name, start, failed=outcome == "failure", **record)


def ended(name: str, start: float, *, failed: bool, **fields: Any) -> None:
    """Record phase `name`, begun at epoch `start`, as ending now: for phases that end out of a `with`
    block's order (commands run at once, each recorded as it exits)."""
    write({"phase": name, "start": round(start, 3), "end": round(time.time(), 3),
           "outcome": "failure" if failed else "success", **fields})


def write(record: dict[str, Any]) -> None:
    """Append one record to the sink (if any) as one line; an unwritable sink is ignored."""
    if _sink is None:
        return
    line = json.dumps({"v": FORMAT_VERSION, **_base, **record}, default=str, separators=(",", ":")) + "\n"
    try:
        _sink.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(_sink, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def read(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The records of a timing file, and a warning per line that is not one (torn, or garbage)."""
    records: list[dict[str, Any]] = []
    warnings: list[str] = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            warnings.append(f"{path.name} line {number} is not a JSON record (torn or garbled); skipped")
            continue
        if not (isinstance(record, dict) and isinstance(record.get("phase"), str)
                and all(is_instant(record.get(key)) for key in ("start", "end"))):
            warnings.append(f"{path.name} line {number} is not a timing record; skipped")
            continue
        records.append(record)
    return records, warnings


def is_instant(value: object) -> bool:
    """A usable epoch time: a finite number (JSON also yields NaN, Infinity, 1e999 and booleans)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
