"""Check every member of a tar stream as it passes, without unpacking anything.

Python's tarfile spends ~130 µs per member, several seconds for a node_modules tree; this reads only
the 512-byte headers and skips the data, so it keeps pace with GNU tar extracting the same bytes beside
it. It must read the archive exactly as GNU tar (1.34) does, or a member could pass here as one thing and
land as another. So, as GNU tar:

- a header's checksum is checked (tar skips a bad header and hunts for the next good one);
- a member's size, path and link come from its pax `x` header, else from the last global `g` header
  (a new `g` replaces every earlier global record), else from GNU `L`/`K` records, else from the ustar
  fields; a pax `size` decides where the next header starts;
- the first all-zero block ends the archive (tar drains, but never extracts, what follows).

It refuses what it cannot read as GNU tar would (a malformed number or pax record, two `x` headers for
one member, sparse or multi-volume `GNU.*` records), and what could escape or is not a plain file,
directory or link: absolute names, `..`, a name that appears twice, a member below an earlier symlink
or file, a symlink whose target resolves (through the links before it, as the kernel would) outside the
tree, a hardlink to anything but an earlier regular member, a non-file member with data, and every
other file type. Whatever it refuses, tar never sees: the caller writes a chunk to tar only after it
passed here.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
REGULAR = {b"0", b"\0", b"7"}  # GNU tar extracts all three as regular files
HARDLINK, SYMLINK, DIRECTORY = b"1", b"2", b"5"
ALLOWED = REGULAR | {HARDLINK, SYMLINK, DIRECTORY}
META = {b"x", b"g", b"L", b"K"}
MAX_META = 1024 * 1024  # GNU tar would buffer any size; our own archives hold one path or two per header
MAX_SIZE = 2**62
MAX_FOLLOWS = 40  # as the kernel (MAXSYMLINKS): past it the kernel says ELOOP and goes nowhere
MAX_DEPTH = 256  # components: deeper than any real tree, and shallow enough for every recursive rmtree
_OCTAL = re.compile(rb" *([0-7]+)(?:[ \0].*)?", re.DOTALL)  # a subset of what GNU tar's from_header takes
_RECORD = re.compile(rb"([1-9][0-9]*) ")


class HostileMember(ValueError):
    """A member that could write outside the destination, create a device, or that GNU tar could read
    differently; names it (or its offset in the stream) and why."""


def _number(field: bytes, what: str) -> int:
    """A size or checksum field: octal digits, or GNU's base-256 (0x80 prefix) for large sizes."""
    digits = field.rstrip(b"\0 ")
    if digits.isdigit() and b"8" not in digits and b"9" not in digits:
        return int(digits, 8)  # what tar writes, at most 11 digits: no range to check
    if field[:1] == b"\x80":
        value = int.from_bytes(field[1:], "big")
    elif match := _OCTAL.fullmatch(field):
        value = int(match[1], 8)
    else:
        raise HostileMember(f"{what} field {field!r} is not an octal number")
    if value > MAX_SIZE:
        raise HostileMember(f"{what} {value} is out of range")
    return value


def _checksum_ok(header: bytes, where: str) -> bool:
    """GNU tar takes the unsigned or the signed byte sum, with the checksum field counted as blanks."""
    recorded = _number(header[148:156], f"checksum ({where})")
    unsigned = _byte_sum(header) - sum(header[148:156]) + 8 * 32
    if unsigned == recorded:
        return True
    high = sum(1 for byte in header if byte & 0x80) - sum(1 for byte in header[148:156] if byte & 0x80)
    return unsigned - 256 * high == recorded


def _byte_sum(block: bytes) -> int:
    """sum(block), ten times faster: Adler-32's low half is 1 + the byte sum mod 65521, exact for 256
    bytes (at most 65280)."""
    return (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(data: bytes) -> dict[str, str]:
    """`<length> <key>=<value>\\n` records, as GNU tar's decode_record reads them (it stops at a NUL).
    Refused: anything tar would complain about (it would then go on with the records before), the
    `GNU.*` records it reads as sparse maps or volume data, and a path, link or size that is empty (tar
    ignores an empty path) or holds a NUL (tar's C strings would cut it short there)."""
    records: dict[str, str] = {}
    offset = 0
    while offset < len(data) and data[offset]:
        match = _RECORD.match(data, offset)
        end = offset + int(match[1]) if match else 0
        if not match or end > len(data) or data[end - 1:end] != b"\n" or b"=" not in data[match.end():end]:
            raise HostileMember(f"malformed pax record at byte {offset} of its header: "
                                f"{bytes(data[offset:offset + 40])!r}")
        key, _, value = data[match.end():end - 1].partition(b"=")
        name = key.decode("utf-8", "surrogateescape")
        if b"\0" in key or name.startswith("GNU."):
            raise HostileMember(f"pax record {name!r} is not one this archive format writes")
        if name in ("path", "linkpath", "size") and (not value or b"\0" in value):
            raise HostileMember(f"pax {name} {value!r}: empty, or with a NUL that tar would cut it at")
        if name == "size" and not (value.isdigit() and int(value) <= MAX_SIZE):
            raise HostileMember(f"pax size {value!r} is not a number tar would take")
        records[name] = value.decode("utf-8", "surrogateescape")
        offset = end
    return records


def parts(path: str) -> list[str]:
    """A relative path's components as the kernel walks them (`a//./b` is `a/b`); refuses `/x` and `..`."""
    if path.startswith("/"):
        raise HostileMember(f"{path!r}: absolute path")
    components = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in components:
        raise HostileMember(f"{path!r}: '..' in the path")
    if len(components) > MAX_DEPTH:
        raise HostileMember(f"{path[:60]!r}…: {len(components)} levels deep, past {MAX_DEPTH}")
    return components


def resolve(links: Mapping[str, str], directory: list[str], target: str) -> list[str] | None:
    """Where `target`, read in `directory`, lands in a tree whose symlinks are `links` (path -> target),
    following them as the kernel would; None if it climbs above the tree's root or is absolute. A path
    that does not exist (yet) is taken as a directory, so a link stays inside whatever is made later."""
    if target.startswith("/"):
        return None
    here, pending, follows = list(directory), target.split("/")[::-1], 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not here:
                return None
            here.pop()
            continue
        here.append(part)
        link = links.get("/".join(here))
        if link is not None:
            follows += 1
            if follows > MAX_FOLLOWS:
                return here
            if link.startswith("/"):
                return None
            here.pop()
            pending.extend(link.split("/")[::-1])
    return here


class TarScanner:
    """Feed it the tar stream in any chunks; it checks each member and lists the regular files (a
    hardlink counts as a file of its target's size, as it lands on disk) and the symlinks."""

    def __init__(self) -> None:
        self.files: dict[str, int] = {}  # regular file -> size
        self.links: dict[str, str] = {}  # symlink -> target
        self.ended = False
        self._dirs = {""}  # directories made so far, by a member or as a member's parent
        self._buffer = bytearray()
        self._offset = 0  # of the next byte fed, in the stream
        self._skip = 0  # data bytes (with padding) still to pass over
        self._meta: tuple[bytes, int, int] | None = None  # pax/GNU header being read: kind, padded, size
        self._pending: dict[bytes, dict[str, str] | str] = {}  # x records, L name, K link: next member's
        self._globals: dict[str, str] = {}

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view and not self.ended:
            if self._skip:
                step = min(self._skip, len(view))
                self._skip -= step
                self._offset += step
                view = view[step:]
                continue
            need = self._meta[1] if self._meta else BLOCK
            if not self._buffer and len(view) >= need:  # the usual case: no copy through the buffer
                data, view = bytes(view[:need]), view[need:]
                self._offset += need
                self._take(data)
                continue
            take = min(need - len(self._buffer), len(view))
            self._buffer += view[:take]
            self._offset += take
            view = view[take:]
            if len(self._buffer) < need:
                return
            data = bytes(self._buffer)
            self._buffer.clear()
            self._take(data)

    def _take(self, data: bytes) -> None:
        if self._meta:
            self._finish_meta(data)
        else:
            self._header(data)

    def finish(self) -> None:
        """The stream is over: it must have ended as an archive does, not inside a member."""
        if not self.ended:
            raise HostileMember(f"the archive stops at byte {self._offset} without its end-of-archive block")

    def _header(self, header: bytes) -> None:
        where = f"the header at byte {self._offset - BLOCK}"
        if header == ZERO_BLOCK:
            self.ended = True
            return
        if not _checksum_ok(header, where):
            raise HostileMember(f"{where} fails its checksum")
        kind = header[156:157]
        size = _number(header[124:136], f"size ({where})")
        if kind in META:
            if size > MAX_META:
                raise HostileMember(f"{where}: a {size}-byte {kind!r} header")
            if kind in self._pending:
                raise HostileMember(f"{where}: a second {kind!r} header for one member")
            self._meta = (kind, -(-size // BLOCK) * BLOCK, size)
            return
        self._member(header, kind, size)

    def _member(self, header: bytes, kind: bytes, size: int) -> None:
        """Name, link and size as GNU tar decides them: pax `x`, then global `g`, then GNU `L`/`K`, then
        the ustar fields (prefix + name only with the POSIX magic, as tar)."""
        pending, self._pending = self._pending, {}
        records = {**self._globals, **pending[b"x"]} if b"x" in pending else self._globals
        name = _text(header[0:100])
        if header[257:263] == b"ustar\0" and header[345]:
            name = _text(header[345:500]) + "/" + name
        name = records.get("path", pending.get(b"L", name))
        link = records.get("linkpath", pending.get(b"K", _text(header[157:257])))
        size = int(records.get("size", size))
        self._place(name, kind, size, link)
        if kind in REGULAR:
            self._skip = -(-size // BLOCK) * BLOCK

    def _place(self, name: str, kind: bytes, size: int, link: str) -> None:
        """Refuse the member unless it lands inside, as a new plain file, directory or link."""
        def refuse(why: str) -> None:
            raise HostileMember(f"{name!r}: {why}")

        if kind not in ALLOWED:
            refuse(f"file type {kind!r} (devices, FIFOs and other special files are refused)")
        if size and kind not in REGULAR:
            refuse(f"a {size}-byte {'link' if kind in (HARDLINK, SYMLINK) else 'directory'}")
        if name.endswith("/") and kind != DIRECTORY:
            refuse("a trailing slash on a member that is not a directory (tar would make a directory)")
        components = parts(name)
        path = "/".join(components)
        if not components:
            if kind != DIRECTORY:
                refuse("an empty name, or '.' as something other than a directory")
            return
        self._check_parents(components[:-1], refuse)
        if path in self._dirs or path in self.files or path in self.links:
            refuse("appears twice in the archive")
        if kind == DIRECTORY:
            self._dirs.add(path)
        elif kind == SYMLINK:
            if resolve(self.links, components[:-1], link) is None:
                refuse(f"symlink to {link!r} leaves the tree")
            self.links[path] = link
        elif kind == HARDLINK:
            target = "/".join(parts(link))
            if target not in self.files:
                refuse(f"hardlink to {link!r}, which is not an earlier file in the archive")
            self.files[path] = self.files[target]
        else:
            self.files[path] = size

    def _check_parents(self, parents: list[str], refuse) -> None:
        """No member goes below a symlink (tar would follow it) or a file; the rest are directories."""
        missing = []
        while parents and (parent := "/".join(parents)) not in self._dirs:
            if parent in self.links:
                refuse(f"placed below the symlink {parent!r}")
            if parent in self.files:
                refuse(f"placed below the file {parent!r}")
            missing.append(parent)
            parents = parents[:-1]
        self._dirs.update(missing)

    def _finish_meta(self, data: bytes) -> None:
        kind, _, size = self._meta
        self._meta = None
        payload = data[:size]
        if kind == b"x":
            self._pending[b"x"] = _pax_records(payload)
        elif kind == b"g":
            self._globals = _pax_records(payload)  # GNU tar drops every earlier global record
        else:
            self._pending[kind] = _text(payload)
