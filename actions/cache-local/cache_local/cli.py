"""`ci-actions cache restore|save|list|show|prune|verify|stats`: the action's work from any shell.

Flags mirror the actions' inputs (one table, cache_local.inputs: the same help, defaults and checks);
what a step learns from the runner is --workspace (default: the current directory) and --scope.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from cache_local import inputs
from cache_local.inputs import BUDGET, INPUTS, RESTORE, SAVE, STORE
from ci_actions import cache, declared
from ci_actions.cli import subcommand
from ci_actions.paths import HOME, WORKSPACE, PathError
from ci_actions.store.keys import InvalidKey, Scope, branch_ref, is_exact_match
from ci_actions.store.store import Store, UnsafeStore


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cache", help="the local dependency cache (cache-local)")
    commands = parser.add_subparsers(dest="cache_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, func, names=STORE) -> argparse.ArgumentParser:
        return subcommand(commands, name, help_text, _reading_flags(func), INPUTS, names)

    def run(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        """What a step learns from the runner: its workspace and its ref."""
        sub.add_argument("--workspace", type=Path, default=Path.cwd(),
                         help="the workspace the paths are relative to (default: the current directory)")
        sub.add_argument("--scope", default="", metavar="REF", type=branch_ref,
                         help="the ref this run is for (a bare name is a branch: main = refs/heads/main); "
                              "saves go under it, restores read it first; none: only unscoped entries")
        return sub

    run(command("restore", "restore an entry into the workspace", _restore, RESTORE)).add_argument(
        "--fallback-scope", action="append", default=[], metavar="REF", type=branch_ref,
        dest="fallback_scopes", help="a ref whose entries a restore also reads, in order, after --scope's "
                                     "(a PR's base, the default branch); repeat for several")
    run(command("save", "save paths under a key, then keep the store within its budget", _save, SAVE))
    command("list", "list entries, most recently used first", _list)
    command("show", "show one entry's header and files", _show).add_argument("key")
    command("prune", "evict by age and size, then delete unreferenced blobs", _prune,
            (*STORE, *BUDGET)).add_argument("--dry-run", action="store_true", help="evict nothing, say what")
    command("verify", "re-hash every blob and check every manifest", _verify)
    command("stats", "hit rate per key prefix", _stats)


def _reading_flags(func):
    """The command gets its flags' values; bad input (a key, a path line) is exit 2 and one line, and
    so is an unsafe store, exit 1, from the maintenance commands (restore and save warn)."""
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args, declared.from_args(args))
        except (InvalidKey, PathError, UnsafeStore) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1 if isinstance(exc, UnsafeStore) else 2
    return run


def _store(values: declared.Values) -> Store:
    return Store(values["cache-dir"], shared=values["shared-store"])


def _spec(args: argparse.Namespace, values: declared.Values) -> cache.CacheSpec:
    scope = Scope(args.scope, tuple(getattr(args, "fallback_scopes", ())))
    return inputs.spec(values, args.workspace.resolve(), scope)


def _warn(args: argparse.Namespace, warnings: list[str]) -> None:
    for warning in warnings if args.scope else [cache.NO_SCOPE, *warnings]:
        print(f"warning: {warning}", file=sys.stderr)


def _restore(args: argparse.Namespace, values: declared.Values) -> int:
    outcome = cache.restore(_spec(args, values), link_mode=values["link-mode"],
                            lookup_only=values["lookup-only"])
    _warn(args, outcome.warnings)
    print(json.dumps({"cache-hit": outcome.hit, "cache-primary-key": values["key"],
                      "cache-matched-key": outcome.matched_key or "", "files": outcome.files,
                      "bytes": outcome.bytes, "seconds": round(outcome.seconds, 3)}))
    return 1 if values["fail-on-cache-miss"] and outcome.matched_key is None else 0


def _save(args: argparse.Namespace, values: declared.Values) -> int:
    outcome = cache.save(_spec(args, values), update=values["update"])
    pruned, warnings = inputs.keep_budget(values)
    _warn(args, outcome.warnings + warnings)
    print("\n".join(filter(None, (outcome.message, pruned))), file=sys.stderr)
    print(json.dumps({"saved": outcome.saved, "files": outcome.files, "bytes": outcome.bytes,
                      "new-bytes": outcome.new_bytes, "seconds": round(outcome.seconds, 3)}))
    return 0


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _list(_args: argparse.Namespace, values: declared.Values) -> int:
    headers = sorted((h for _, h in _store(values).headers()), key=lambda h: -h.last_used)
    print(f"{'last used':19}  {'created':19}  {'files':>7}  {'bytes':>12}  version       {'scope':24}  key")
    for h in headers:
        print(f"{_when(h.last_used)}  {_when(h.created)}  {h.files:>7}  {h.bytes:>12}  "
              f"{h.version[:12]}  {h.scope or '(none)':24}  {h.key}")
    return 0


def _show(args: argparse.Namespace, values: declared.Values) -> int:
    store = _store(values)
    matches = [(p, h) for p, h in store.headers() if is_exact_match(args.key, h.key)]
    if not matches:
        print(f"error: no entry with key {args.key!r} in {values['cache-dir']}", file=sys.stderr)
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


def _prune(args: argparse.Namespace, values: declared.Values) -> int:
    report = _store(values).prune(max_bytes=values["max-size"], max_age=values["max-age"],
                                  dry_run=args.dry_run)
    verb = "would evict" if args.dry_run else "evicted"
    for eviction in report.evicted:
        print(f"{verb} {eviction.key!r}: {eviction.reason}")
    print(f"{len(report.evicted)} entries {verb}; {report.blobs_removed} blobs removed, "
          f"{report.bytes_freed} bytes freed ({report.orphan_bytes} of them left by saves that died "
          "or failed)")
    return 0


def _verify(_args: argparse.Namespace, values: declared.Values) -> int:
    report = _store(values).verify()
    for problem in report.problems:
        print(f"problem: {problem}")
    print(f"{report.entries} entries, {report.blobs} blobs, {report.bytes} bytes checked; "
          f"{len(report.problems)} problems")
    return 1 if report.problems else 0


def key_prefix(key: str) -> str:
    """Group keys by everything before their last `-` segment (usually the hash)."""
    head, sep, _ = key.rpartition("-")
    return head + sep if sep else key


def _stats(_args: argparse.Namespace, values: declared.Values) -> int:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"hit": 0, "partial": 0, "miss": 0})
    for event in _store(values).events():
        counts[key_prefix(event["key"])][event["outcome"]] += 1
    print(f"{'prefix':40}  {'lookups':>7}  {'hits':>5}  {'partial':>7}  {'misses':>6}  hit rate")
    for prefix, c in sorted(counts.items()):
        total = sum(c.values())
        print(f"{prefix:40}  {total:>7}  {c['hit']:>5}  {c['partial']:>7}  {c['miss']:>6}  "
              f"{100 * c['hit'] / total:6.1f}%")
    return 0
