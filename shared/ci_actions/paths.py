"""Resolve a cache's `path` lines to the files, directories and symlinks to store, per anchor.

actions/cache's semantics, with exclusions that work (upstream ignores them: toolkit #713):

- one pattern per line. Each has an anchor, the directory it is read from and restored to: the
  workspace (a relative line, or an absolute one inside the workspace), HOME (`~` or `~/...`), or an
  absolute root (any other absolute line: the directory above its first glob, or its parent). `~user`
  is not expanded (upstream does not either): an error;
- a line that is or holds a system directory (`/`, `/usr`, `/var/lib`...), lies in `/proc`, `/sys`,
  `/dev`, `/boot` or `/etc`, is HOME itself, sits directly under `/`, uses `..`, or is or holds the
  cache's own store is refused with a PathError naming it: a restore writes where the lines say;
- `.` (or the workspace's own path) is the whole workspace: each of its entries, as `*` takes them;
- `*`, `?` and `[...]` match within one path segment, `**` any number of segments, dotfiles included;
- a match is taken whole, as tar would take it: a matched directory brings everything below it;
- a line starting with `!` drops what it matches, and everything below that, from the result;
- symlinks are kept as symlinks and never followed, not even as a line's parent (from the anchor's root
  down; for an absolute root, from `/`): `link/secret.txt`, where `link` is a symlink, stores nothing
  (with a warning). actions/cache would follow it and store whatever the link points at; a save here
  never reads through a link, and, as with a line that matches nothing, skipping one is a warning.

The result is, per anchor, root-relative POSIX paths in pre-order, parents before children, names in
byte order, so a manifest built from it is the same on every run.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

_GLOB_CHARS = re.compile(r"[*?\[]")
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
    positives: list[tuple[str, str]]  # (the line, its pattern relative to root)
    negatives: list[str]  # patterns relative to root


class Tree(NamedTuple):
    anchor: str
    root: str
    paths: list[str]  # relative to root, in pre-order


class Matched(NamedTuple):
    trees: list[Tree]  # one per anchor that matched anything: the workspace, HOME, then absolute roots
    warnings: list[str]  # lines skipped because they lie below a symlink


class Place(NamedTuple):
    """Where a restore puts one anchor's tree, and which of its top paths the lines select."""

    root: str
    selects: Callable[[str], bool]


def _segment_regex(segment: str) -> str:
    out, i = [], 0
    while i < len(segment):
        char = segment[i]
        close = segment.find("]", i + 2) if char == "[" else -1  # `[]x]` holds a literal `]`
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif close != -1:
            body = segment[i + 1:close]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = close
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A workspace-relative glob as a regex over workspace-relative POSIX paths."""
    parts = pattern.split("/")
    regex = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            regex.append(".*" if last else "(?:[^/]*/)*")
        else:
            regex.append(_segment_regex(part) + ("" if last else "/"))
    return re.compile("".join(regex))


def _parts(text: str, line: str) -> list[str]:
    """A path's components, empty and `.` ones dropped; `..` is refused (it would leave the anchor)."""
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PathError(f"path {line!r} uses '..'; a cache path stays below its anchor (the workspace, "
                        "HOME or an absolute root): write the path itself")
    return parts


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


def _glob_at(parts: list[str]) -> int:
    """The index of the first component with a glob in it (len(parts) when there is none)."""
    return next((i for i, part in enumerate(parts) if _GLOB_CHARS.search(part)), len(parts))


def anchors(lines: Sequence[str], workspace: Path, *, keep_out: Sequence[Path] = ()) -> list[Anchor]:
    """The lines grouped by anchor (the workspace, HOME, then absolute roots by name), every positive
    line checked: PathError names the first that cannot be cached (see the module docstring).
    `keep_out`: directories no line may be, hold or lie in (the store)."""
    ws = str(workspace.resolve())
    outside = [os.path.realpath(path) for path in keep_out]
    home: str | None = os.path.realpath(os.path.expanduser("~")) if os.path.expanduser("~") != "~" else None
    grouped: dict[str, tuple[str, list[tuple[str, str]], list[str]]] = {}
    absolute: list[tuple[str, bool, list[str]]] = []  # (the line, negated, its components below /)

    def add(name: str, root: str, line: str, negate: bool, pattern: str) -> None:
        _, positives, negatives = grouped.setdefault(name, (root, [], []))
        if negate:
            negatives.append(pattern)
        else:
            positives.append((line, pattern or "*"))  # the workspace root: each of its entries

    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        negate = line.startswith("!")
        text = line[1:].strip() if negate else line
        if text.startswith("~"):
            head, _, rest = text.partition("/")
            if head != "~":
                raise PathError(f"path {line!r}: {head!r} is not expanded (only '~', this job's HOME, "
                                "is, as in actions/cache); write the path in full")
            root = _home(line)
            parts = _parts(rest, line)
            if not negate:
                fixed = parts[:_glob_at(parts)]
                if not fixed:
                    raise PathError(f"path {line!r} cannot be cached: it is HOME itself; name the "
                                    "directories in it to cache (~/.npm, say)")
                _refuse(line, "/".join([root, *fixed]), None, outside)
            add(HOME, root, line, negate, "/".join(parts))
            continue
        parts = _parts(text, line)
        path = "/" + "/".join(parts)
        if not text.startswith("/") or path == ws or path.startswith(ws + "/"):
            pattern = "/".join(parts) if not text.startswith("/") else path[len(ws) + 1:]
            if not negate:
                fixed = pattern.split("/")[:_glob_at(pattern.split("/"))] if pattern else []
                if store := next((s for s in outside if _overlaps("/".join([ws, *fixed]), s)), None):
                    raise PathError(f"path {line!r} cannot be cached: it is, holds or lies in the "
                                    f"cache's own store {store}")
            add(WORKSPACE, ws, line, negate, pattern)
        else:
            absolute.append((line, negate, parts))
    for name, root, line, negate, pattern in _absolute(absolute, home, outside):
        add(name, root, line, negate, pattern)
    order = [WORKSPACE, HOME, *sorted(name for name in grouped if name.startswith("/"))]
    return [Anchor(name, *grouped[name]) for name in order if name in grouped and grouped[name][1]]


def _absolute(lines: list[tuple[str, bool, list[str]]], home: str | None,
              keep_out: Sequence[str]) -> list[tuple[str, str, str, bool, str]]:
    """Absolute lines outside the workspace, each under its root: the directory above its first glob,
    or its parent; a root inside another one is folded into it, so that no two trees overlap. A
    negative line under no root excludes nothing and is dropped."""
    roots = set()
    for line, negate, parts in lines:
        if negate:
            continue
        glob = _glob_at(parts)
        fixed = parts[:glob]
        root = fixed if glob < len(parts) else parts[:-1]
        if not root:
            where = "a glob in its first component" if glob == 0 else "it sits directly under /"
            raise PathError(f"path {line!r} cannot be cached: {where}, and a restore stages a path in the "
                            "directory above it (here /); name what is inside it (/dir/*, say)")
        _refuse(line, "/" + "/".join(fixed), home, keep_out)
        roots.add("/" + "/".join(root))
    outer = [root for root in roots if not any(root.startswith(other + "/") for other in roots)]
    placed = []
    for line, negate, parts in lines:
        path = "/" + "/".join(parts)
        if root := next((r for r in outer if path.startswith(r + "/")), None):
            placed.append((root, root, line, negate, path[len(root) + 1:]))
    return placed


def _literal_root(pattern: str) -> str:
    parts = []
    for part in pattern.split("/"):
        if _GLOB_CHARS.search(part):
            break
        parts.append(part)
    return "/".join(parts)


def _children(directory: str) -> list[tuple[str, bool]]:
    """(path, is a real directory) for each child, names sorted; d_type spares a stat per child."""
    with os.scandir(directory) as it:
        entries = sorted(it, key=lambda e: e.name)
    return [(entry.path, entry.is_dir(follow_symlinks=False)) for entry in entries]


def _linked_parent(root: str, literal: str) -> str | None:
    """The first directory above the literal part of a pattern that is a symlink, if any."""
    parts = [part for part in literal.split("/") if part not in ("", ".")]
    for depth in range(1, len(parts)):
        above = "/".join(parts[:depth])
        try:
            if stat.S_ISLNK(os.lstat(f"{root}/{above}").st_mode):
                return above
        except (FileNotFoundError, NotADirectoryError):
            return None
    return None


def places(lines: Sequence[str], workspace: Path, *, keep_out: Sequence[Path] = ()) -> dict[str, Place]:
    """Per anchor, where it is and whether the lines select a root-relative path itself (as a save's
    match would take it): what a restore checks every top path of an entry against, so that it writes
    nowhere else."""
    found = {}
    for anchor in anchors(lines, workspace, keep_out=keep_out):
        wanted = [compile_pattern(pattern) for _, pattern in anchor.positives]
        dropped = [compile_pattern(pattern) for pattern in anchor.negatives]
        found[anchor.name] = Place(anchor.root, lambda path, wanted=wanted, dropped=dropped: (
            any(rx.fullmatch(path) for rx in wanted) and not any(rx.fullmatch(path) for rx in dropped)))
    return found


def match_paths(lines: Sequence[str], workspace: Path, *, keep_out: Sequence[Path] = ()) -> Matched:
    """Everything the `path` lines select, per anchor (see the module docstring)."""
    trees, warnings = [], []
    for anchor in anchors(lines, workspace, keep_out=keep_out):
        paths = _match(anchor, warnings)
        if paths:
            trees.append(Tree(anchor.name, anchor.root, paths))
    return Matched(trees, warnings)


def _match(anchor: Anchor, warnings: list[str]) -> list[str]:
    """One anchor's matches, relative to its root. Walks with strings and scandir: this runs over
    every file of a node_modules on each save."""
    excluded = [compile_pattern(p) for p in anchor.negatives]
    root = anchor.root
    cut = len(root) + 1
    chosen: dict[str, None] = {}  # insertion-ordered set

    def dropped(path: str) -> bool:
        return any(rx.fullmatch(path[cut:]) for rx in excluded)

    def take(path: str, real_dir: bool) -> None:
        """A match, taken whole: the path and everything below it that no `!` line drops."""
        if path in chosen or (excluded and dropped(path)):
            return
        chosen[path] = None
        if real_dir:
            for child, child_is_dir in _children(path):
                take(child, child_is_dir)

    def search(directory: str, regex: re.Pattern[str]) -> None:
        found = _children(directory)
        if directory == root:  # a restore at work stages here: never part of what is saved
            found = [child for child in found if not child[0][cut:].startswith(STAGING_PREFIX)]
        for path, real_dir in found:
            if regex.fullmatch(path[cut:]):
                take(path, real_dir)
            elif real_dir and not dropped(path):
                search(path, regex)

    # An absolute root is reached from / without following a link, as a restore reaches it.
    base, lead = ("", root[1:] + "/") if anchor.name.startswith("/") else (root, "")
    for line, pattern in anchor.positives:
        literal = _literal_root(pattern)
        if link := _linked_parent(base, lead + literal):
            shown = f"/{link}" if base == "" else link
            warnings.append(f"path {line!r} was not saved: {shown} is a symbolic link, and a cache never "
                            "reads through one (list the link itself to keep it as a link)")
            continue
        start = os.path.normpath(os.path.join(root, literal))
        real_dir = os.path.isdir(start) and not os.path.islink(start)
        if pattern == literal:
            if os.path.lexists(start):
                take(start, real_dir)
        elif real_dir:
            search(start, compile_pattern(pattern))
    return [path[cut:] for path in chosen]
