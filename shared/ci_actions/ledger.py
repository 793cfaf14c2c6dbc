"""The release ledger: what is live on this host, what a rollback may go back to, and what is in flight.

build-images reads it (a prune never deletes what it names); hotswap-deploy writes it. One JSON-lines
file per compose project, append-only: a deploy appends `started` (with its operations, opaque here),
one `done` per operation as it completes, then `finished`. A crash leaves a release with no `finished`
line; its `done` lines say how far it got, so the next deploy (or `deploy status`) can replay its
operations' inverses. Each line is written whole and fsynced under a lock; a torn last line (the writer
died mid-write) is ignored on read. The format is documented in docs/release-ledger.md.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

FORMAT_VERSION = 1
LIVE = "live"
OUTCOMES = (LIVE, "rolled-back", "aborted", "recovered")
_PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class LedgerError(Exception):
    """The ledger cannot be read or written."""


def default_state_dir() -> Path:
    """Host state that must outlive jobs and caches: `$CI_ACTIONS_STATE_DIR`, else
    `$XDG_STATE_HOME/ci-actions` (~/.local/state). The variable lets every action of a run (and the
    ones with no state-dir input, which still write timing records there) agree on one place."""
    if os.environ.get("CI_ACTIONS_STATE_DIR"):
        return Path(os.environ["CI_ACTIONS_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "ci-actions"


def project_dir(state_dir: Path, project: str) -> Path:
    """The project's state folder; compose project names are already [a-z0-9_-], so they are safe here."""
    if not _PROJECT.match(project):
        raise LedgerError(f"project name {project!r} is not a compose project name ([a-z0-9][a-z0-9_-]*)")
    return state_dir / project


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Image:
    """One service's image in a release: the ref deployed and the image id it resolved to."""

    ref: str
    id: str


@dataclass
class Release:
    """A deploy (or rollback) folded from its ledger lines."""

    id: str
    sha: str
    kind: str
    images: dict[str, Image]
    run: str
    actor: str
    started_at: str
    operations: list[dict] = field(default_factory=list)  # the deploy's plan, as its writer encoded it
    done: list[int] = field(default_factory=list)  # indexes into `operations`, in completion order
    outcome: str | None = None
    reason: str = ""
    rollback_targets: list[str] = field(default_factory=list)

    @property
    def in_flight(self) -> bool:
        return self.outcome is None


class Ledger:
    """The project's `ledger.jsonl`, appended under `ledger.lock`."""

    def __init__(self, state_dir: Path, project: str) -> None:
        self.directory = project_dir(state_dir, project)
        self.path = self.directory / "ledger.jsonl"
        self._lock = FileLock(self.directory / "ledger.lock")

    def append(self, event: dict) -> None:
        """Write one whole line and fsync it before returning: a line that is read back was durable."""
        line = json.dumps({"v": FORMAT_VERSION, "at": now(), **event}, sort_keys=True) + "\n"
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                self._heal_torn_tail(fd)
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def _heal_torn_tail(self, fd: int) -> None:
        """A writer killed mid-line left no newline: end that line so the next event is its own line."""
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")

    def events(self) -> list[dict]:
        """The ledger's events, each with its line number as `_line`. A line that is not JSON (a torn
        write) or of another format version is skipped; a line that is not UTF-8 is an error naming it."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise LedgerError(f"cannot read the release ledger {self.path}: {exc}") from exc
        events = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise self.bad_line(number, f"byte {exc.start + 1} is not UTF-8") from None
            try:
                event = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                continue  # a torn line from a writer that died mid-write
            if isinstance(event, dict) and event.get("v") == FORMAT_VERSION:
                events.append({**event, "_line": number})
        return events

    def bad_line(self, number: int, what: str) -> LedgerError:
        return LedgerError(f"the release ledger {self.path}, line {number}: {what}. Fix or delete that line "
                           "(docs/release-ledger.md shows the format); nothing was changed")

    def releases(self) -> list[Release]:
        try:
            return fold(self.events())
        except _BadEvent as exc:
            raise self.bad_line(exc.line, str(exc)) from None

    def start(self, release: Release) -> None:
        self.append({"type": "started", "release": release.id, "sha": release.sha, "kind": release.kind,
                     "images": {s: {"ref": i.ref, "id": i.id} for s, i in release.images.items()},
                     "operations": release.operations, "run": release.run, "actor": release.actor})

    def done(self, release: Release, index: int) -> None:
        """Operation `index` of the release's `operations` completed."""
        self.append({"type": "done", "release": release.id, "op": index})

    def finish(self, release: Release, outcome: str, *, reason: str = "",
               rollback_targets: list[str] | None = None) -> None:
        if outcome not in OUTCOMES:
            raise LedgerError(f"unknown outcome {outcome!r}")
        self.append({"type": "finished", "release": release.id, "outcome": outcome, "reason": reason,
                     "rollback_targets": rollback_targets or []})


class _BadEvent(ValueError):
    def __init__(self, line: int, what: str) -> None:
        super().__init__(what)
        self.line = line


def _bad(event: dict, what: str) -> _BadEvent:
    return _BadEvent(event.get("_line", 0), f"a {event.get('type')} event {what}")


def _get(event: dict, key: str, kind: type, default: object = None) -> Any:
    """`event[key]` when it has the type a ledger line carries (else `_BadEvent` naming the field)."""
    value = event.get(key, default)
    if not isinstance(value, kind):
        found = "missing" if key not in event else f"a {type(value).__name__}"
        raise _bad(event, f"whose {key!r} is {found}")
    return value


def _images(event: dict) -> dict[str, Image]:
    images = {}
    for service, image in _get(event, "images", dict).items():
        if not (isinstance(image, dict) and all(isinstance(image.get(k), str) for k in ("ref", "id"))):
            raise _bad(event, f'whose image of {service!r} is not {{"ref": …, "id": …}}')
        images[service] = Image(image["ref"], image["id"])
    return images


def _operations(event: dict) -> list[dict]:
    """A started line's operations; a line written before operations were recorded has none."""
    operations = _get(event, "operations", list, [])
    if not all(isinstance(op, dict) for op in operations):
        raise _bad(event, "whose 'operations' are not objects")
    return operations


def _done(event: dict, release: Release) -> int:
    index = _get(event, "op", int)
    if isinstance(index, bool) or not 0 <= index < len(release.operations):
        raise _bad(event, f"whose 'op' {index!r} is not one of release {release.id}'s operations")
    return index


def fold(events: list[dict]) -> list[Release]:
    """Releases in the order they started, each with its completed operations and outcome applied.
    Events of other types (an earlier writer's `switched`) are ignored. A line of the format whose
    fields are missing or mistyped raises `_BadEvent` with its `_line`."""
    releases: dict[str, Release] = {}
    for event in events:
        kind, release_id = event.get("type"), event.get("release")
        if kind == "started":
            release_id = _get(event, "release", str)
            releases[release_id] = Release(
                id=release_id, sha=_get(event, "sha", str), kind=_get(event, "kind", str, "deploy"),
                images=_images(event), run=_get(event, "run", str, ""), actor=_get(event, "actor", str, ""),
                started_at=_get(event, "at", str), operations=_operations(event))
        elif isinstance(release_id, str) and release_id in releases:
            release = releases[release_id]
            if kind == "done":
                release.done.append(_done(event, release))
            elif kind == "finished":
                outcome = _get(event, "outcome", str)
                if outcome not in OUTCOMES:
                    raise _bad(event, f"with the unknown outcome {outcome!r}")
                targets = _get(event, "rollback_targets", list, [])
                if not all(isinstance(t, str) for t in targets):
                    raise _bad(event, "whose 'rollback_targets' are not release ids")
                release.outcome, release.reason = outcome, _get(event, "reason", str, "")
                release.rollback_targets = targets
    return list(releases.values())


def live(releases: list[Release]) -> Release | None:
    """The release serving now: the last one that finished live."""
    return next((r for r in reversed(releases) if r.outcome == LIVE), None)


def in_flight(releases: list[Release]) -> Release | None:
    """A release that started and never finished: its deploy was killed."""
    return next((r for r in reversed(releases) if r.in_flight), None)


def rollback_targets(releases: list[Release]) -> list[Release]:
    """The releases the live one names as rollback targets (newest first), resolved to their records."""
    current = live(releases)
    if current is None:
        return []
    by_id = {r.id: r for r in releases}
    return [by_id[t] for t in current.rollback_targets if t in by_id]


def protected_image_ids(releases: list[Release]) -> set[str]:
    """Every image a prune must keep: the live release's, its rollback targets', and an in-flight one's."""
    keep = [r for r in (live(releases), in_flight(releases)) if r is not None] + rollback_targets(releases)
    return {image.id for release in keep for image in release.images.values()}


def next_rollback_targets(releases: list[Release], new_sha: str, keep: int) -> list[str]:
    """What a release going live now keeps as rollback targets: the newest `keep - 1` earlier live
    releases, one per sha, never its own sha. Their images are what a prune must spare."""
    targets: list[str] = []
    shas = {new_sha}
    for release in reversed(releases):
        if release.outcome == LIVE and release.sha not in shas and len(targets) < keep - 1:
            targets.append(release.id)
            shas.add(release.sha)
    return targets
