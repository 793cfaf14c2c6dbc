"""cache-local's inputs, declared once for its three actions (main, restore/, save/) and the
`ci-actions cache` commands (action.yml's check reads this table too), and the CacheSpec they make."""

from __future__ import annotations

import re
from pathlib import Path

from ci_actions import cache, declared
from ci_actions.declared import Input, Values
from ci_actions.store.keys import Scope
from ci_actions.store.store import LINK_MODES

_BANG_SPACE = re.compile(r"^!\s+")


def line(text: str) -> str:
    """A path or restore-key line as actions/cache's getInputAsArray reads it (trimmed, blank lines
    dropped, as every `many` input is): `! x` is `!x`, the same path set and so the same version."""
    return _BANG_SPACE.sub("!", text)


INPUTS = declared.table(
    Input("path", "Files, directories and globs to cache, one per line, relative to the workspace. A leading "
          "`!` excludes.", required=True, many=True, parse=line),
    Input("key", "The key to save under and to look up first (at most 512 characters, no commas).",
          required=True),
    Input("restore-keys", "Further keys (prefixes) to try, one per line, in order, when the key misses.",
          many=True, flag="restore-key", parse=line),
    Input("lookup-only", "Only report whether an entry exists (outputs set), restore nothing.",
          default="false", parse=declared.boolean),
    Input("fail-on-cache-miss", "Fail the job when no entry matched (a restore-keys match passes).",
          default="false", parse=declared.boolean),
    Input("cache-dir", "The store on local disk. Empty means ~/.cache/ci-actions/store (outside "
          "RUNNER_TEMP).", parse=declared.path(cache.default_cache_dir)),
    Input("shared-store", "Accept a store that other users can write to (they can poison it). Otherwise a "
          "store, or a directory above it, owned by another user or writable by group or others is refused "
          "with a warning (a miss, no save).", default="false", parse=declared.boolean),
    Input("link-mode", "How files reach the workspace: auto (reflink where the filesystem can, else copy), "
          "copy, or hardlink (fastest; files edited in place such as node_modules/.prisma and *.node are "
          "still copied).", default="auto", choices=LINK_MODES),
    Input("max-size", "Store size budget (K, M, G, T); least recently used entries are evicted past it.",
          default="10G", parse=declared.size),  # actions/cache's per-repository budget
    Input("max-age", "Evict entries unused for longer than this (s, m, h, d, w).", default="7d",
          parse=declared.duration),  # and its eviction of entries unused for a week
    Input("update", "Replace an existing entry with the same key (keys are otherwise immutable).",
          default="false", parse=declared.boolean),
    Input("save-on-failure", "Also save when the job failed (by default, as actions/cache, only a successful "
          "job saves).", default="false", parse=declared.boolean, cli=False),
)
STORE = ("cache-dir", "shared-store")
BUDGET = ("max-size", "max-age")
RESTORE = ("key", "path", "restore-keys", "lookup-only", "fail-on-cache-miss", *STORE, "link-mode")
SAVE_OPTIONS = (*STORE, "update", *BUDGET)  # a bad one fails a save; a bad key or path is a warning
SAVE = ("key", "path", *SAVE_OPTIONS)


def spec(values: Values, workspace: Path, scope: Scope) -> cache.CacheSpec:
    """What to restore or save, from the step's inputs or the command's flags; the run (or --scope)
    says which refs' entries it reads and the one it saves under."""
    return cache.CacheSpec(values["key"], values["path"], workspace, values["cache-dir"],
                           values.get("restore-keys", ()), shared=values["shared-store"], scope=scope)


def keep_budget(values: Values) -> tuple[str, list[str]]:
    """After a save, prune the store if it is over its budget: what was pruned ('' when nothing was),
    and the warnings (cache trouble)."""
    report, warnings = cache.enforce_budget(values["cache-dir"], max_bytes=values["max-size"],
                                            max_age=values["max-age"], shared=values["shared-store"])
    if not report or not (report.evicted or report.bytes_freed):
        return "", warnings
    return (f"Pruned {len(report.evicted)} cache entries, freed {megabytes(report.bytes_freed)} "
            f"({megabytes(report.orphan_bytes)} left by saves that died or failed)"), warnings


def megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"
