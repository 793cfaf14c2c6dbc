"""Resolve a cache's `path` lines to the files, directories and symlinks to store.

actions/cache's semantics, with exclusions that work (upstream ignores them: toolkit #713):

- one pattern per line, relative to the workspace (an absolute one must lie inside it);
- `*`, `?` and `[...]` match within one path segment, `**` any number of segments, dotfiles included;
- a match is taken whole, as tar would take it: a matched directory brings everything below it;
- a line starting with `!` drops what it matches, and everything below that, from the result;
- symlinks are kept as symlinks and never followed, not even as a line's parent: `link/secret.txt`,
  where `link` is a symlink, stores nothing (with a warning). actions/cache would follow it and store
  whatever the link points at, inside the workspace or not; a save here never reads through a link,
  and, as with a line that matches nothing, skipping one is a warning, not a failed job.

The result is workspace-relative POSIX paths in pre-order, parents before children, names in byte
order, so a manifest built from it is the same on every run.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

_GLOB_CHARS = re.compile(r"[*?\[]")


class PathError(ValueError):
    """A `path` line that cannot be honoured; the message names the line and what to do."""


class Matched(NamedTuple):
    paths: list[str]  # workspace-relative, in pre-order
    warnings: list[str]  # lines skipped because they lie below a symlink


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


def _relative(line: str, workspace: Path) -> str:
    """The pattern relative to the workspace, refusing anything that would reach outside it."""
    text = line.rstrip("/") or line
    if os.path.isabs(text):
        try:
            text = Path(text).relative_to(workspace).as_posix()
        except ValueError:
            raise PathError(f"path {line!r} is outside the workspace {workspace}; cache paths must be "
                            "inside it") from None
    if text.startswith("./"):
        text = text[2:]
    if any(part == ".." for part in text.split("/")):
        raise PathError(f"path {line!r} uses '..'; cache paths must stay inside the workspace {workspace}")
    return text or "."


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


def _patterns(lines: Sequence[str], workspace: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """The positive lines with their patterns, and the negative patterns."""
    positives: list[tuple[str, str]] = []  # (the line, its pattern)
    negatives: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        negate = line.startswith("!")
        pattern = _relative(line[1:].strip() if negate else line, workspace)
        if negate:
            negatives.append(pattern)
        else:
            positives.append((line, pattern))
    return positives, negatives


def selects(lines: Sequence[str], workspace: Path) -> Callable[[str], bool]:
    """Whether the lines select a workspace-relative path itself (as a save's match would take it):
    what a restore checks every top path of an entry against, so that it writes nowhere else."""
    positives, negatives = _patterns(lines, workspace.resolve())
    wanted = [compile_pattern(pattern) for _, pattern in positives]
    dropped = [compile_pattern(pattern) for pattern in negatives]
    return lambda path: (any(rx.fullmatch(path) for rx in wanted)
                         and not any(rx.fullmatch(path) for rx in dropped))


def match_paths(lines: Sequence[str], workspace: Path) -> Matched:
    """Everything the `path` lines select under workspace, relative to it (see the module docstring).

    Walks with strings and scandir: this runs over every file of a node_modules on each save.
    """
    workspace = workspace.resolve()
    positives, negatives = _patterns(lines, workspace)
    excluded = [compile_pattern(p) for p in negatives]
    root = str(workspace)
    cut = len(root) + 1
    chosen: dict[str, None] = {}  # insertion-ordered set
    warnings = []

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
        for path, real_dir in _children(directory):
            if regex.fullmatch(path[cut:]):
                take(path, real_dir)
            elif real_dir and not dropped(path):
                search(path, regex)

    for line, pattern in positives:
        literal = _literal_root(pattern)
        if link := _linked_parent(root, literal):
            warnings.append(f"path {line!r} was not saved: {link} is a symbolic link, and a cache never "
                            "reads through one (list the link itself to keep it as a link)")
            continue
        start = os.path.normpath(os.path.join(root, literal))
        real_dir = os.path.isdir(start) and not os.path.islink(start)
        if pattern == literal:
            if os.path.lexists(start):
                take(start, real_dir)
        elif real_dir:
            search(start, compile_pattern(pattern))
    return Matched([path[cut:] for path in chosen], warnings)
