"""actions/cache semantics over the local store: what cache-local and prepare-workspace both call.

The failure policy is actions/cache's: a cache problem (miss, damaged entry, unreadable or unsafe cache
dir, full disk, lock timeout, a store worker that hung) becomes a warning in the outcome and the job goes
on. Only bad input (an invalid key, a path line that must not be cached: paths.PathError) raises.
"""

from __future__ import annotations

import contextlib
import errno
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import filelock

from ci_actions.paths import match_paths, places
from ci_actions.store.keys import Scope, cache_version, is_exact_match, validate_key, validate_keys
from ci_actions.store.slices import WorkerFailed
from ci_actions.store.store import EntryBroken, PruneReport, SaveResult, Store

CACHE_TROUBLE = (OSError, filelock.Timeout, WorkerFailed)  # warnings, never failures
# What the caller that could not tell the run's ref says (the library takes the scope as given).
NO_SCOPE = ("No ref is known for this run, so the cache uses no scope: entries saved without a ref are "
            "seen only by runs without one (on a runner GITHUB_REF sets it; from the CLI, --scope REF)")


def default_cache_dir() -> Path:
    """Persistent and per user; never under RUNNER_TEMP, which the runner wipes every job. The
    workspace artifacts live beside it (artifact.default_root)."""
    return Path.home() / ".cache" / "ci-actions" / "store"


@dataclass(frozen=True)
class CacheSpec:
    key: str
    paths: Sequence[str]
    workspace: Path
    cache_dir: Path
    restore_keys: Sequence[str] = ()
    shared: bool = False  # accept a store other users can write to (they can poison it); see Store
    scope: Scope = field(default_factory=Scope)  # which refs' entries it reads, and the one it saves under

    @property
    def version(self) -> str:
        return cache_version(self.paths)


@dataclass
class RestoreOutcome:
    primary_key: str
    matched_key: str | None = None
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def hit(self) -> bool:
        """`cache-hit`: true only when the primary key itself matched."""
        return is_exact_match(self.primary_key, self.matched_key)


def _cache_trouble(exc: Exception) -> str:
    if isinstance(exc, filelock.Timeout):
        return f"the cache is busy (lock {exc.lock_file} held too long); going on without it"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"the cache's disk is full ({exc.filename or 'store'}); free space or lower max-size"
    return f"{type(exc).__name__}: {exc}"


def restore(spec: CacheSpec, *, link_mode: str = "auto", lookup_only: bool = False) -> RestoreOutcome:
    """Find the best entry (exact, prefix, then restore-keys) and place it in the workspace; with
    `lookup_only`, check it as a restore would (manifest, paths, every blob there) and place nothing.

    A damaged entry is dropped with a warning and the next best one is tried, so a flipped byte costs
    a reinstall, never a broken tree, and a lookup never reports a hit that a restore could not keep.
    """
    keys = validate_keys(spec.key, spec.restore_keys)
    placed = places(spec.paths, spec.workspace, keep_out=[spec.cache_dir])
    started = time.monotonic()
    outcome = RestoreOutcome(spec.key)
    store = Store(spec.cache_dir, shared=spec.shared)
    try:
        while header := store.lookup(keys, spec.version, spec.scope.readable):
            try:
                if lookup_only:
                    store.check_entry(header, placed)
                    outcome.matched_key = header.key
                    break
                result = store.restore(header, placed, link_mode)
            except EntryBroken as exc:
                outcome.warnings.append(str(exc))
                continue
            outcome.matched_key, outcome.files, outcome.bytes = header.key, result.files, result.bytes
            break
    except CACHE_TROUBLE as exc:
        outcome.warnings.append(f"Failed to restore: {_cache_trouble(exc)}")
        outcome.matched_key, outcome.files, outcome.bytes = None, 0, 0
    with contextlib.suppress(OSError):  # the hit-rate log is best effort (a full disk, an unsafe store)
        store.record_lookup(spec.key, outcome.matched_key, outcome.hit)
    outcome.seconds = time.monotonic() - started
    return outcome


def save(spec: CacheSpec, *, update: bool = False) -> SaveResult:
    """Save the matched paths under the key, unless the key exists (keys are immutable) or `update`.
    Paths below a symlinked directory are left out with a warning (see paths.match_paths)."""
    validate_key(spec.key)
    matched = match_paths(spec.paths, spec.workspace, keep_out=[spec.cache_dir])
    if not matched.trees:
        return SaveResult(False, "Cache not saved.", warnings=[
            *matched.warnings, "Path Validation Error: none of the paths exist, so no cache was saved: "
            + ", ".join(spec.paths)])
    try:
        result = Store(spec.cache_dir, shared=spec.shared).save(
            spec.key, spec.version, spec.paths, matched.trees, scope=spec.scope.own, update=update)
    except CACHE_TROUBLE as exc:
        result = SaveResult(False, "Cache not saved.", warnings=[f"Failed to save: {_cache_trouble(exc)}"])
    result.warnings[:0] = matched.warnings
    return result


def enforce_budget(cache_dir: Path, *, max_bytes: int, max_age: float,
                   shared: bool = False) -> tuple[PruneReport | None, list[str]]:
    """Prune when the headers say the store may be over budget, or a save died or failed (its blobs
    may be orphans, which no header counts); cheap otherwise."""
    store = Store(cache_dir, shared=shared)
    try:
        headers = [header for _, header in store.headers()]
        now = time.time()
        if (sum(h.bytes for h in headers) <= max_bytes and all(now - h.last_used <= max_age for h in headers)
                and not store.failed_saves()):
            return None, []
        return store.prune(max_bytes=max_bytes, max_age=max_age), []
    except CACHE_TROUBLE as exc:
        return None, [f"Did not prune the cache: {_cache_trouble(exc)}"]
