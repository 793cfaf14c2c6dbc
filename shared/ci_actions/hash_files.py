"""GitHub's ``hashFiles()``, bit-exact with the runner, in plain Python.

A cache key computed here must equal the one a workflow computes with ``${{ hashFiles(...) }}``, so
this follows the runner's own script (actions/runner ``src/Misc/expressionFunc/hashFiles``, on
``@actions/glob`` 0.4 and minimatch 3.1), quirks included:

- each line is trimmed; blank and ``#`` lines are dropped; each leading ``!`` flips negation;
- a ``.`` or ``..`` segment is an error, except a leading ``./``; ``~/`` is the home directory;
- minimatch with ``dot``, without braces or extglobs; a pattern not ending in ``**`` (or ending in
  ``/``) also matches everything below it, and an explicit ``P/**`` also matches a file named ``P``;
- search roots are the literal prefixes of the positive patterns (first seen, nested ones dropped),
  walked depth-first, pre-order, children in byte order of their names (libuv sorts with strcmp);
- the last pattern that matches a file decides whether it is in;
- without ``--follow-symbolic-links`` a symlinked directory is not entered, a symlink to a file hashes
  the target and a broken one is an error; with it, broken links are skipped and cycles cut;
- only files whose path lies under the workspace are hashed;
- the result is sha256 over the concatenated raw sha256 digests, lowercase hex; no file gives ``""``.

Paths are matched as JavaScript strings (UTF-16 code units), so ``?`` and classes see an astral
character as two characters, as the runner does. tests/unit/test_hash_files_reference.py runs the
upstream code on generated trees and compares.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import string
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

__all__ = ["FOLLOW_SYMBOLIC_LINKS", "HashFilesError", "glob_match", "hash_files"]

# Hot paths use str paths with os.* calls: a pathlib object per visited file costs more than the hash.

FOLLOW_SYMBOLIC_LINKS = "--follow-symbolic-links"

_CHUNK = 1 << 20
# String.prototype.trim()'s set; Python's str.strip() also strips \x1c-\x1f and \x85 but not \ufeff.
_JS_SPACE = "\t\n\v\f\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" + (
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_RE_SPECIALS = frozenset("().*{}+?[]^$\\!")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_GLOB_UNESCAPE = re.compile("\\\\([^\n\r\u2028\u2029])")
_NEVER = re.compile("(?!)")


class HashFilesError(ValueError):
    """A pattern or file the runner's hashFiles() would fail on; the message says which and why."""


class _Globstar:
    """minimatch's GLOBSTAR: a ``**`` segment."""


class _Mark:
    """A regex token whose Python form depends on where it ends up (see _segment_source)."""

    def __init__(self, js: str) -> None:
        self.js = js


_GLOBSTAR = _Globstar()
_CLASS_OPEN = _Mark("[")
_NONEMPTY = _Mark("(?=.)")
_NOT_DOT_SEGMENT = _Mark("(?!(?:^|\\/)\\.{1,2}(?:$|\\/))")
_Token = str | _Mark


def _js_trim(text: str) -> str:
    return text.strip(_JS_SPACE)


def _to_js(text: str) -> str:
    """Astral characters as surrogate pairs: JavaScript's view of the string."""
    if text.isascii():
        return text

    def pair(match: re.Match[str]) -> str:
        code = ord(match.group()) - 0x10000
        return chr(0xD800 + (code >> 10)) + chr(0xDC00 + (code & 0x3FF))

    return _ASTRAL.sub(pair, text)


def _from_js(text: str) -> str:
    if text.isascii():
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


# --- @actions/glob path helpers (POSIX branch) -------------------------------------------------


def _normalize_separators(path: str) -> str:
    return re.sub("//+", "/", path)


def _safe_trim_trailing_separator(path: str) -> str:
    path = _normalize_separators(path)
    return path[:-1] if path.endswith("/") and path != "/" else path


def _path_segments(path: str) -> list[str]:
    path = _safe_trim_trailing_separator(path)
    if not path.startswith("/"):
        return path.split("/")
    return ["/"] if path == "/" else ["/", *path[1:].split("/")]


def _path_string(segments: Sequence[str]) -> str:
    text = segments[0]
    if len(segments) == 1:
        return text
    return text + ("" if text.endswith("/") else "/") + "/".join(segments[1:])


def _dirname(path: str) -> str:
    """path.dirname() of a normalized absolute path."""
    return path[: path.rfind("/")] or "/"


def _glob_escape(text: str) -> str:
    text = re.sub(r"(\[)(?=[^/]+\])", "[[]", text.replace("\\", "\\\\"))
    return text.replace("?", "[?]").replace("*", "[*]")


def _get_literal(segment: str) -> str:
    """The segment as a literal path segment, or "" when it holds a wildcard."""
    literal, i, n = [], 0, len(segment)
    while i < n:
        c = segment[i]
        if c == "\\" and i + 1 < n:
            literal.append(segment[i + 1])
            i += 2
            continue
        if c in "*?":
            return ""
        if c == "[" and i + 1 < n:
            chars, closed, j = [], -1, i + 1
            while j < n:
                if segment[j] == "\\" and j + 1 < n:
                    chars.append(segment[j + 1])
                    j += 2
                    continue
                if segment[j] == "]":
                    closed = j
                    break
                chars.append(segment[j])
                j += 1
            if closed >= 0:
                if len(chars) > 1:
                    return ""
                if chars:
                    literal.append(chars[0])
                    i = closed + 1
                    continue
        literal.append(c)
        i += 1
    return "".join(literal)


# --- minimatch 3.1 segment parser, options {dot, nobrace, noext, nonegate, nocomment} ----------


def _js_class_is_valid(body: str) -> bool:
    """Whether JavaScript accepts ``RegExp('[' + body + ']')``: minimatch's test for a glob class.

    Outside Unicode mode the only error a class body can hold is a range out of order.
    """
    if body.startswith("]"):  # `[]` is an empty class, and the rest is ordinary regex text
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                re.compile("(?:)" + body[1:] + "]")
            except re.error:
                return False
        return True
    atoms: list[tuple[str | None, bool]] = []  # (character or None for \d-like classes, is a bare "-")
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        i += 1
        if c != "\\":
            atoms.append((c, c == "-"))
            continue
        if i == n:
            return False  # "\]" would escape the closing bracket
        e = body[i]
        i += 1
        value: str | None = e
        if e in "dDwWsS":
            value = None
        elif e in "bfnrtv":
            value = "\b\f\n\r\t\v"["bfnrtv".index(e)]
        elif e == "c" and i < n and (body[i].isascii() and (body[i].isalnum() or body[i] == "_")):
            value = chr(ord(body[i]) % 32)
            i += 1
        elif e in "xu":  # \xHH, \uHHHH; otherwise just the letter
            digits = body[i : i + (2 if e == "x" else 4)]
            if len(digits) == (2 if e == "x" else 4) and all(d in string.hexdigits for d in digits):
                value = chr(int(digits, 16))
                i += len(digits)
        elif e in "01234567":
            digits = re.match("[0-7]{1,3}", body[i - 1 :])
            text = digits.group() if digits else e
            if int(text, 8) > 0o377:
                text = text[:2]
            value = chr(int(text, 8))
            i += len(text) - 1
        atoms.append((value, False))
    k = 0
    while k < len(atoms):
        if k + 2 < len(atoms) and atoms[k + 1][1]:
            low, high = atoms[k][0], atoms[k + 2][0]
            if low is not None and high is not None and ord(low) > ord(high):
                return False
            k += 3
        else:
            k += 1
    return True


def _first_js_char(tokens: list[_Token]) -> str:
    if not tokens:
        return ""
    first = tokens[0]
    return (first.js if isinstance(first, _Mark) else first)[:1]


def _parse_tokens(pattern: str) -> tuple[list[_Token], bool]:
    """minimatch's parse() with noext: regex tokens and whether the segment has magic."""
    tokens: list[_Token] = []
    magic = escaping = in_class = False
    class_start = class_token = -1
    for i, c in enumerate(pattern):
        if escaping and c in _RE_SPECIALS:
            tokens.append("\\" + c)
            escaping = False
        elif c == "\\":
            escaping = True
        elif c in "?*+@!":
            if in_class:
                tokens.append("^" if c == "!" and i == class_start + 1 else c)
            elif c == "*":
                tokens.append("[^/]*?")
                magic = True
            elif c == "?":
                tokens.append("[^/]")
                magic = True
            else:
                tokens.append("\\" + c)
        elif c == "(":
            tokens.append("(" if in_class else "\\(")
        elif c == ")":
            tokens.append("\\)")
        elif c == "|":
            tokens.append("\\|")
            escaping = False
        elif c == "[":
            if in_class:
                tokens.append("\\[")
            else:
                in_class, class_start, class_token = True, i, len(tokens)
                tokens.append(_CLASS_OPEN)
        elif c == "]":
            if i == class_start + 1 or not in_class:
                tokens.append("\\]")
                escaping = False
            elif not _js_class_is_valid(pattern[class_start + 1 : i]):
                sub, sub_magic = _parse_sub(pattern[class_start + 1 : i])
                tokens[class_token:] = ["\\[", *sub, "\\]"]
                magic = magic or sub_magic
                in_class = False
            else:
                tokens.append("]")
                magic, in_class = True, False
        else:
            if escaping:
                escaping = False
                tokens.append(c)
            elif c in _RE_SPECIALS and not (c == "^" and in_class):
                tokens.append("\\" + c)
            else:
                tokens.append(c)
    if in_class:
        sub, sub_magic = _parse_sub(pattern[class_start + 1 :])
        tokens[class_token:] = ["\\[", *sub]
        magic = magic or sub_magic
    if escaping:
        tokens.append("\\\\")
    add_start = _first_js_char(tokens) in ("[", ".", "(")
    if tokens and magic:
        tokens.insert(0, _NONEMPTY)
    if add_start and not pattern.startswith("."):
        tokens.insert(0, _NOT_DOT_SEGMENT)
    return tokens, magic


def _parse_sub(pattern: str) -> tuple[list[_Token], bool]:
    # parse(cs, SUBPARSE) returns GLOBSTAR for "**" and "" for "": minimatch then splices in
    # `sp[0]`, which is undefined, and JavaScript writes it as the text "undefined".
    if pattern in ("**", ""):
        return ["undefined"], False
    return _parse_tokens(pattern)


def _segment_source(tokens: list[_Token]) -> str:
    """Python regex text for one segment; it never consumes a "/", so segments can be joined."""
    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token is _CLASS_OPEN:
            if tokens[index + 1 : index + 3] == ["^", "]"]:
                out.append("(?!/)[\\s\\S]")  # JavaScript reads `[^]` as any character
                index += 3
                continue
            out.append("(?!/)[")
        elif token is _NONEMPTY:
            out.append("(?=[^/\n\r\u2028\u2029])")
        elif token is _NOT_DOT_SEGMENT:
            out.append("(?!\\.{1,2}(?:/|\\Z))" if index == 0 else "")  # a no-op past the start
        else:
            assert isinstance(token, str)
            out.append(token)
        index += 1
    return "".join(out)


def _compile(source: str) -> re.Pattern[str]:
    # minimatch falls back to /$./ (never matches) when the regex does not compile.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # set-operation FutureWarnings on text such as "[a--]"
        try:
            return re.compile(source)
        except re.error:
            return _NEVER


def _minimatch_segment(segment: str) -> _Globstar | str | re.Pattern[str]:
    if segment == "**":
        return _GLOBSTAR
    if segment == "":
        return ""
    tokens, magic = _parse_tokens(segment)
    if not magic:
        return _GLOB_UNESCAPE.sub(r"\1", segment)
    return _compile(_segment_source(tokens))


# --- patterns ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pattern:
    negate: bool
    directory_only: bool  # written with a trailing "/": matches directories, so never a hashed file
    append_slash: bool  # explicit "P/**": minimatch needs "path/" for it to match "path" itself
    search_path: str
    head: tuple[str | re.Pattern[str], ...]  # segments before the first "**", for partial matching
    has_globstar: bool
    length: int
    regex: re.Pattern[str]  # the whole pattern, matched against a whole path
    segments: tuple[str, ...]
    ends_with_globstar: bool

    def head_matches(self, index: int, name: str) -> bool:
        part = self.head[index]
        return part == name if isinstance(part, str) else part.fullmatch(name) is not None

    def partial(self, parts: Sequence[str]) -> bool:
        """minimatch matchOne(partial=true): could something at or below this path match?"""
        if not all(self.head_matches(i, parts[i]) for i in range(min(len(parts), len(self.head)))):
            return False
        return self.has_globstar or len(parts) <= self.length


def _build(line: str, negate: bool, implicit: bool, cwd: str, shown: str) -> _Pattern:
    """@actions/glob's Pattern, with minimatch's segment-wise matchOne() folded into one regex.

    The fold is exact for the paths a walk produces: no "", "." or ".." segments except the empty
    last one that an appended "/" makes, which only a trailing "**" can match.
    """
    pattern = _js_trim(line)
    while pattern.startswith("!"):
        negate = not negate
        pattern = _js_trim(pattern[1:])
    pattern = _fixup(pattern, cwd, shown)
    segments = _path_segments(pattern)
    literal: list[str] = []
    for segment in segments:
        text = _get_literal(segment)
        if not text:
            break
        literal.append(text)

    parts = [_minimatch_segment(p) for p in re.split("/+", _js_trim(_safe_trim_trailing_separator(pattern)))]
    head_end = next((i for i, p in enumerate(parts) if p is _GLOBSTAR), len(parts))
    pieces: list[str] = []
    after_inner_globstar = False
    for index, part in enumerate(parts):
        separator = "" if index == 0 or after_inner_globstar else "/"
        after_inner_globstar = False
        if part is _GLOBSTAR and index == len(parts) - 1:
            pieces.append(separator + "(?s:.*)")  # one or more segments, the last possibly empty
        elif part is _GLOBSTAR:
            pieces.append(separator + "(?:[^/]*/)*")
            after_inner_globstar = True
        elif isinstance(part, str):
            pieces.append(separator + re.escape(part))
        else:
            assert isinstance(part, re.Pattern)
            pieces.append(separator + (part.pattern if part is not _NEVER else "(?!)"))
    ends_with_globstar = segments[-1] == "**"
    return _Pattern(
        negate=negate,
        directory_only=_normalize_separators(pattern).endswith("/"),
        append_slash=ends_with_globstar and not implicit,
        search_path=_path_string(literal),
        head=tuple(p for p in parts[:head_end] if not isinstance(p, _Globstar)),
        has_globstar=head_end < len(parts),
        length=len(parts),
        regex=_compile("".join(pieces)),
        segments=tuple(segments),
        ends_with_globstar=ends_with_globstar,
    )


def _fixup(pattern: str, cwd: str, shown: str) -> str:
    """@actions/glob's Pattern.fixupPattern: validate, then root the pattern."""
    if not pattern:
        raise HashFilesError(f"Invalid pattern {shown!r}: nothing is left after '!'. Remove the line.")
    literal = [_get_literal(s) for s in _path_segments(pattern)]
    if any((s == "." and i > 0) or s == ".." for i, s in enumerate(literal)):
        raise HashFilesError(
            f"Invalid pattern {shown!r}: '.' and '..' segments are not allowed (only a leading './'). "
            "Write the path relative to the workspace without them."
        )
    pattern = _normalize_separators(pattern)
    if pattern == "." or pattern.startswith("./"):
        return _normalize_separators(_glob_escape(cwd) + pattern[1:])
    if pattern == "~" or pattern.startswith("~/"):
        home = str(Path("~").expanduser())
        if not home.startswith("/"):
            raise HashFilesError(f"Pattern {shown!r} starts with '~' but HOME is not absolute: {home!r}.")
        return _normalize_separators(_glob_escape(_to_js(home)) + pattern[1:])
    if pattern.startswith("/"):
        return pattern
    root = _glob_escape(cwd)
    return _normalize_separators(root + ("" if root.endswith("/") else "/") + pattern)


def _parse_patterns(text: str, cwd: str) -> list[_Pattern]:
    patterns: list[_Pattern] = []
    for raw in _to_js(text).split("\n"):
        line = _js_trim(raw)
        if not line or line.startswith("#"):
            continue
        pattern = _build(line, False, False, cwd, _from_js(line))
        patterns.append(pattern)
        if pattern.directory_only or not pattern.ends_with_globstar:
            implicit = _path_string([*pattern.segments, "**"])
            patterns.append(_build(implicit, pattern.negate, True, cwd, _from_js(line)))
    return patterns


def glob_match(pattern: str, path: str) -> bool:
    """Whether `path` (segments joined by `/`) matches one pattern exactly as a hashFiles() line
    matches a file: `*` and `?` stay within a segment, `**` spans segments, dot files match, no
    braces or extglobs, and no implicit `P/**`. A leading `!` is the caller's to handle; a `.` or
    `..` segment raises HashFilesError."""
    built = _build(pattern, False, True, "/", pattern)
    return built.regex.fullmatch(_to_js("/" + path.lstrip("/"))) is not None


def _search_paths(patterns: Sequence[_Pattern]) -> list[str]:
    """Literal prefixes of the positive patterns: first seen first, those under another dropped."""
    candidates = {p.search_path for p in patterns if not p.negate}
    result: list[str] = []
    for pattern in patterns:
        path = pattern.search_path
        if pattern.negate or path in result:
            continue
        child, parent = path, _dirname(path)
        while parent != child and parent not in candidates:
            child, parent = parent, _dirname(parent)
        if parent == child:
            result.append(path)
    return result


def _split_options(patterns: str | Sequence[str]) -> tuple[str, bool]:
    """The runner's argument handling: an optional first `--follow-symbolic-links`, then patterns."""
    if isinstance(patterns, str):
        first, newline, rest = patterns.partition("\n")
        option = _js_trim(first)
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
_Child = tuple[str, str, int, tuple[int, ...]]  # name, name as JavaScript sees it, kind, live patterns


@dataclass
class _Walk:
    """@actions/glob's globGenerator plus the runner's per-file checks, collecting files to hash.

    A directory is entered when some positive pattern may still match below it (minimatch's
    partial match); `alive` holds the indexes of those patterns, narrowed segment by segment.
    """

    patterns: list[_Pattern]
    positives: list[_Pattern]
    workspace: str  # as JavaScript sees it
    follow: bool
    files: list[str]

    def run(self, roots: list[str]) -> None:
        for root_js in roots:
            root = _from_js(root_js)
            try:
                os.lstat(root)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise HashFilesError(f"Cannot search {root!r}: {exc.strerror}. Fix the pattern.") from exc
            if root_js == "/":  # minimatch cannot partial-match the root; @actions/glob lets it through
                depth, alive = 1, tuple(range(len(self.positives)))
            else:
                parts = root_js.split("/")
                depth = len(parts)
                alive = tuple(i for i, p in enumerate(self.positives) if p.partial(parts))
            if alive:
                self._visit_root(root, root_js, depth, alive)

    def _may_hold_workspace_files(self, path_js: str) -> bool:
        inside = self.workspace + "/"
        return path_js.startswith(inside) or path_js == "/" or inside.startswith(path_js + "/")

    def _visit_root(self, root: str, root_js: str, depth: int, alive: tuple[int, ...]) -> None:
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

    def _walk_tree(self, top: str, top_js: str, depth: int, alive: tuple[int, ...], real: str) -> None:
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

    def _children(self, path: str, depth: int, alive: tuple[int, ...]) -> list[_Child]:
        """The children (at segment index `depth`) some positive pattern may still match, sorted."""
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError as exc:
            raise HashFilesError(f"Cannot list directory {path!r}: {exc.strerror}.") from exc
        if all(e.name.isascii() for e in entries):
            entries.sort(key=attrgetter("name"))
        else:
            entries.sort(key=lambda e: os.fsencode(e.name))  # strcmp order of the bytes
        positives = self.positives
        settled = all(positives[i].has_globstar and depth >= len(positives[i].head) for i in alive)
        result: list[_Child] = []
        for entry in entries:
            name = name_js = entry.name
            unreadable = False
            if not name.isascii():
                if _SURROGATE.search(name):  # not UTF-8: node decodes it with U+FFFD replacements
                    unreadable = True
                    name_js = os.fsencode(name).decode("utf-8", "replace")
                name_js = _to_js(name_js)
            child_alive = alive
            if not settled:
                child_alive = tuple(
                    i
                    for i in alive
                    if (depth >= len(positives[i].head) or positives[i].head_matches(depth, name_js))
                    and (positives[i].has_globstar or depth < positives[i].length)
                )
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
        for pattern in reversed(self.patterns):
            if not pattern.directory_only and pattern.regex.fullmatch(
                path_js + "/" if pattern.append_slash else path_js
            ):
                if pattern.negate:
                    return
                break
        else:
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
    cwd_js = _to_js(cwd)
    parsed = _parse_patterns(text, cwd_js)
    positives = [p for p in parsed if not p.negate]
    if not positives or cwd == "/":  # the runner hashes only files under "<cwd>/"
        return ""
    walk = _Walk(parsed, positives, cwd_js, follow, [])
    walk.run(_search_paths(parsed))
    return _digest_files(walk.files)
