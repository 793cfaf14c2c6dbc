"""Tar streams built header by header: the hostile ones are exactly those no tar writes."""

from ci_actions.tar_scan import BLOCK

END = bytes(2 * BLOCK)


def header(name: bytes, kind: bytes = b"0", size: int = 0, link: bytes = b"", mode: int = 0o644,
           size_field: bytes | None = None, prefix: bytes = b"", checksum: int | None = None) -> bytes:
    """One ustar header; `size_field` and `checksum` let a test write what no tar would."""
    block = bytearray(BLOCK)
    block[0:100] = name.ljust(100, b"\0")
    block[100:108] = b"%07o\0" % mode
    block[108:124] = b"0000000\0" * 2
    block[124:136] = size_field if size_field is not None else b"%011o\0" % size
    block[136:148] = b"%011o\0" % 1700000000
    block[148:156] = b" " * 8
    block[156:157] = kind
    block[157:257] = link.ljust(100, b"\0")
    block[257:265] = b"ustar\x0000"
    block[345:500] = prefix.ljust(155, b"\0")
    block[148:156] = b"%06o\0 " % (sum(block) if checksum is None else checksum)
    return bytes(block)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def meta(kind: bytes, payload: bytes) -> bytes:
    """A pax `x`/`g` header or a GNU `L`/`K` record with its payload."""
    return header(b"././@PaxHeader", kind, len(payload)) + padded(payload)


def pax(kind: bytes = b"x", **records: str) -> bytes:
    return meta(kind, b"".join(record(key, value) for key, value in records.items()))


def file(name: bytes, data: bytes = b"", **fields) -> bytes:
    return header(name, b"0", len(data), **fields) + padded(data)


FIFO = header(b"evil-fifo", b"6", mode=0o666)
DEVICE = header(b"evil-dev", b"3", mode=0o666)
