"""@actions/glob's patterns, in plain Python: the one matcher behind hashFiles() and cache paths.

The runner's ``hashFiles()`` (hash_files.py) and actions/cache's ``path`` (paths.py) both resolve their
lines with ``@actions/glob`` (0.4 in the runner, 0.5 in actions/cache: the same Pattern code) on
minimatch 3.1. This module is that matcher, quirks included:

- each line is trimmed (JavaScript's ``trim()``); blank and ``#`` lines are dropped; each leading ``!``
  flips negation;
- a ``.`` or ``..`` segment is an error, except a leading ``./``; ``~`` and ``~/`` are the home
  directory; a relative pattern is rooted at the working directory;
- minimatch with ``dot``, without braces or extglobs; ``*``, ``?`` and ``[...]`` stay within a segment,
  ``**`` spans any number of them; a pattern ending in ``/`` matches directories only; an explicit
  ``P/**`` also matches ``P`` itself (file or directory);
- implicit descendants (@actions/glob's default, which hashFiles keeps): a pattern not ending in
  ``**`` (or ending in ``/``) also matches everything below what it matches, with its sign;
- the last pattern that matches a path decides whether it is in (`last_match`);
- search roots are the literal prefixes of the positive patterns, first seen first, nested ones
  dropped (`search_paths`); a walk visits children in byte order of their names (libuv sorts with
  strcmp: `sorted_entries`), and enters a directory only while some pattern may still match below
  it (`narrow`).

Paths are matched as JavaScript strings (UTF-16 code units: `to_js`), so ``?`` and classes see an
astral character as two characters, as the runner does. Walking, and what a match then means (a file
to hash, a tree to cache), is the caller's.
"""

from __future__ import annotations

import os
import re
import string
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

# String.prototype.trim()'s set; Python's str.strip() also strips \x1c-\x1f and \x85 but not \ufeff.
_JS_SPACE = "\t\n\v\f\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" + (
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_RE_SPECIALS = frozenset("().*{}+?[]^$\\!")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_GLOB_UNESCAPE = re.compile("\\\\([^\n\r\u2028\u2029])")
_NEVER = re.compile("(?!)")


class PatternError(ValueError):
    """A pattern that @actions/glob refuses; the message names it and says why."""


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


def js_trim(text: str) -> str:
    return text.strip(_JS_SPACE)


def to_js(text: str) -> str:
    """Astral characters as surrogate pairs: JavaScript's view of the string."""
    if text.isascii():
        return text

    def pair(match: re.Match[str]) -> str:
        code = ord(match.group()) - 0x10000
        return chr(0xD800 + (code >> 10)) + chr(0xDC00 + (code & 0x3FF))

    return _ASTRAL.sub(pair, text)


def from_js(text: str) -> str:
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


def dirname(path: str) -> str:
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
class Pattern:
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
    literal: bool  # no segment holds a glob: search_path is the whole pattern

    def matches(self, path: str, directory: bool) -> bool:
        """Whether this pattern matches a whole path (as JavaScript sees it) of a directory or not."""
        if self.directory_only and not directory:
            return False
        return self.regex.fullmatch(path + "/" if self.append_slash else path) is not None

    def head_matches(self, index: int, name: str) -> bool:
        part = self.head[index]
        return part == name if isinstance(part, str) else part.fullmatch(name) is not None

    def partial(self, parts: Sequence[str]) -> bool:
        """minimatch matchOne(partial=true): could something at or below this path match?"""
        if not all(self.head_matches(i, parts[i]) for i in range(min(len(parts), len(self.head)))):
            return False
        return self.has_globstar or len(parts) <= self.length


def negation(line: str) -> tuple[bool, str]:
    """Whether a line is negated (each leading `!` flips it), and the pattern after the `!`s."""
    negate, pattern = False, js_trim(line)
    while pattern.startswith("!"):
        negate = not negate
        pattern = js_trim(pattern[1:])
    return negate, pattern


def literal_segments(pattern: str) -> list[str]:
    """The pattern's segments, each as the literal text it stands for ("" where it holds a glob)."""
    return [_get_literal(segment) for segment in _path_segments(pattern)]


def build(line: str, negate: bool, implicit: bool, cwd: str, shown: str, home: str | None = None) -> Pattern:
    """@actions/glob's Pattern, with minimatch's segment-wise matchOne() folded into one regex.
    `cwd` roots a relative pattern; `home`, `~` (by default the expanded `~`).

    The fold is exact for the paths a walk produces: no "", "." or ".." segments except the empty
    last one that an appended "/" makes, which only a trailing "**" can match.
    """
    flip, pattern = negation(line)
    negate ^= flip
    pattern = _fixup(pattern, cwd, shown, home)
    segments = _path_segments(pattern)
    literal: list[str] = []
    for segment in segments:
        text = _get_literal(segment)
        if not text:
            break
        literal.append(text)

    parts = [_minimatch_segment(p) for p in re.split("/+", js_trim(_safe_trim_trailing_separator(pattern)))]
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
    return Pattern(
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
        literal=len(literal) == len(segments),
    )


def _fixup(pattern: str, cwd: str, shown: str, home: str | None) -> str:
    """@actions/glob's Pattern.fixupPattern: validate, then root the pattern."""
    if not pattern:
        raise PatternError(f"Invalid pattern {shown!r}: nothing is left after '!'. Remove the line.")
    literal = literal_segments(pattern)
    if any((s == "." and i > 0) or s == ".." for i, s in enumerate(literal)):
        raise PatternError(
            f"Invalid pattern {shown!r}: '.' and '..' segments are not allowed (only a leading './'). "
            "Write the path relative to the workspace without them."
        )
    pattern = _normalize_separators(pattern)
    if pattern == "." or pattern.startswith("./"):
        return _normalize_separators(_glob_escape(cwd) + pattern[1:])
    if pattern == "~" or pattern.startswith("~/"):
        home = str(Path("~").expanduser()) if home is None else home
        if not home.startswith("/"):
            raise PatternError(f"Pattern {shown!r} starts with '~' but HOME is not absolute: {home!r}.")
        return _normalize_separators(_glob_escape(to_js(home)) + pattern[1:])
    if pattern.startswith("/"):
        return pattern
    root = _glob_escape(cwd)
    return _normalize_separators(root + ("" if root.endswith("/") else "/") + pattern)


def is_comment(line: str) -> bool:
    """A line @actions/glob skips: blank, or starting with `#` (after trimming)."""
    line = js_trim(line)
    return not line or line.startswith("#")


def expand(line: str, cwd: str, home: str | None = None) -> list[Pattern]:
    """One line's patterns: the line's own and, unless it ends in `**` (and not `/`), its implicit
    descendants `P/**`, with the same sign. `line` as JavaScript sees it (to_js)."""
    pattern = build(line, False, False, cwd, from_js(line), home)
    if not pattern.directory_only and pattern.ends_with_globstar:
        return [pattern]
    implicit = _path_string([*pattern.segments, "**"])
    return [pattern, build(implicit, pattern.negate, True, cwd, from_js(line))]


def parse(text: str, cwd: str) -> list[Pattern]:
    """Newline-joined lines as @actions/glob's create() takes them, implicit descendants included."""
    return [pattern for raw in to_js(text).split("\n") if not is_comment(raw) for pattern in expand(raw, cwd)]


def last_match(patterns: Sequence[Pattern], path: str, directory: bool) -> Pattern | None:
    """The pattern that decides a path: the last that matches it (none: the path is out)."""
    for pattern in reversed(patterns):
        if pattern.matches(path, directory):
            return pattern
    return None


def glob_match(pattern: str, path: str) -> bool:
    """Whether `path` (segments joined by `/`) matches one pattern exactly as a hashFiles() line
    matches a file: `*` and `?` stay within a segment, `**` spans segments, dot files match, no
    braces or extglobs, and no implicit `P/**`. A leading `!` is the caller's to handle; a `.` or
    `..` segment raises PatternError."""
    built = build(pattern, False, True, "/", pattern)
    return built.regex.fullmatch(to_js("/" + path.lstrip("/"))) is not None


def search_paths(patterns: Sequence[Pattern]) -> list[str]:
    """Literal prefixes of the positive patterns: first seen first, those under another dropped."""
    candidates = {p.search_path for p in patterns if not p.negate}
    result: list[str] = []
    for pattern in patterns:
        path = pattern.search_path
        if pattern.negate or path in result:
            continue
        child, parent = path, dirname(path)
        while parent != child and parent not in candidates:
            child, parent = parent, dirname(parent)
        if parent == child:
            result.append(path)
    return result


# --- walking -----------------------------------------------------------------------------------


def sorted_entries(directory: str) -> list[os.DirEntry[str]]:
    """A directory's entries in the order @actions/glob visits them: by the bytes of their names, as
    libuv's scandir sorts them (strcmp)."""
    with os.scandir(directory) as it:
        entries = list(it)
    if all(e.name.isascii() for e in entries):
        entries.sort(key=attrgetter("name"))
    else:
        entries.sort(key=lambda e: os.fsencode(e.name))
    return entries


def settled(alive: Sequence[Pattern], depth: int) -> bool:
    """Whether every pattern still alive matches at any depth from here on (narrow would keep all)."""
    return all(p.has_globstar and depth >= len(p.head) for p in alive)


def narrow(alive: tuple[Pattern, ...], depth: int, name: str) -> tuple[Pattern, ...]:
    """The patterns that may match a child named `name` (at segment index `depth`) or something
    below it, of those that may match its directory or below (minimatch's partial match)."""
    return tuple(p for p in alive if (depth >= len(p.head) or p.head_matches(depth, name))
                 and (p.has_globstar or depth < p.length))
