"""`ci-actions cache restore|save|list|show|prune|verify|stats`: the action's work from any shell.

Flags mirror the action's inputs; the workspace is the current directory (or --workspace).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from cache_local.inputs import DEFAULT_MAX_AGE, DEFAULT_MAX_SIZE
from ci_actions import cache
from ci_actions.paths import HOME, WORKSPACE, PathError
from ci_actions.store.keys import InvalidKey, Scope, branch_ref, is_exact_match
from ci_actions.store.store import LINK_MODES, Store, UnsafeStore
from ci_actions.units import parse_duration, parse_size


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cache", help="the local dependency cache (cache-local)")
    commands = parser.add_subparsers(dest="cache_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--cache-dir", type=Path, default=cache.default_cache_dir())
        sub.add_argument("--shared-store", action="store_true",
                         help="accept a store other users can write to (they can poison it)")
        sub.set_defaults(func=_refusing_unsafe(func))
        return sub

    def keyed(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--key", required=True)
        sub.add_argument("--path", action="append", required=True, help="repeat for several paths")
        sub.add_argument("--workspace", type=Path, default=Path.cwd())
        sub.add_argument("--scope", default="", metavar="REF", type=branch_ref,
                         help="the ref this run is for (a bare name is a branch: main = refs/heads/main); "
                              "saves go under it, restores read it first; none: only unscoped entries")

    restore = command("restore", "restore an entry into the workspace", _restore)
    keyed(restore)
    restore.add_argument("--restore-key", action="append", default=[], dest="restore_keys")
    restore.add_argument("--fallback-scope", action="append", default=[], metavar="REF", type=branch_ref,
                         dest="fallback_scopes",
                         help="a ref whose entries a restore also reads, in order, after --scope's "
                              "(a PR's base, the default branch); repeat for several")
    restore.add_argument("--lookup-only", action="store_true")
    restore.add_argument("--fail-on-cache-miss", action="store_true")
    restore.add_argument("--link-mode", choices=LINK_MODES, default="auto")

    save = command("save", "save paths under a key", _save)
    keyed(save)
    save.add_argument("--update", action="store_true", help="replace an existing entry")

    command("list", "list entries, most recently used first", _list)
    show = command("show", "show one entry's header and files", _show)
    show.add_argument("key")
    prune = command("prune", "evict by age and size, then delete unreferenced blobs", _prune)
    prune.add_argument("--max-size", default=DEFAULT_MAX_SIZE)
    prune.add_argument("--max-age", default=DEFAULT_MAX_AGE)
    prune.add_argument("--dry-run", action="store_true")
    command("verify", "re-hash every blob and check every manifest", _verify)
    command("stats", "hit rate per key prefix", _stats)


def _refusing_unsafe(func):
    """An unsafe store is one clear error from the maintenance commands (restore and save warn)."""
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except UnsafeStore as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return run


def _store(args: argparse.Namespace) -> Store:
    return Store(args.cache_dir, shared=args.shared_store)


def _spec(args: argparse.Namespace, restore_keys=(), fallback_scopes=()) -> cache.CacheSpec:
    return cache.CacheSpec(args.key, cache.input_lines(args.path), args.workspace.resolve(), args.cache_dir,
                           cache.input_lines(restore_keys), shared=args.shared_store,
                           scope=Scope(args.scope, tuple(fallback_scopes)))


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _restore(args: argparse.Namespace) -> int:
    try:
        outcome = cache.restore(_spec(args, args.restore_keys, args.fallback_scopes),
                                link_mode=args.link_mode, lookup_only=args.lookup_only)
    except (InvalidKey, PathError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _warn(outcome.warnings if args.scope else [cache.NO_SCOPE, *outcome.warnings])
    print(json.dumps({"cache-hit": outcome.hit, "cache-primary-key": args.key,
                      "cache-matched-key": outcome.matched_key or "", "files": outcome.files,
                      "bytes": outcome.bytes, "seconds": round(outcome.seconds, 3)}))
    return 1 if args.fail_on_cache_miss and outcome.matched_key is None else 0


def _save(args: argparse.Namespace) -> int:
    try:
        outcome = cache.save(_spec(args), update=args.update)
    except (InvalidKey, PathError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _warn(outcome.warnings if args.scope else [cache.NO_SCOPE, *outcome.warnings])
    print(outcome.message, file=sys.stderr)
    print(json.dumps({"saved": outcome.saved, "files": outcome.files, "bytes": outcome.bytes,
                      "new-bytes": outcome.new_bytes, "seconds": round(outcome.seconds, 3)}))
    return 0


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _list(args: argparse.Namespace) -> int:
    headers = sorted((h for _, h in _store(args).headers()), key=lambda h: -h.last_used)
    print(f"{'last used':19}  {'created':19}  {'files':>7}  {'bytes':>12}  version       {'scope':24}  key")
    for h in headers:
        print(f"{_when(h.last_used)}  {_when(h.created)}  {h.files:>7}  {h.bytes:>12}  "
              f"{h.version[:12]}  {h.scope or '(none)':24}  {h.key}")
    return 0


def _show(args: argparse.Namespace) -> int:
    store = _store(args)
    matches = [(p, h) for p, h in store.headers() if is_exact_match(args.key, h.key)]
    if not matches:
        print(f"error: no entry with key {args.key!r} in {args.cache_dir}", file=sys.stderr)
        return 1
    for _, header in matches:
        manifest = store.load(header.version, header.key, header.scope)
        print(json.dumps({k: v for k, v in vars(header).items()}, indent=2))
        for anchor, records in manifest.trees():
            where = {WORKSPACE: "", HOME: "~/"}.get(anchor, f"{anchor}/")  # as a path line would say it
            for record in records:
                print(f"{record.kind:7} {oct(record.mode) if record.mode else '':7} {record.size:>10}  "
                      f"{where}{record.path}{' -> ' + record.target if record.target else ''}")
    return 0


def _prune(args: argparse.Namespace) -> int:
    report = _store(args).prune(max_bytes=parse_size(args.max_size),
                                         max_age=parse_duration(args.max_age),
                                         dry_run=args.dry_run)
    verb = "would evict" if args.dry_run else "evicted"
    for eviction in report.evicted:
        print(f"{verb} {eviction.key!r}: {eviction.reason}")
    print(f"{len(report.evicted)} entries {verb}; {report.blobs_removed} blobs removed, "
          f"{report.bytes_freed} bytes freed ({report.orphan_bytes} of them left by saves that died "
          "or failed)")
    return 0


def _verify(args: argparse.Namespace) -> int:
    report = _store(args).verify()
    for problem in report.problems:
        print(f"problem: {problem}")
    print(f"{report.entries} entries, {report.blobs} blobs, {report.bytes} bytes checked; "
          f"{len(report.problems)} problems")
    return 1 if report.problems else 0


def key_prefix(key: str) -> str:
    """Group keys by everything before their last `-` segment (usually the hash)."""
    head, sep, _ = key.rpartition("-")
    return head + sep if sep else key


def _stats(args: argparse.Namespace) -> int:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"hit": 0, "partial": 0, "miss": 0})
    for event in _store(args).events():
        counts[key_prefix(event["key"])][event["outcome"]] += 1
    print(f"{'prefix':40}  {'lookups':>7}  {'hits':>5}  {'partial':>7}  {'misses':>6}  hit rate")
    for prefix, c in sorted(counts.items()):
        total = sum(c.values())
        print(f"{prefix:40}  {total:>7}  {c['hit']:>5}  {c['partial']:>7}  {c['miss']:>6}  "
              f"{100 * c['hit'] / total:6.1f}%")
    return 0
