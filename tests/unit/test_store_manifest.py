"""Manifests round-trip, stamp last_used in place, and reject truncation or alteration."""

import json

import pytest

from ci_actions.paths import WORKSPACE
from ci_actions.store import manifest as mf
from ci_actions.store.manifest import Header, Manifest, ManifestError, Record


def sample() -> Manifest:
    header = Header(key="deps-1", version="e" * 64, paths=["node_modules"], created=1764350000.5,
                    last_used=1764350000.5, files=1, bytes=3)
    records = [Record("dir", "node_modules", mode=0o755),
               Record("file", "node_modules/a.js", mode=0o644, size=3, digest="d" * 64, mtime_ns=5),
               Record("symlink", "node_modules/.bin/a", target="../a.js")]
    return Manifest(header, records)


def serialised(manifest: Manifest) -> bytes:
    return mf.dumps(manifest.header, [(WORKSPACE, "".join(record.to_line() for record in manifest.records))])


def test_round_trip():
    original = sample()
    parsed = mf.loads(serialised(original))
    assert parsed.records == original.records
    assert parsed.header == original.header
    assert parsed.header.records == 3


def test_a_newline_in_a_name_is_one_record():
    """dumps counts records by newlines: a name's own newline must be escaped, never raw."""
    original = sample()
    original.records = [Record("dir", "node_modules/new\nline", mode=0o755)]
    parsed = mf.loads(serialised(original))
    assert parsed.header.records == 1 and parsed.records == original.records


def test_last_used_is_a_fixed_width_field_at_a_fixed_offset():
    data = bytearray(serialised(sample()))
    offset = len(mf.LAST_USED_PREFIX)
    data[offset:offset + mf.LAST_USED_WIDTH] = mf.format_time(1999999999.25).encode()
    assert mf.loads(bytes(data)).header.last_used == 1999999999.25


@pytest.mark.parametrize("cut", [10, -1, -30])
def test_truncated_manifest_is_detected(cut):
    data = serialised(sample())
    with pytest.raises(ManifestError):
        mf.loads(data[:cut])


def test_truncated_at_a_line_boundary_is_detected():
    data = serialised(sample())
    without_last_record = data[: data.rstrip(b"\n").rfind(b"\n") + 1]
    with pytest.raises(ManifestError, match="record digest mismatch"):
        mf.loads(without_last_record)


def test_altered_record_is_detected():
    data = serialised(sample()).replace(b'"node_modules/a.js",420', b'"node_modules/a.js",493')
    with pytest.raises(ManifestError, match="record digest mismatch"):
        mf.loads(data)


@pytest.mark.parametrize("row", ['["f","node_modules/a.js",420,3]', '["x","node_modules/a.js"]'])
def test_a_malformed_record_with_a_matching_digest_is_refused(row):
    with pytest.raises(ManifestError, match="unknown record"):
        mf.loads(mf.dumps(sample().header, [(WORKSPACE, row + "\n")]))


def test_other_format_is_refused():
    data = serialised(sample()).replace(mf.FORMAT.encode(), b"ci-actions-store-0")
    with pytest.raises(ManifestError, match="format"):
        mf.loads(data)


@pytest.mark.parametrize("name", ['quote"and\\backslash', "tab\there", "ünïcødé ✓", "new\nline", "\x01ctl"])
def test_record_lines_are_what_json_dumps_gives(name):
    records = [Record("dir", f"nm/{name}", mode=0o755),
               Record("file", f"nm/{name}/f", mode=0o644, size=3, digest="d" * 64, mtime_ns=5,
                      blob_mtime_ns=7),
               Record("symlink", f"nm/{name}/l", target=f"../{name}")]
    for record in records:
        row = json.loads(record.to_line())
        assert record.to_line() == json.dumps(row, separators=(",", ":")) + "\n"
        assert Record.from_row(row) == record


@pytest.mark.parametrize("path", ["/etc/passwd", "node_modules/../../outside", ".."])
def test_a_record_outside_the_workspace_is_refused(path):
    """Restores place files relative to the staging directory's fd: an absolute path or `..` would
    land outside it, so a manifest holding one is refused, even with a matching digest."""
    manifest = sample()
    manifest.records.append(Record("file", path, mode=0o644, size=3, digest="d" * 64, mtime_ns=5))
    with pytest.raises(ManifestError, match="outside the workspace"):
        mf.loads(serialised(manifest))


def test_dots_inside_names_are_fine():
    manifest = sample()
    manifest.records.append(Record("file", "node_modules/a..b/..c", mode=0o644, size=3, digest="d" * 64))
    assert mf.loads(serialised(manifest)).records == manifest.records


def with_rows(*rows: list) -> bytes:
    """A manifest of these rows (any JSON), with a matching records_sha256: as an attacker writes it."""
    return mf.dumps(sample().header, [(WORKSPACE, "".join(json.dumps(row) + "\n" for row in rows))])


@pytest.mark.parametrize("row, says", [
    (["f", "nm/a", 0o644, 3, "../../x", 5, 7], "'../../x', not 64 lowercase hex"),
    (["f", "nm/a", 0o644, 3, "D" * 64, 5, 7], "not 64 lowercase hex"),
    (["f", "nm/a", 0o644, 3, 12, 5, 7], "not 64 lowercase hex"),
    (["f", "nm/a", "420", 3, "d" * 64, 5, 7], "wrong type or out of range"),
    (["f", "nm/a", 0o644, False, "d" * 64, 5, 7], "wrong type or out of range"),
    (["f", "nm/a", 0o644, 3, "d" * 64, 2**63, 7], "wrong type or out of range"),
    (["f", "nm/a", 0o644, 3, "d" * 64, 5, "7"], "wrong type or out of range"),
    (["d", "nm", 493.0], "wrong type or out of range"),
    (["l", "nm/l", None], "not a non-empty string"),
    (["l", "nm/l", "a\x00b"], "not a non-empty string"),
    (["d", 5, 493], "not a name"),
    (["d", "", 493], "not a name"),
    (["d", "nm/./x", 493], "not in normal form"),
    (["d", "nm//x", 493], "not in normal form"),
    (["d", "nm/", 493], "not in normal form"),
    ("f", "unknown record"),
])
def test_every_field_is_checked(row, says):
    with pytest.raises(ManifestError, match=says.replace("(", r"\(").replace(")", r"\)")):
        mf.loads(with_rows(row))


def test_special_mode_bits_are_dropped_at_parse_time():
    parsed = mf.loads(with_rows(["d", "nm", 0o3777], ["f", "nm/sh", 0o4755, 3, "d" * 64, 5, 7],
                                ["f", "nm/g", 0o2644, 3, "d" * 64, 5, 7]))
    assert [record.mode for record in parsed.records] == [0o777, 0o755, 0o644]


@pytest.mark.parametrize("rows, says", [
    ([["d", "nm", 493], ["d", "nm", 493]], "'nm' appears twice"),
    ([["l", "nm", "x"], ["d", "nm", 493]], "'nm' appears twice"),
    ([["l", "nm", "x"], ["f", "nm/a", 420, 3, "d" * 64, 5, 7]], "'nm/a' lies below the symlink record 'nm'"),
    ([["f", "nm/l/deep/a", 420, 3, "d" * 64, 5, 7], ["d", "nm", 493], ["l", "nm/l", "x"]],
     "lies below the symlink record 'nm/l'"),
    ([["f", "nm", 420, 3, "d" * 64, 5, 7], ["d", "nm/x", 493]], "'nm/x' lies below the file record 'nm'"),
    ([["l", "nm/l", "../.."]], "points outside"),
    ([["l", "l", "/etc"]], "points outside"),
    ([["l", "a", "."], ["l", "b", "a/.."]], "'b' -> 'a/..' points outside"),
    ([["l", "x/a", "."], ["l", "x/b", "a/../.."]], "'x/b' -> 'a/../..' points outside"),
])
def test_a_tree_a_restore_could_not_build_safely_is_refused(rows, says):
    with pytest.raises(ManifestError, match=says):
        mf.loads(with_rows(*rows))


def test_links_that_stay_inside_are_kept():
    rows = [["d", "nm", 493], ["l", "nm/a", "."], ["l", "nm/b", "a/.."], ["l", "nm/c", "b/nm/a/x"],
            ["l", "nm/loop", "loop/x"], ["l", "top", "nm/../nm"]]
    assert [r.target for r in mf.loads(with_rows(*rows)).records[1:]] == [row[2] for row in rows[1:]]


@pytest.mark.parametrize("field, value", [
    ("files", "many"), ("bytes", True), ("records", -1), ("created", "yesterday"), ("created", float("nan")),
    ("last_used", "soon"), ("last_used", 5), ("paths", "node_modules"), ("paths", [None]), ("key", 7),
    ("version", "v" * 64), ("records_sha256", None), ("extra", 1)])
def test_every_header_field_is_checked(field, value):
    """Lookup, listing and eviction read headers alone: a wrong type there was a TypeError."""
    head, _, body = serialised(sample()).partition(b"\n")
    fields = json.loads(head) | {field: value}
    with pytest.raises(ManifestError):
        mf.parse_header(json.dumps(fields).encode())
    with pytest.raises(ManifestError):
        mf.loads(json.dumps(fields).encode() + b"\n" + body)


def test_a_header_without_a_field_is_refused():
    head = json.loads(serialised(sample()).partition(b"\n")[0])
    del head["files"]
    with pytest.raises(ManifestError, match="header fields"):
        mf.parse_header(json.dumps(head).encode())
