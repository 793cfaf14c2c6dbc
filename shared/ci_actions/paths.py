"""Resolve a cache's `path` lines to the files, directories and symlinks to store, per anchor.

actions/cache resolves `path` with @actions/glob, the matcher hashFiles() uses: so does this, through
globs.py. What it keeps of actions/cache, and where it differs:

- the lines are @actions/glob's: trimmed, blank and `#` lines dropped, each leading `!` flipping a line
  into an exclusion (`!!x` is `x`); minimatch with `dot` (`*`, `?`, `[...]` within one segment,
  dotfiles included; `**` any number of segments, and `dir/**` matches `dir` itself too; `\\`
  escapes; no braces), a line ending in `/` matches directories only, and a `.` or `..` segment is an
  error (a leading `./` aside);
- a match is taken whole, as tar takes it: a matched directory brings everything below it. Upstream
  globs with implicitDescendants off and hands each match to tar, which recurses into a directory
  whatever a `!` line said, so an exclusion inside a matched directory does nothing (toolkit #713).
  Here a line also matches everything below what it matches (@actions/glob's implicit descendants,
  as in hashFiles), and the last line that matches a path decides: `!node_modules/.cache` after
  `node_modules` drops that directory and all below it, and a later `node_modules/.cache/keep` takes
  that back. So an exclusion drops only what the lines above it took: written first, it drops nothing;
- each line has an anchor, the directory it is read from and restored to: the workspace (a relative
  line, or an absolute one inside the workspace), HOME (`~` or `~/...`), or an absolute root (any
  other absolute line: the directory above its first glob, or its parent; a root inside another one is
  folded into it). `~user` is an error (@actions/glob reads it as a relative name). Exclusions apply
  in every anchor;
- a line whose fixed part (before its first glob) is or holds a system directory (`/`, `/usr`,
  `/var/lib`...), lies in `/proc`, `/sys`, `/dev`, `/boot` or `/etc`, is HOME itself or holds it, sits
  directly under `/`, uses `..`, or is, holds or lies in the cache's own store is refused with a
  PathError naming it: a restore writes where the lines say;
- `.` (or the workspace's own path, or `**`) is the whole workspace: each of its entries;
- symlinks are kept as symlinks and never followed, not even as a line's parent (from the anchor's root
  down; for an absolute root, from `/`): `link/secret.txt`, where `link` is a symlink, stores nothing
  (with a warning). actions/cache globs with followSymbolicLinks on (and omits broken links), then
  tars whatever the link points at; a save here never reads through a link, and, as with a line that
  matches nothing, skipping one is a warning. A symlink is not a directory to a line ending in `/`.

The result is, per anchor, root-relative POSIX paths in @actions/glob's order: each search root (the
lines' literal prefixes, first seen first, nested ones dropped) walked in pre-order, names in byte
order, so a manifest built from it is the same on every run. Parents come before children; a path
taken back below an excluded directory comes without that directory.

What the lines select is part of the entry's version (store.keys.PATH_RULES): a change here that makes
the same lines select other paths bumps it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from ci_actions import globs

WORKSPACE, HOME = "workspace", "home"  # anchor names; any other anchor is an absolute root
STAGING_PREFIX = ".ci-actions-restore-"  # a restore's staging directory in an anchor's root: never saved
# A line is refused when its fixed part is one of these or holds one...
SYSTEM_DIRS = frozenset((
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt",
    "/opt", "/proc", "/root", "/run", "/sbin", "/snap", "/srv", "/sys", "/tmp", "/usr", "/var", "/usr/bin",
    "/usr/sbin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32", "/usr/libexec", "/usr/include",
    "/usr/share", "/usr/src", "/usr/local", "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib",
    "/usr/local/share", "/usr/local/include", "/usr/local/etc", "/var/lib", "/var/log", "/var/cache",
    "/var/spool", "/var/mail", "/var/backups", "/var/run", "/var/lock", "/var/tmp",
))
# ...or lies inside one of these: kernel interfaces, boot files and the system's configuration.
NEVER_INSIDE = ("/proc", "/sys", "/dev", "/boot", "/etc")


class PathError(ValueError):
    """A `path` line that cannot be honoured; the message names the line and what to do."""


class Anchor(NamedTuple):
    """The lines read from one directory: the workspace, HOME or an absolute root."""

    name: str  # WORKSPACE, HOME, or the absolute root itself
    root: str  # the directory on this machine
    lines: list[tuple[str, str]]  # (a positive line, its fixed part: the absolute path its walk starts at)
    patterns: tuple[globs.Pattern, ...]  # its positive lines' and every exclusion's, in line order


class Tree(NamedTuple):
    anchor: str
    root: str
    paths: list[str]  # relative to root, in pre-order


class Matched(NamedTuple):
    trees: list[Tree]  # one per anchor that matched anything: the workspace, HOME, then absolute roots
    warnings: list[str]  # lines skipped because they lie below a symlink


class Place(NamedTuple):
    """Where a restore puts one anchor's tree, and which of its top paths the lines select:
    `selects(path, directory)`, where `directory` (None: either) is whether the path is one."""

    root: str
    selects: Callable[..., bool]


def _home(line: str) -> str:
    home = os.path.expanduser("~")
    if not home.startswith("/") or home.rstrip("/") == "":
        raise PathError(f"path {line!r} starts with '~', but HOME is {home or 'empty'!r}: set HOME to "
                        "the runner user's home directory")
    return os.path.realpath(home)


def _overlaps(path: str, other: str) -> bool:
    return path == other or other.startswith(path + "/") or path.startswith(other + "/")


def _refusal(path: str, home: str | None, keep_out: Sequence[str]) -> str | None:
    """Why a line whose fixed part is `path` (absolute, normal form) must not be cached, if it must not:
    a restore would write there, and on a machine shared with production that must never be the
    system, HOME as a whole, or the store itself."""
    if system := next((d for d in sorted(SYSTEM_DIRS) if d == path or d.startswith(path.rstrip("/") + "/")),
                      None):
        return f"is or holds the system directory {system}"
    if inside := next((d for d in NEVER_INSIDE if path.startswith(d + "/")), None):
        return f"lies in {inside}, which a cache never writes to"
    if home is not None and (path == home or home.startswith(path + "/")):
        return f"is or holds HOME ({home}); name the directories in it to cache (~/.npm, say)"
    if store := next((s for s in keep_out if _overlaps(path, s)), None):
        return f"is, holds or lies in the cache's own store {store}"
    return None


def _refuse(line: str, path: str, home: str | None, keep_out: Sequence[str]) -> None:
    if reason := _refusal(path, home, keep_out):
        raise PathError(f"path {line!r} cannot be cached: {path} {reason}")


def _patterns(line: str, workspace: str) -> tuple[bool, str, list[globs.Pattern]]:
    """A line's sign, its path (the line after its `!`s) and its patterns (globs.expand), or PathError
    naming it."""
    negate, text = globs.negation(line)
    if not text:
        raise PathError(f"path {line!r} has nothing after '!': write the path to exclude "
                        "(!node_modules/.cache, say), or remove the line")
    segments = globs.literal_segments(text)
    if ".." in segments:
        raise PathError(f"path {line!r} uses '..'; a cache path stays below its anchor (the workspace, "
                        "HOME or an absolute root): write the path itself")
    if "." in segments[1:]:
        raise PathError(f"path {line!r} has a '.' segment, which actions/cache refuses too (only a "
                        "leading './' is allowed): write the path without it")
    at_home = text == "~" or text.startswith("~/")
    if text.startswith("~") and not at_home:
        raise PathError(f"path {line!r}: {text.partition('/')[0]!r} is not expanded (only '~', this job's "
                        "HOME, is, as in actions/cache); write the path in full")
    try:
        home = _home(line) if at_home else None
        return negate, text, globs.expand(globs.to_js(line), globs.to_js(workspace), home)
    except globs.PatternError as exc:
        raise PathError(f"path {line!r} is not a pattern actions/cache takes: {exc}") from None


def anchors(lines: Sequence[str], workspace: Path, *, keep_out: Sequence[Path] = ()) -> list[Anchor]:
    """The lines grouped by anchor (the workspace, HOME, then absolute roots by name), every positive
    line checked: PathError names the first that cannot be cached (see the module docstring).
    `keep_out`: directories no line may be, hold or lie in (the store)."""
    ws = str(workspace.resolve())
    outside = [os.path.realpath(path) for path in keep_out]
    home: str | None = os.path.realpath(os.path.expanduser("~")) if os.path.expanduser("~") != "~" else None
    parsed: list[tuple[str | None, str, str, list[globs.Pattern]]] = []  # (anchor or None, line, fixed, ...)
    roots: set[str] = set()
    for raw in lines:
        if globs.is_comment(raw):
            continue
        line = globs.js_trim(raw)
        negate, text, patterns = _patterns(line, ws)
        fixed = globs.from_js(patterns[0].search_path)
        if negate:
            parsed.append((None, line, fixed, patterns))
        elif text == "~" or text.startswith("~/"):
            if fixed == _home(line):
                raise PathError(f"path {line!r} cannot be cached: it is HOME itself; name the "
                                "directories in it to cache (~/.npm, say)")
            _refuse(line, fixed, None, outside)
            parsed.append((HOME, line, fixed, patterns))
        elif not text.startswith("/") or fixed == ws or fixed.startswith(ws + "/"):
            if store := next((s for s in outside if _overlaps(fixed, s)), None):
                raise PathError(f"path {line!r} cannot be cached: it is, holds or lies in the "
                                f"cache's own store {store}")
            parsed.append((WORKSPACE, line, fixed, patterns))
        else:
            literal = patterns[0].literal
            root = os.path.dirname(fixed) if literal else fixed
            if root == "/":
                where = "it sits directly under /" if literal else "a glob in its first component"
                raise PathError(f"path {line!r} cannot be cached: {where}, and a restore stages a path in "
                                "the directory above it (here /); name what is inside it (/dir/*, say)")
            _refuse(line, fixed, home, outside)
            roots.add(root)
            parsed.append((root, line, fixed, patterns))
    outer = {root: next(r for r in sorted(roots) if root == r or root.startswith(r + "/")) for root in roots}
    found: dict[str, Anchor] = {}
    for name, line, fixed, _ in parsed:
        if name is not None:
            name = outer.get(name, name)
            where = {WORKSPACE: ws, HOME: home}.get(name, name)
            anchor = found.setdefault(name, Anchor(name, str(where), [], ()))
            anchor.lines.append((line, fixed))
    for name, anchor in found.items():
        mine = (p for owner, _, _, patterns in parsed if owner is None or outer.get(owner, owner) == name
                for p in patterns)
        found[name] = anchor._replace(patterns=tuple(mine))
    order = [WORKSPACE, HOME, *sorted(name for name in found if name.startswith("/"))]
    return [found[name] for name in order if name in found]


def places(lines: Sequence[str], workspace: Path, *, keep_out: Sequence[Path] = ()) -> dict[str, Place]:
    """Per anchor, where it is and whether the lines select a root-relative path, as a save would take
    it (the last line that matches it, or a directory above it, is not an exclusion): what a restore
    checks every top path of an entry against, so that it writes nowhere else."""
    return {anchor.name: Place(anchor.root, _selector(anchor))
            for anchor in anchors(lines, workspace, keep_out=keep_out)}


def _selector(anchor: Anchor) -> Callable[..., bool]:
    patterns, prefix = anchor.patterns, globs.to_js(anchor.root) + "/"

    def selects(path: str, directory: bool | None = None) -> bool:
        if path.startswith(STAGING_PREFIX):  # a save never takes a restore's staging directory
            return False
        path_js = prefix + globs.to_js(path)
        return any((decider := globs.last_match(patterns, path_js, kind)) is not None and not decider.negate
                   for kind in ((True, False) if directory is None else (directory,)))

    return selects


def match_paths(lines: Sequence[str], workspace: Path, *, keep_out: Sequence[Path] = ()) -> Matched:
    """Everything the `path` lines select, per anchor (see the module docstring)."""
    trees, warnings = [], []
    for anchor in anchors(lines, workspace, keep_out=keep_out):
        paths = _match(anchor, warnings)
        if paths:
            trees.append(Tree(anchor.name, anchor.root, paths))
    return Matched(trees, warnings)


def _linked_parent(top: str, path: str) -> str | None:
    """The first directory below `top` and above `path` that is a symlink, if any."""
    at = top
    for part in path[len(top):].strip("/").split("/")[:-1]:
        at = f"{at}/{part}"
        try:
            if stat.S_ISLNK(os.lstat(at).st_mode):
                return at
        except (FileNotFoundError, NotADirectoryError):
            return None
    return None


def _match(anchor: Anchor, warnings: list[str]) -> list[str]:
    """One anchor's matches, relative to its root."""
    root = anchor.root
    top = "" if anchor.name.startswith("/") else root  # an absolute root is reached from /, as a restore does
    skipped = set()
    for line, fixed in anchor.lines:
        if link := _linked_parent(top, fixed):
            shown = link if top == "" else link[len(root) + 1:]
            warnings.append(f"path {line!r} was not saved: {shown} is a symbolic link, and a cache never "
                            "reads through one (list the link itself to keep it as a link)")
            skipped.add(fixed)
    found: list[str] = []
    for start_js in globs.search_paths(anchor.patterns):
        if (start := globs.from_js(start_js)) not in skipped:
            _walk(anchor, start, start_js, found)
    return [path[len(root) + 1:] for path in found]


def _walk(anchor: Anchor, start: str, start_js: str, found: list[str]) -> None:
    """A search root and what lies below it, in pre-order: each path the last matching pattern takes.
    A directory is entered only while a pattern may still change the answer below it (globs.narrow),
    and taken whole, without matching, where none can: this runs over every file of a node_modules
    on each save. Walks with strings and scandir; never enters a link. The root of the anchor is
    never a path of its tree: its entries are."""
    try:
        directory = stat.S_ISDIR(os.lstat(start).st_mode)
    except OSError:
        return  # missing, as upstream skips a search path that is not there
    if start == anchor.root:
        if not directory:
            return
        entries, parent, parent_js = _entries(start, True), start, start_js
    else:  # the search root, as the only entry of its directory
        (parent, _, name), parent_js = start.rpartition("/"), start_js.rpartition("/")[0]
        entries = [(name, directory)]
    depth = len(parts := parent_js.split("/"))
    alive = tuple(p for p in anchor.patterns if p.partial(parts))
    stack = [(iter(entries), parent, parent_js, depth, alive, globs.settled(alive, depth))]
    while stack:
        entries, parent, parent_js, depth, alive, same = stack[-1]
        for name, directory in entries:
            name_js = name if name.isascii() else globs.to_js(name)
            path, path_js = f"{parent}/{name}", f"{parent_js}/{name_js}"
            mine = alive if same else globs.narrow(alive, depth, name_js)
            decider = globs.last_match(mine, path_js, directory)
            if inside := decider is not None and not decider.negate:
                found.append(path)
            if not directory or not any(p.negate == inside for p in mine):
                if directory and inside:  # no exclusion can drop anything below it
                    _take_whole(path, found)
                continue
            stack.append((iter(_entries(path, False)), path, path_js, depth + 1, mine,
                          globs.settled(mine, depth + 1)))
            break
        else:
            stack.pop()


def _entries(directory: str, is_root: bool) -> list[tuple[str, bool]]:
    """(name, is a real directory) for each entry, in byte order; an anchor root's staging directories
    (a restore at work) left out. d_type spares a stat per entry."""
    return [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in globs.sorted_entries(directory)
            if not (is_root and entry.name.startswith(STAGING_PREFIX))]


def _take_whole(top: str, found: list[str], is_root: bool = False) -> None:
    """Everything below a real directory, in pre-order."""
    stack = [(top, iter(_entries(top, is_root)))]
    while stack:
        parent, entries = stack[-1]
        for name, directory in entries:
            found.append(path := f"{parent}/{name}")
            if directory:
                stack.append((path, iter(_entries(path, False))))
                break
        else:
            stack.pop()
