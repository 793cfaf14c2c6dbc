"""hashFiles() vectors: each expected digest is computed here from an explicit file order."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import pytest

from ci_actions import hash_files_cli
from ci_actions.hash_files import HashFilesError, hash_files
from ci_actions.paths import match_paths


def digest_of(ws: Path, *files: str) -> str:
    """sha256 over the raw sha256 digests of `files`, in exactly the order given."""
    outer = hashlib.sha256()
    for name in files:
        outer.update(hashlib.sha256((ws / name).read_bytes()).digest())
    return outer.hexdigest()


def make(ws: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = ws / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return ws


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make(
        tmp_path / "ws",
        {
            "foo/x.json": '{"x": 1}',
            "foo-bar.json": '{"bar": 2}',
            "package.json": '{"name": "app"}',
            "README.md": "# app\n",
            "docs/guide.md": "guide\n",
            ".hidden": "dot\n",
            ".github/workflows/ci.yml": "on: push\n",
            "src/a.ts": "a\n",
            "src/sub/b.ts": "b\n",
            "lib/c.ts": "c\n",
        },
    )


def test_walks_children_in_byte_order_not_full_path_order(ws: Path) -> None:
    # strcmp on names: "foo" < "foo-bar.json", so foo/x.json comes first, though "/" > "-".
    got = hash_files("**/*.json", ws)
    assert got == digest_of(ws, "foo/x.json", "foo-bar.json", "package.json")
    assert got != digest_of(ws, *sorted(["foo/x.json", "foo-bar.json", "package.json"]))


def test_depth_first_pre_order_with_dotfiles(ws: Path) -> None:
    assert hash_files("**", ws) == digest_of(
        ws,
        ".github/workflows/ci.yml",
        ".hidden",
        "README.md",
        "docs/guide.md",
        "foo/x.json",
        "foo-bar.json",
        "lib/c.ts",
        "package.json",
        "src/a.ts",
        "src/sub/b.ts",
    )
    # "*" also matches "*/**" (implicit descendants), so it is "**"; "*.json" stays at the top.
    assert hash_files("*", ws) == hash_files("**", ws)
    assert hash_files("*.json", ws) == digest_of(ws, "foo-bar.json", "package.json")


def test_negation_and_last_matching_pattern_wins(ws: Path) -> None:
    assert hash_files("**/*.json\n!foo/**", ws) == digest_of(ws, "foo-bar.json", "package.json")
    assert hash_files("**/*.md\n!**/*.md\nREADME.md", ws) == digest_of(ws, "README.md")
    assert hash_files("!**/*.md", ws) == ""  # nothing positive: no search root at all
    assert hash_files("**/*.json\n!!foo/**", ws) == hash_files("**/*.json", ws)  # "!!" cancels out


def test_comments_blank_lines_and_whitespace(ws: Path) -> None:
    assert hash_files("# lockfiles\n\n   package.json  \n\t#README.md\n", ws) == digest_of(ws, "package.json")


def test_leading_dot_slash_and_implicit_descendants(ws: Path) -> None:
    assert hash_files("./src/*.ts", ws) == digest_of(ws, "src/a.ts")
    assert hash_files("src", ws) == digest_of(ws, "src/a.ts", "src/sub/b.ts")  # P also matches P/**
    assert hash_files("src/", ws) == digest_of(ws, "src/a.ts", "src/sub/b.ts")
    assert hash_files(".", ws) == hash_files("**", ws)


def test_explicit_globstar_also_matches_a_file_of_that_name(ws: Path) -> None:
    # minimatch only matches "/ws/P" against "/ws/P/**" with a trailing slash, which @actions/glob adds.
    assert hash_files("package.json/**", ws) == digest_of(ws, "package.json")


def test_nested_search_roots_are_dropped_and_root_order_is_kept(ws: Path) -> None:
    assert hash_files("src/sub/**\nsrc/**", ws) == digest_of(ws, "src/a.ts", "src/sub/b.ts")
    assert hash_files("src/**\nlib/**", ws) == digest_of(ws, "src/a.ts", "src/sub/b.ts", "lib/c.ts")
    assert hash_files("lib/**\nsrc/**", ws) == digest_of(ws, "lib/c.ts", "src/a.ts", "src/sub/b.ts")
    # "**/*.ts" roots at the workspace, which swallows the others: plain walk order again.
    assert hash_files("lib/**\n**/*.ts", ws) == digest_of(ws, "lib/c.ts", "src/a.ts", "src/sub/b.ts")


def test_no_match_gives_empty_string(ws: Path) -> None:
    assert hash_files("**/*.lock", ws) == ""
    assert hash_files("missing/dir/**", ws) == ""
    assert hash_files("", ws) == ""
    assert hash_files([], ws) == ""


@pytest.mark.parametrize("pattern", ["../ws/**", "foo/../package.json", "src/./a.ts", "!..", "src/[.][.]/x"])
def test_dot_and_dotdot_segments_are_errors_not_empty(ws: Path, pattern: str) -> None:
    with pytest.raises(HashFilesError, match=r"'\.' and '\.\.' segments are not allowed") as caught:
        hash_files(pattern, ws)
    assert pattern.lstrip("!") in str(caught.value)


def test_lone_bang_and_bad_option_are_errors(ws: Path) -> None:
    with pytest.raises(HashFilesError, match="nothing is left after '!'"):
        hash_files("!", ws)
    with pytest.raises(HashFilesError, match="Invalid glob option '--follow'"):
        hash_files(["--follow", "**"], ws)


def test_files_outside_the_workspace_are_skipped(tmp_path: Path, ws: Path) -> None:
    make(tmp_path / "outside", {"secret.txt": "s"})
    assert hash_files(f"{tmp_path}/outside/**", ws) == ""
    assert hash_files(f"{tmp_path}/**/*.txt", ws) == ""
    assert hash_files(f"{ws}/src/*.ts", ws) == digest_of(ws, "src/a.ts")  # absolute but inside


def test_home_patterns_resolve_against_home(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(ws / "docs"))
    assert hash_files("~/*.md", ws) == digest_of(ws, "docs/guide.md")
    monkeypatch.setenv("HOME", str(ws.parent))
    assert hash_files("~/**/*.ts", ws) == digest_of(ws, "lib/c.ts", "src/a.ts", "src/sub/b.ts")


def test_symlink_to_file_hashes_the_target_bytes(tmp_path: Path, ws: Path) -> None:
    make(tmp_path / "outside", {"target.json": '{"outside": true}'})
    (ws / "link-in.json").symlink_to("package.json")
    (ws / "link-out.json").symlink_to(tmp_path / "outside" / "target.json")  # the path is inside
    assert hash_files("**/*.json", ws) == digest_of(
        ws, "foo/x.json", "foo-bar.json", "package.json", "../outside/target.json", "package.json"
    )


def test_symlinked_directories_without_and_with_follow(ws: Path) -> None:
    (ws / "alias").symlink_to("src")
    (ws / "src" / "sub" / "up").symlink_to("..")  # a cycle back to src
    assert hash_files("**/*.ts", ws) == digest_of(ws, "lib/c.ts", "src/a.ts", "src/sub/b.ts")
    assert hash_files("alias/**", ws) == ""  # not entered
    # alias/a.ts, alias/sub/b.ts, lib/c.ts, src/a.ts, src/sub/b.ts; both "up" links lead back to a
    # directory already on the walk's chain of real paths, so they are cut.
    followed = digest_of(ws, "src/a.ts", "src/sub/b.ts", "lib/c.ts", "src/a.ts", "src/sub/b.ts")
    assert hash_files("**/*.ts", ws, follow_symbolic_links=True) == followed
    assert hash_files("--follow-symbolic-links\n**/*.ts", ws) == followed
    assert hash_files(["--FOLLOW-SYMBOLIC-LINKS", "**/*.ts"], ws) == followed
    assert hash_files("alias/**", ws, follow_symbolic_links=True) == digest_of(ws, "src/a.ts", "src/sub/b.ts")


def test_broken_symlink_is_an_error_unless_following(ws: Path) -> None:
    (ws / "src" / "gone.ts").symlink_to("missing.ts")
    with pytest.raises(HashFilesError, match=r"gone\.ts.*broken symlink"):
        hash_files("**/*.ts", ws)
    assert hash_files("**/*.ts\n!src/gone.ts", ws) == digest_of(ws, "lib/c.ts", "src/a.ts", "src/sub/b.ts")
    assert hash_files("lib/**", ws) == digest_of(ws, "lib/c.ts")  # not matched: no error
    assert hash_files("**/*.ts", ws, follow_symbolic_links=True) == digest_of(
        ws, "lib/c.ts", "src/a.ts", "src/sub/b.ts"
    )


def test_large_files_are_read_in_chunks(tmp_path: Path) -> None:
    ws = make(tmp_path / "ws", {"big.bin": bytes(range(256)) * 12_345, "small": "s"})
    assert hash_files("*", ws) == digest_of(ws, "big.bin", "small")


def test_workspace_through_a_symlink(tmp_path: Path, ws: Path) -> None:
    (tmp_path / "ws-link").symlink_to(ws)
    assert hash_files("**/*.json", tmp_path / "ws-link") == hash_files("**/*.json", ws)


def test_workspace_must_exist(tmp_path: Path) -> None:
    with pytest.raises(HashFilesError, match="not a directory"):
        hash_files("**", tmp_path / "nope")


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ci-actions")
    hash_files_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_prints_the_digest(
    ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(ws))
    args = _cli(["hash-files", "**/*.json", "!foo/**"])
    assert args.func(args) == 0
    assert capsys.readouterr().out == digest_of(ws, "foo-bar.json", "package.json") + "\n"
    (ws / "alias").symlink_to("foo")
    args = _cli(["hash-files", "--follow-symbolic-links", "alias/*"])
    assert args.func(args) == 0
    assert capsys.readouterr().out == digest_of(ws, "foo/x.json") + "\n"


def test_cli_reports_errors_with_exit_code_2(
    ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(ws))
    args = _cli(["hash-files", "../x"])
    assert args.func(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: Invalid pattern '../x'")


@pytest.mark.parametrize("lines", [
    ["**"], ["**/*.json"], ["src", "!src/sub"], ["**", "!**/*.md", "docs/guide.md"], [".github/", "lib/**"],
    ["*.json", "foo/**"], ["src/**/*.ts", "!src/sub/**", "src/sub/b.ts"], ["#comment", "!!README.md"],
])
def test_a_cache_path_and_hashfiles_select_the_same_files_in_order(ws: Path, lines: list[str]) -> None:
    """One dialect: the files a cache's `path` lines take (paths.py) are the files hashFiles() of the
    same lines hashes (both globs.py), walked in the same order."""
    trees = match_paths(lines, ws).trees
    files = [p for tree in trees for p in tree.paths if (ws / p).is_file()]
    assert files
    assert hash_files("\n".join(lines), ws) == digest_of(ws, *files)
