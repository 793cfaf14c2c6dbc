"""GitHub's ``hashFiles()``, bit-exact with the runner, in plain Python.

A cache key computed here must equal the one a workflow computes with ``${{ hashFiles(...) }}``, so
this follows the runner's own script (actions/runner ``src/Misc/expressionFunc/hashFiles``, on
``@actions/glob`` 0.4 and minimatch 3.1), quirks included. The patterns are globs.py's (the matcher
cache paths use too): trimmed lines, ``#`` comments, ``!`` flips, ``./`` and ``~/``, minimatch with
``dot``, implicit descendants, the last matching pattern decides. What is the runner's own:

- search roots are the literal prefixes of the positive patterns (first seen, nested ones dropped),
  walked depth-first, pre-order, children in byte order of their names (libuv sorts with strcmp);
- a directory is never hashed, and a pattern ending in ``/`` so never selects a file;
- without ``--follow-symbolic-links`` a symlinked directory is not entered, a symlink to a file hashes
  the target and a broken one is an error; with it, broken links are skipped and cycles cut;
- only files whose path lies under the workspace are hashed;
- the result is sha256 over the concatenated raw sha256 digests, lowercase hex; no file gives ``""``.

tests/unit/test_hash_files_reference.py runs the upstream code on generated trees and compares.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ci_actions import globs
from ci_actions.globs import Pattern, glob_match

__all__ = ["FOLLOW_SYMBOLIC_LINKS", "HashFilesError", "glob_match", "hash_files"]

# Hot paths use str paths with os.* calls: a pathlib object per visited file costs more than the hash.

FOLLOW_SYMBOLIC_LINKS = "--follow-symbolic-links"

_CHUNK = 1 << 20
_SURROGATE = re.compile("[\ud800-\udfff]")
# A pattern or file the runner's hashFiles() would fail on; the message says which and why. One class
# with globs.PatternError, so a bad pattern is a HashFilesError wherever the matcher raised it.
HashFilesError = globs.PatternError


def _split_options(patterns: str | Sequence[str]) -> tuple[str, bool]:
    """The runner's argument handling: an optional first `--follow-symbolic-links`, then patterns."""
    if isinstance(patterns, str):
        first, newline, rest = patterns.partition("\n")
        option = globs.js_trim(first)
        if not option.startswith("--"):
            return patterns, False
        args = [rest] if newline else []
    else:
        args = list(patterns)
        if not args or not args[0].startswith("--"):
            return "\n".join(args), False
        option, args = args[0], args[1:]
    if option.lower() != FOLLOW_SYMBOLIC_LINKS:
        raise HashFilesError(f"Invalid glob option {option!r}; the only option is '{FOLLOW_SYMBOLIC_LINKS}'.")
    return "\n".join(args), True


# --- walk and hash ------------------------------------------------------------------------------

_DIR, _FILE, _LINK, _OTHER, _UNREADABLE = range(5)
_Child = tuple[str, str, int, tuple[Pattern, ...]]  # name, name as JavaScript sees it, kind, live patterns


@dataclass
class _Walk:
    """@actions/glob's globGenerator plus the runner's per-file checks, collecting files to hash.

    A directory is entered when some positive pattern may still match below it (minimatch's
    partial match); `alive` holds those patterns, narrowed segment by segment (globs.narrow).
    """

    patterns: list[Pattern]
    positives: list[Pattern]
    workspace: str  # as JavaScript sees it
    follow: bool
    files: list[str]

    def run(self, roots: list[str]) -> None:
        for root_js in roots:
            root = globs.from_js(root_js)
            try:
                os.lstat(root)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise HashFilesError(f"Cannot search {root!r}: {exc.strerror}. Fix the pattern.") from exc
            if root_js == "/":  # minimatch cannot partial-match the root; @actions/glob lets it through
                depth, alive = 1, tuple(self.positives)
            else:
                parts = root_js.split("/")
                depth = len(parts)
                alive = tuple(p for p in self.positives if p.partial(parts))
            if alive:
                self._visit_root(root, root_js, depth, alive)

    def _may_hold_workspace_files(self, path_js: str) -> bool:
        inside = self.workspace + "/"
        return path_js.startswith(inside) or path_js == "/" or inside.startswith(path_js + "/")

    def _visit_root(self, root: str, root_js: str, depth: int, alive: tuple[Pattern, ...]) -> None:
        try:
            st = os.stat(root) if self.follow else os.lstat(root)
        except OSError as exc:
            if self.follow and isinstance(exc, FileNotFoundError):
                return  # a broken link, omitted when following links
            raise HashFilesError(f"Cannot read {root!r}: {exc.strerror}.") from exc
        mode = st.st_mode
        if not stat.S_ISDIR(mode):
            kind = _LINK if stat.S_ISLNK(mode) else _FILE if stat.S_ISREG(mode) else _OTHER
            self._file(root, root_js, kind)
        elif self._may_hold_workspace_files(root_js):
            real = os.path.realpath(root) if self.follow else ""
            self._walk_tree(root, root_js, depth, alive, real)

    def _walk_tree(self, top: str, top_js: str, depth: int, alive: tuple[Pattern, ...], real: str) -> None:
        # Pre-order through an explicit stack of sorted child lists. Frame: children, the directory,
        # its JavaScript path, the segment index of its grandchildren, the children's level, and
        # (following links) the directory's real path.
        chain = [real]  # real paths of the directories being walked, by level: the cycle check
        stack = [(iter(self._children(top, depth, alive)), top, top_js, depth + 1, 2, real)]
        while stack:
            children, parent, parent_js, next_depth, level, parent_real = stack[-1]
            for name, name_js, kind, child_alive in children:
                path = parent + "/" + name if parent != "/" else "/" + name
                path_js = parent_js + "/" + name_js if parent_js != "/" else "/" + name_js
                child_real = ""
                if kind == _UNREADABLE:
                    if self.follow:
                        continue  # stat() of the mangled name fails with ENOENT: omitted
                    raise HashFilesError(
                        f"Cannot hash {os.fsencode(path)!r}: its name is not valid UTF-8, which the runner's "
                        "hashFiles() cannot read. Rename it or exclude it with a '!' pattern."
                    )
                if self.follow and kind == _LINK:
                    try:
                        mode = os.stat(path).st_mode
                    except FileNotFoundError:
                        continue  # @actions/glob omits broken links when following them
                    except OSError as exc:
                        raise HashFilesError(f"Cannot follow symlink {path!r}: {exc.strerror}.") from exc
                    if stat.S_ISDIR(mode):
                        kind, child_real = _DIR, os.path.realpath(path)
                    else:
                        kind = _FILE if stat.S_ISREG(mode) else _OTHER
                elif self.follow and kind == _DIR:
                    child_real = parent_real + "/" + name if parent_real != "/" else "/" + name
                if kind != _DIR:
                    self._file(path, path_js, kind)
                    continue
                if not self._may_hold_workspace_files(path_js):
                    continue
                if self.follow:
                    del chain[level - 1 :]
                    if child_real in chain:
                        continue  # a symlink cycle
                    chain.append(child_real)
                listing = iter(self._children(path, next_depth, child_alive))
                stack.append((listing, path, path_js, next_depth + 1, level + 1, child_real))
                break
            else:
                stack.pop()

    def _children(self, path: str, depth: int, alive: tuple[Pattern, ...]) -> list[_Child]:
        """The children (at segment index `depth`) some positive pattern may still match, sorted."""
        try:
            entries = globs.sorted_entries(path)
        except OSError as exc:
            raise HashFilesError(f"Cannot list directory {path!r}: {exc.strerror}.") from exc
        same = globs.settled(alive, depth)
        result: list[_Child] = []
        for entry in entries:
            name = name_js = entry.name
            unreadable = False
            if not name.isascii():
                if _SURROGATE.search(name):  # not UTF-8: node decodes it with U+FFFD replacements
                    unreadable = True
                    name_js = os.fsencode(name).decode("utf-8", "replace")
                name_js = globs.to_js(name_js)
            child_alive = alive if same else globs.narrow(alive, depth, name_js)
            if not child_alive:
                continue
            if unreadable:
                kind = _UNREADABLE
            elif entry.is_dir(follow_symlinks=False):
                kind = _DIR
            elif entry.is_symlink():
                kind = _LINK
            elif entry.is_file(follow_symlinks=False):
                kind = _FILE
            else:
                kind = _OTHER
            result.append((name, name_js, kind, child_alive))
        return result

    def _file(self, path: str, path_js: str, kind: int) -> None:
        """A non-directory: hashed if the last pattern matching it is positive and it is in the workspace."""
        decider = globs.last_match(self.patterns, path_js, directory=False)
        if decider is None or decider.negate:
            return
        if not path_js.startswith(self.workspace + "/"):
            return
        if kind == _FILE:
            self.files.append(path)
            return
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            what = "broken symlink" if Path(path).is_symlink() else "file"
            raise HashFilesError(
                f"Cannot hash {path!r}: {what} ({exc.strerror}). Fix or remove it, or exclude it with a "
                "'!' pattern."
            ) from exc
        if stat.S_ISDIR(mode):
            return  # a symlinked directory, not entered without --follow-symbolic-links
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            raise HashFilesError(f"Cannot hash {path!r}: a FIFO or socket. Exclude it with a '!' pattern.")
        self.files.append(path)


def _digest_files(paths: Sequence[str]) -> str:
    if not paths:
        return ""
    outer = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    for path in paths:
        inner = hashlib.sha256()
        try:
            fd = os.open(path, flags)
            try:
                while count := os.readv(fd, [buffer]):
                    inner.update(view[:count])
            finally:
                os.close(fd)
        except OSError as exc:
            raise HashFilesError(f"Cannot read {path!r}: {exc.strerror}.") from exc
        outer.update(inner.digest())
    return outer.hexdigest()


def hash_files(patterns: str | Sequence[str], workspace: Path, *, follow_symbolic_links: bool = False) -> str:
    """The digest ``${{ hashFiles(patterns) }}`` gives in a job whose workspace is `workspace`.

    `patterns` is either newline-joined text whose first line may be ``--follow-symbolic-links``,
    or the expression's argument list (whose first item may be that option). Relative patterns
    resolve against the workspace, as the runner runs its script there.
    """
    text, follow = _split_options(patterns)
    follow = follow or follow_symbolic_links
    cwd = os.path.realpath(workspace)  # process.cwd() in the runner's script: the physical path
    if not Path(cwd).is_dir():
        raise HashFilesError(f"Workspace {str(workspace)!r} is not a directory.")
    cwd_js = globs.to_js(cwd)
    parsed = globs.parse(text, cwd_js)
    positives = [p for p in parsed if not p.negate]
    if not positives or cwd == "/":  # the runner hashes only files under "<cwd>/"
        return ""
    walk = _Walk(parsed, positives, cwd_js, follow, [])
    walk.run(globs.search_paths(parsed))
    return _digest_files(walk.files)
