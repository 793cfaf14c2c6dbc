"""The tar scanner reads an archive as GNU tar does, and refuses what it cannot read the same way.

Archives are built by hand (tests/support/tar_headers.py). Where the scanner accepts, real GNU tar
extracts the same archive and the two views are compared.
"""

import os
import subprocess

import pytest

from ci_actions.tar_scan import BLOCK, HostileMember, TarScanner, resolve
from tests.support.tar_headers import END, FIFO, file, header, meta, padded, pax, record


def scan(stream: bytes, chunk: int = 700) -> TarScanner:
    """Feed in odd-sized chunks, so headers and records straddle them."""
    scanner = TarScanner()
    for start in range(0, len(stream), chunk):
        scanner.feed(stream[start:start + chunk])
    scanner.finish()
    return scanner


def extracted(tmp_path, stream: bytes) -> tuple[dict[str, int], dict[str, str]]:
    """What real GNU tar makes of the stream: (files -> size, symlinks -> target)."""
    out = tmp_path / "tar-out"
    out.mkdir()
    subprocess.run(["tar", "--extract", "--file=-", "-C", str(out)], input=stream, check=True,
                   capture_output=True)
    files, links = {}, {}
    for directory, dirnames, filenames in os.walk(out):
        for name in filenames + dirnames:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, out)
            if os.path.islink(path):
                links[relative] = os.readlink(path)
            elif os.path.isfile(path):
                files[relative] = os.path.getsize(path)
    return files, links


AGREES = {
    # the old scanner let the L record that came after the x header win
    "pax path beats a GNU long name": (
        pax(path="from-pax") + meta(b"L", b"from-L\0") + file(b"ustar", b"abc"), {"from-pax": 3}, {}),
    "GNU long name beats ustar": (meta(b"L", b"from-L\0") + file(b"ustar", b"abc"), {"from-L": 3}, {}),
    "ustar prefix": (file(b"f", b"ab", prefix=b"dir"), {"dir/f": 2}, {}),
    "pax linkpath beats a GNU long link": (pax(linkpath="from-pax") + meta(b"K", b"from-K\0")
                                           + header(b"l", b"2", link=b"ustar"), {}, {"l": "from-pax"}),
    "pax size beats the header's": (pax(size="5") + header(b"f", b"0", 0) + padded(b"12345")
                                    + file(b"g", b"x"), {"f": 5, "g": 1}, {}),
    # a global path names every later member that has no path of its own, until the next g replaces it
    "global path, own path, replaced globals": (
        pax(b"g", path="global") + pax(path="own") + file(b"u1", b"1") + file(b"u2", b"22")
        + pax(b"g", comment="resets") + file(b"u3", b"333"), {"own": 1, "global": 2, "u3": 3}, {}),
    "global size": (pax(b"g", size="2") + header(b"a", b"0", 0) + padded(b"ab")
                    + pax(b"g", comment="resets") + file(b"b", b"c"), {"a": 2, "b": 1}, {}),
    "global linkpath": (pax(b"g", linkpath="target") + header(b"l", b"2", link=b"other"), {},
                        {"l": "target"}),
    "hardlink is a file of its target's size": (file(b"a", b"abc") + header(b"b", b"1", link=b"a"),
                                                {"a": 3, "b": 3}, {}),
    "links into the tree, through an earlier link": (
        header(b"d", b"5") + header(b"d/e", b"5") + header(b"in", b"2", link=b"d/e")
        + header(b"d/e/up", b"2", link=b"../../in/.."), {}, {"in": "d/e", "d/e/up": "../../in/.."}),
}


@pytest.mark.parametrize("case", list(AGREES))
def test_the_scanner_sees_what_gnu_tar_extracts(tmp_path, case):
    stream, files, links = AGREES[case]
    scanner = scan(stream + END)
    assert (scanner.files, scanner.links) == (files, links)
    assert extracted(tmp_path, stream + END) == (files, links)


def test_what_follows_the_end_of_archive_is_never_read():
    scanner = scan(file(b"a", b"1") + END + header(b"dev", b"3"))
    assert scanner.files == {"a": 1}


REFUSED = {
    "absolute": (file(b"/etc/evil"), "absolute"),
    "dot-dot": (file(b"a/../../evil"), r"'\.\.'"),
    "fifo": (FIFO, "file type b'6'"),
    "character device": (header(b"null", b"3"), "file type b'3'"),
    "block device": (header(b"sda", b"4"), "file type b'4'"),
    "solaris extended header": (header(b"x", b"X"), "file type b'X'"),
    "sparse": (header(b"s", b"S"), "file type b'S'"),
    "bad checksum": (header(b"a", checksum=1), "fails its checksum"),
    "non-octal size": (header(b"a", size_field=b"0000000001x\0"), "not an octal number"),
    "python-only octal": (header(b"a", size_field=b"00000001_0\0\0"), "not an octal number"),
    "negative base-256 size": (header(b"a", size_field=b"\xff" * 12), "not an octal number"),
    "non-numeric checksum": (header(b"a")[:148] + b"zzzzzz\0 " + header(b"a")[156:], "checksum"),
    "pax record without a length": (meta(b"x", b"zz path=evil\n") + file(b"a"), "malformed pax record"),
    "pax record of length 0": (meta(b"x", b"0 path=a\n") + file(b"a"), "malformed pax record"),
    "pax record past its header": (meta(b"x", b"99 path=a\n") + file(b"a"), "malformed pax record"),
    "pax record without a newline": (meta(b"x", b"11 path=abc") + file(b"a"), "malformed pax record"),
    "pax record without =": (meta(b"x", b"9 pathab\n") + file(b"a"), "malformed pax record"),
    "pax size not a number": (pax(size="1e3") + file(b"a"), "pax size"),
    "empty pax path": (pax(path="") + file(b"a"), "pax path"),
    "NUL in a pax path": (meta(b"x", record("path", "ok\0/evil")) + file(b"a"), "NUL"),
    "GNU sparse name": (pax(**{"GNU.sparse.name": "evil"}) + file(b"a"), "GNU.sparse.name"),
    "two x headers": (pax(path="a") + pax(size="0") + file(b"u"), "a second b'x' header"),
    "huge meta header": (header(b"././@PaxHeader", b"x", 2**30), "header"),
    "trailing slash on a file": (file(b"d/", b"1234"), "trailing slash"),
    "twice": (file(b"a") + file(b"a"), "appears twice"),
    "below a symlink": (header(b"a", b"2", link=b".") + file(b"a/f"), "below the symlink 'a'"),
    "below a file": (file(b"a") + file(b"a/f"), "below the file 'a'"),
    "symlink out": (header(b"up", b"2", link=b".."), "leaves the tree"),
    "absolute symlink": (header(b"etc", b"2", link=b"/etc"), "leaves the tree"),
    "symlink out through an earlier one": (header(b"a", b"2", link=b".") + header(b"b", b"2", link=b"a/.."),
                                           "leaves the tree"),
    "symlink with data": (header(b"l", b"2", 512, link=b"x") + padded(FIFO), "512-byte link"),
    "directory with data": (header(b"d", b"5", 512) + padded(FIFO), "512-byte directory"),
    "hardlink out": (header(b"pw", b"1", link=b"../../etc/passwd"), r"'\.\.'"),
    "hardlink to a later file": (header(b"b", b"1", link=b"a") + file(b"a"), "not an earlier file"),
    "hardlink to a directory": (header(b"d", b"5") + header(b"h", b"1", link=b"d"), "not an earlier file"),
    "root as a file": (file(b"./"), "trailing slash"),
    "deeper than any rmtree can go": (pax(path="d/" * 300 + "f") + file(b"x"), "301 levels deep, past 256"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused(case):
    stream, message = REFUSED[case]
    with pytest.raises(HostileMember, match=message):
        scan(stream + END)


@pytest.mark.parametrize("cut", [BLOCK - 1, BLOCK + 10, 3 * BLOCK])
def test_an_archive_that_stops_early_is_refused(cut):
    with pytest.raises(HostileMember, match="without its end-of-archive block"):
        scan((file(b"a", b"x" * 1000) + END)[:cut])


@pytest.mark.parametrize(("directory", "target", "lands"), [
    ([], "a/b", ["a", "b"]),
    (["d"], "../x", ["x"]),
    ([], "a/..", []),
    ([], "l/..", None),  # l -> . : l/.. is the tree's parent, as the kernel resolves it
    (["d"], "ll/x", ["x"]),  # ll -> ../, relative to d
    ([], "/etc", None),
    ([], "abs/x", None),
    ([], "loop", ["loop"]),  # the kernel says ELOOP: it goes nowhere
])
def test_resolve_follows_links_as_the_kernel(directory, target, lands):
    links = {"l": ".", "d/ll": "../", "abs": "/", "loop": "loop2", "loop2": "loop"}
    assert resolve(links, directory, target) == lands
