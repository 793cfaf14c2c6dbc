"""Resolve a cache's `path` lines to the files, directories and symlinks to store.

actions/cache's semantics, with exclusions that work (upstream ignores them: toolkit #713):

- one pattern per line, relative to the workspace (an absolute one must lie inside it);
- `*`, `?` and `[...]` match within one path segment, `**` any number of segments, dotfiles included;
- a match is taken whole, as tar would take it: a matched directory brings everything below it;
- a line starting with `!` drops what it matches, and everything below that, from the result;
- symlinks are kept as symlinks and never followed.

The result is in pre-order, parents before children, names in byte order, so a manifest built from it
is the same on every run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

_GLOB_CHARS = re.compile(r"[*?\[]")


class PathError(ValueError):
    """A `path` line that cannot be honoured; the message names the line and what to do."""


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


def _children(directory: Path) -> list[Path]:
    with os.scandir(directory) as it:
        return [directory / name for name in sorted(entry.name for entry in it)]


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def match_paths(lines: Sequence[str], workspace: Path) -> list[Path]:
    """Everything the `path` lines select under workspace (see the module docstring)."""
    workspace = workspace.resolve()
    positives, negatives = [], []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        negate = line.startswith("!")
        pattern = _relative(line[1:].strip() if negate else line, workspace)
        (negatives if negate else positives).append(pattern)
    excluded = [compile_pattern(p) for p in negatives]
    chosen: dict[Path, None] = {}  # insertion-ordered set

    def relative(path: Path) -> str:
        return path.relative_to(workspace).as_posix()

    def dropped(path: Path) -> bool:
        return any(rx.fullmatch(relative(path)) for rx in excluded)

    def take(path: Path) -> None:
        """A match, taken whole: the path and everything below it that no `!` line drops."""
        if path in chosen or dropped(path):
            return
        chosen[path] = None
        if _is_real_dir(path):
            for child in _children(path):
                take(child)

    def search(directory: Path, regex: re.Pattern[str]) -> None:
        for path in _children(directory):
            if regex.fullmatch(relative(path)):
                take(path)
            elif _is_real_dir(path) and not dropped(path):
                search(path, regex)

    for pattern in positives:
        root = workspace / _literal_root(pattern)
        if pattern == _literal_root(pattern):
            if os.path.lexists(root):
                take(root)
        elif _is_real_dir(root):
            search(root, compile_pattern(pattern))
    return list(chosen)
