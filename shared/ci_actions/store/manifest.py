"""The manifest of one cache entry: what was saved, where, and when it was last used.

On disk it is JSON lines: a header object, then one array per file system record. The header's first
field is ``last_used``, a fixed-width string at a fixed offset, so a restore can stamp it in place
without rewriting (and so without racing) the rest. The header carries the count and sha256 of the
record lines: a truncated or altered manifest is detected, never half-restored.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_string
from typing import Literal, NamedTuple

from ci_actions.store.keys import FORMAT

LAST_USED_PREFIX = b'{"last_used": "'
LAST_USED_WIDTH = 17  # "1764350000.123456": seconds and microseconds, fixed width


class ManifestError(ValueError):
    """A manifest that cannot be trusted: truncated, altered or from another format."""


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
        tag = row[0]
        if tag == "f" and len(row) == 7:  # most rows: built as a bare tuple, twice as fast as cls(...)
            return _new_tuple(cls, ("file", row[1], row[2], row[3], row[4], row[5], "", row[6]))
        if tag == "d":
            _, path, mode = row
            return cls("dir", path, mode)
        if tag == "l":
            _, path, target = row
            return cls("symlink", path, target=target)
        raise ManifestError(f"unknown record {row[:2]!r}")


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
    records: int = 0
    records_sha256: str = ""
    format: str = FORMAT


@dataclass
class Manifest:
    header: Header
    records: list[Record] = field(default_factory=list)

    @property
    def blob_digests(self) -> set[str]:
        return {r.digest for r in self.records if r.kind == "file"}


def _header_line(header: Header) -> bytes:
    fields = {k: v for k, v in vars(header).items() if k != "last_used"}
    body = json.dumps(fields, separators=(",", ":"))
    return LAST_USED_PREFIX + format_time(header.last_used).encode() + b'", ' + body[1:].encode() + b"\n"


def dumps(header: Header, lines: str) -> bytes:
    """Serialise a header and its records' lines (Record.to_line, in order), filling in the record
    count and digest. A JSON string never holds a raw newline, so the lines are counted by newlines."""
    body = lines.encode()
    header.records = lines.count("\n")
    header.records_sha256 = hashlib.sha256(body).hexdigest()
    return _header_line(header) + body


def parse_header(line: bytes) -> Header:
    try:
        data = json.loads(line)
        if data.get("format") != FORMAT:
            raise ManifestError(f"format {data.get('format')!r}, expected {FORMAT!r}")
        data["last_used"] = float(data["last_used"])
        return Header(**data)
    except (ValueError, TypeError, KeyError) as exc:
        raise ManifestError(f"unreadable header: {exc}") from exc


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
    if outside := next((r.path for r in records if _escapes(r.path)), None):
        raise ManifestError(f"record {outside!r} points outside the workspace")
    return Manifest(header, records)


def _escapes(path: str) -> bool:
    """A record path that is absolute or climbs out with `..`: restores place files relative to a
    directory's fd, where such a path would land outside it. (The cheap test first: most have no dot.)"""
    return path.startswith("/") or (".." in path and ".." in path.split("/"))
