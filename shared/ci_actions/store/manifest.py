"""The manifest of one cache entry: what was saved, where, and when it was last used.

On disk it is JSON lines: a header object, then one array per file system record. The header's first
field is ``last_used``, a fixed-width string at a fixed offset, so a restore can stamp it in place
without rewriting (and so without racing) the rest. The header carries the count and sha256 of the
record lines: a truncated or altered manifest is detected, never half-restored.

The records form one tree per anchor (the workspace, HOME, an absolute root: see paths.py), one after
another; the header's ``anchors`` lists each with its record count. Record paths are relative to their
anchor, and each tree is checked on its own, so that none reaches into another or above its root.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_string
from typing import Literal, NamedTuple

from ci_actions.paths import HOME, NEVER_INSIDE, WORKSPACE
from ci_actions.store.keys import FORMAT
from ci_actions.tar_scan import MAX_DEPTH, resolve

LAST_USED_PREFIX = b'{"last_used": "'
LAST_USED_WIDTH = 17  # "1764350000.123456": seconds and microseconds, fixed width
_INT64 = 1 << 63  # sizes and times beyond it are refused by the syscalls that would get them
_is_digest = re.compile("[0-9a-f]{64}").fullmatch
_HEX = b"0123456789abcdef"
_dot_component = re.compile(r"/\.\.?/").search


def _bad_path(path: str) -> bool:
    """An empty, "." or ".." component, a leading or trailing slash, a NUL, or more than MAX_DEPTH
    levels (a recursive rmtree of the staging directory could not remove it). Three substring tests
    of "/path/" settle most paths; only one with a dotfile in it is searched further."""
    framed = f"/{path}/"
    return ("//" in framed or "\x00" in framed or ("/." in framed and _dot_component(framed) is not None)
            or framed.count("/") > MAX_DEPTH + 1 or not (path.isascii() or _encodable(path)))


def _encodable(name: str) -> bool:
    """Whether the OS can take the name: a lone surrogate (JSON allows it) has no bytes at all."""
    try:
        os.fsencode(name)
    except UnicodeEncodeError:
        return False
    return True


class ManifestError(ValueError):
    """A manifest that cannot be trusted: truncated, altered, from another format, or naming
    something a restore must never do (a path or link leaving the workspace, a file below a link)."""


def format_time(seconds: float) -> str:
    return f"{seconds:0{LAST_USED_WIDTH}.6f}"


_new_tuple = tuple.__new__


class Record(NamedTuple):
    """One path under the workspace: a regular file (by digest), a directory, or a symlink.

    A tuple, not a dataclass: a restore builds one per file, and tuples are several times cheaper.
    """

    kind: Literal["file", "dir", "symlink"]
    path: str
    mode: int = 0
    size: int = 0
    digest: str = ""
    mtime_ns: int = 0
    target: str = ""
    blob_mtime_ns: int = 0

    def to_line(self) -> str:
        """The record's JSON array and a newline, formatted directly: exactly what json.dumps gives
        with compact separators, four times faster (a save writes one per file)."""
        if self.kind == "file":
            return (f'["f",{_json_string(self.path)},{self.mode},{self.size},"{self.digest}",'
                    f"{self.mtime_ns},{self.blob_mtime_ns}]\n")
        if self.kind == "dir":
            return f'["d",{_json_string(self.path)},{self.mode}]\n'
        return f'["l",{_json_string(self.path)},{_json_string(self.target)}]\n'

    @classmethod
    def from_row(cls, row: list) -> Record:
        """A record from its JSON row, every field checked: whoever could write the store wrote it.
        Modes lose their setuid, setgid and sticky bits here, so no consumer can restore them."""
        if type(row) is list and len(row) == 7 and row[0] == "f":  # most rows: the fewest checks that do
            _, path, mode, size, digest, mtime_ns, blob_mtime_ns = row
            if (type(path) is str and type(digest) is str and len(digest) == 64  # its characters: see loads
                    and type(mode) is type(size) is type(mtime_ns) is type(blob_mtime_ns) is int
                    and 0 <= size < _INT64 and -_INT64 <= mtime_ns < _INT64):
                framed = f"/{path}/"  # _bad_path, inline: this runs once per file
                if not ("//" in framed or "\x00" in framed or ("/." in framed and _dot_component(framed))
                        or framed.count("/") > MAX_DEPTH + 1 or not (path.isascii() or _encodable(path))):
                    # A bare tuple, twice as fast as cls(...).
                    return _new_tuple(cls, ("file", path, mode & 0o777, size, digest, mtime_ns, "",
                                            blob_mtime_ns))
        elif type(row) is list and len(row) == 3 and type(row[1]) is str and not _bad_path(row[1]):
            tag, path, third = row
            if tag == "d" and type(third) is int:
                return cls("dir", path, third & 0o777)
            if tag == "l" and type(third) is str and third and "\x00" not in third and _encodable(third):
                return cls("symlink", path, target=third)
        raise ManifestError(_fault(row))


def _fault(row: object) -> str:
    """What is wrong with a row from_row refused (only ever called for one: the warning names it)."""
    shown = f"{row!r:.200}"
    if type(row) is not list or not row or row[0] not in ("f", "d", "l") or len(row) != _ROW_LENGTH[row[0]]:
        return f"unknown record {shown}"
    path = row[1]
    if type(path) is not str or not path or "\x00" in path:
        return f"record path is not a name: {shown}"
    if _bad_path(path):
        parts = path.split("/")
        if path.startswith("/") or ".." in parts:
            return f"record {path!r} points outside the workspace"
        if not _encodable(path):
            return f"record path {path!r} has characters no file name can hold"
        if path.count("/") >= MAX_DEPTH:
            return f"record {path[:60]!r}… is {path.count('/') + 1} levels deep, past {MAX_DEPTH}"
        return f"record path {path!r} is not in normal form (an empty or '.' component)"
    if row[0] == "f" and not (type(row[4]) is str and _is_digest(row[4]) is not None):
        return f"record {path!r} has digest {row[4]!r:.80}, not 64 lowercase hex characters"
    if row[0] == "l":
        return f"symlink {path!r} has target {row[2]!r:.80}, not a non-empty string without NUL"
    return f"record {path!r} has a field of the wrong type or out of range: {shown}"


_ROW_LENGTH = {"f": 7, "d": 3, "l": 3}


@dataclass
class Header:
    """What lookup, listing and eviction read, without the records."""

    key: str
    version: str
    paths: list[str]
    created: float
    last_used: float
    files: int
    bytes: int
    scope: str = ""  # the ref that saved it ("" when none was known); see keys.Scope
    records: int = 0
    records_sha256: str = ""
    format: str = FORMAT
    anchors: list[tuple[str, int]] = field(default_factory=list)  # (anchor, its record count), in order


@dataclass
class Manifest:
    header: Header
    records: list[Record] = field(default_factory=list)

    def trees(self) -> list[tuple[str, list[Record]]]:
        """Each anchor with its records (relative to its root), in the order they were saved."""
        found, start = [], 0
        for anchor, count in self.header.anchors:
            found.append((anchor, self.records[start:start + count]))
            start += count
        return found


def _header_line(header: Header) -> bytes:
    fields = {k: v for k, v in vars(header).items() if k != "last_used"}
    body = json.dumps(fields, separators=(",", ":"))
    return LAST_USED_PREFIX + format_time(header.last_used).encode() + b'", ' + body[1:].encode() + b"\n"


def dumps(header: Header, trees: Sequence[tuple[str, str]]) -> bytes:
    """Serialise a header and, per anchor, its records' lines (Record.to_line, in order), filling in
    the anchors, record count and digest. A JSON string never holds a raw newline, so the lines are
    counted by newlines."""
    header.anchors = [(anchor, lines.count("\n")) for anchor, lines in trees]
    body = "".join(lines for _, lines in trees).encode()
    header.records = sum(count for _, count in header.anchors)
    header.records_sha256 = hashlib.sha256(body).hexdigest()
    return _header_line(header) + body


# Each header field and the types it may have (`type(x) is`, so a JSON true is not taken for an int).
_HEADER_FIELDS: dict[str, tuple[type, ...]] = {
    "last_used": (str,), "key": (str,), "version": (str,), "paths": (list,), "created": (int, float),
    "files": (int,), "bytes": (int,), "scope": (str,), "records": (int,), "records_sha256": (str,),
    "format": (str,), "anchors": (list,)}


def parse_header(line: bytes) -> Header:
    """The header, every field checked: lookup, listing and eviction read headers alone, and a
    wrong-typed field must make a damaged entry there, not a TypeError that blocks prune for good."""
    try:
        data = json.loads(line)
        if type(data) is not dict or data.get("format") != FORMAT:
            raise ManifestError(f"format {data.get('format') if type(data) is dict else None!r}, "
                                f"expected {FORMAT!r}")
        if set(data) != set(_HEADER_FIELDS):
            raise ManifestError(f"header fields {sorted(data)}, expected {sorted(_HEADER_FIELDS)}")
        if wrong := [name for name, types in _HEADER_FIELDS.items() if type(data[name]) not in types]:
            raise ManifestError(f"header field(s) of the wrong type: {', '.join(wrong)}")
        data["last_used"] = float(data["last_used"])
    except ValueError as exc:  # ManifestError included
        raise ManifestError(f"unreadable header: {exc}") from exc
    if (not all(type(path) is str for path in data["paths"])
            or not (math.isfinite(data["created"]) and math.isfinite(data["last_used"]))
            or min(data["files"], data["bytes"], data["records"]) < 0
            or not (_is_digest(data["version"]) and _is_digest(data["records_sha256"]))):
        raise ManifestError("unreadable header: a path that is not a string, a time that is not finite, "
                            "a negative count or a digest that is not 64 lowercase hex characters")
    data["anchors"] = _anchors(data["anchors"], data["records"])
    return Header(**data)


def _anchors(anchors: list, records: int) -> list[tuple[str, int]]:
    """The header's anchors, each the workspace, HOME or an absolute root in normal form outside
    /proc, /sys, /dev, /boot and /etc, each once, their counts adding up to the records. (A restore
    also places only the anchors its own path lines name.)"""
    checked = []
    for item in anchors:
        if not (type(item) is list and len(item) == 2 and type(item[0]) is str and type(item[1]) is int
                and item[1] >= 0):
            raise ManifestError(f"unreadable header: anchor {item!r:.80} is not [name, record count]")
        name, count = item
        if name not in (WORKSPACE, HOME) and not (
                name.startswith("/") and name != "/" and not _bad_path(name[1:])
                and not any(name == d or name.startswith(d + "/") for d in NEVER_INSIDE)):
            raise ManifestError(f"unreadable header: anchor {name!r:.80} is not the workspace, HOME or an "
                                "absolute root a cache may write to")
        checked.append((name, count))
    if len({name for name, _ in checked}) != len(checked) or sum(c for _, c in checked) != records:
        raise ManifestError(f"unreadable header: anchors {anchors!r:.200} name one twice, or do not add up "
                            f"to the {records} records")
    return checked


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic GC while tens of thousands of rows are built: none of them can be in a cycle, and
    the collector's passes over them would cost more than building them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def loads(data: bytes) -> Manifest:
    """Parse and check a whole manifest; any truncation or alteration raises ManifestError."""
    head, sep, body = data.partition(b"\n")
    if not sep:
        raise ManifestError("no header line (truncated)")
    header = parse_header(head)
    if hashlib.sha256(body).hexdigest() != header.records_sha256:
        raise ManifestError("record digest mismatch (truncated or altered)")
    try:  # one json.loads for all the rows: a JSON string never holds a raw newline
        with paused_gc():
            rows = json.loads(b"[" + body.rstrip(b"\n").replace(b"\n", b",") + b"]")
            records = [Record.from_row(row) for row in rows]
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"unreadable record: {exc}") from exc
    if len(records) != header.records:
        raise ManifestError(f"{len(records)} records, header says {header.records}")
    _check_digests(records)
    manifest = Manifest(header, records)
    for anchor, tree in manifest.trees():
        _check_tree(anchor, tree)
    return manifest


def _check_digests(records: list[Record]) -> None:
    """Every file digest (64 characters long, from_row saw to that) is lowercase hex: all of them at
    once, one C pass over their bytes, ten times cheaper than a match per row."""
    digests = "".join([record.digest for record in records if record.kind == "file"])
    if digests.isascii() and not digests.encode().translate(None, _HEX):
        return
    bad = next(r for r in records if r.kind == "file" and _is_digest(r.digest) is None)
    raise ManifestError(f"record {bad.path!r} has digest {bad.digest!r}, not 64 lowercase hex characters")


def _check_tree(anchor: str, records: list[Record]) -> None:
    """Refuse a tree that a restore could not build without writing through a link or out of its
    anchor: a path recorded twice, a record below a symlink (or a file) record, a symlink whose
    target leaves the anchor. One dict of the paths; a record's parent is almost always a directory
    record, so the common case is one lookup per record."""
    kinds = {record.path: record.kind for record in records}
    if len(kinds) != len(records):
        seen: set[str] = set()
        twice = next(r.path for r in records if r.path in seen or seen.add(r.path))  # type: ignore[func-returns-value]
        raise ManifestError(f"record {twice!r} appears twice")
    for path in kinds:
        parent = path.rpartition("/")[0]
        while parent:  # up to the nearest directory record (checked in its own turn), or the top
            kind = kinds.get(parent)
            if kind == "dir":
                break
            if kind is not None:
                raise ManifestError(f"record {path!r} lies below the {kind} record {parent!r}: a restore "
                                    "would write through it")
            parent = parent.rpartition("/")[0]
    # Resolved as the kernel would, through the entry's own links: `b -> a/..` is harmless alone but
    # escapes once `a -> .` is in the entry too. Paths it does not hold are taken as directories.
    links = {record.path: record.target for record in records if record.kind == "symlink"}
    for path, target in links.items():
        if resolve(links, path.split("/")[:-1], target) is None:
            where = {WORKSPACE: "the workspace", HOME: "HOME"}.get(anchor, anchor)
            raise ManifestError(f"symlink {path!r} -> {target!r} points outside {where}")
