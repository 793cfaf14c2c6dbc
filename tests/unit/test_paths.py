"""Cache `path` lines: whole subtrees, working `!` exclusions, globs, and nothing outside the workspace."""

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ci_actions.paths import HOME, WORKSPACE, PathError, Tree, anchors, match_paths, places
from tests.unit.test_hash_files_reference import mixed_tree, random_patterns, random_tree, reference_script

assert reference_script  # a fixture: the runner's pinned @actions/glob, installed once


def ws_paths(lines: list[str], ws) -> list[str]:
    """What the lines match in the workspace (its tree's paths)."""
    trees = {tree.anchor: tree.paths for tree in match_paths(lines, ws).trees}
    return trees.get(WORKSPACE, [])


@pytest.fixture
def ws(tmp_path):
    for rel in ["backend/node_modules/a/index.js", "backend/node_modules/.cache/x", "backend/src/app.ts",
                "frontend/node_modules/b/index.js", "frontend/.env", "top.txt"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
    (tmp_path / "backend/node_modules/.bin").mkdir()
    (tmp_path / "backend/node_modules/.bin/a").symlink_to("../a/index.js")
    (tmp_path / "backend/node_modules/dangling").symlink_to("nowhere")
    (tmp_path / "outside-link").symlink_to("/etc")
    return tmp_path


def test_directory_is_taken_whole_in_preorder(ws):
    assert ws_paths(["backend/node_modules"], ws) == [
        "backend/node_modules", "backend/node_modules/.bin", "backend/node_modules/.bin/a",
        "backend/node_modules/.cache", "backend/node_modules/.cache/x", "backend/node_modules/a",
        "backend/node_modules/a/index.js", "backend/node_modules/dangling",
    ]


def test_exclusions_work(ws):
    got = ws_paths(["backend/node_modules", "!backend/node_modules/.cache", "!**/.bin/*"], ws)
    assert "backend/node_modules/.cache" not in got and "backend/node_modules/.cache/x" not in got
    assert "backend/node_modules/.bin/a" not in got and "backend/node_modules/.bin" in got


def test_globstar_finds_each_node_modules_once(ws):
    got = ws_paths(["**/node_modules", "backend/node_modules/a"], ws)
    assert [p for p in got if p.endswith("node_modules")] == ["backend/node_modules", "frontend/node_modules"]
    assert len(got) == len(set(got))


def test_star_matches_dotfiles_within_one_segment(ws):
    assert ws_paths(["frontend/*"], ws)[:1] == ["frontend/.env"]
    assert ws_paths(["*.txt"], ws) == ["top.txt"]


def test_missing_paths_give_nothing(ws):
    assert ws_paths(["nope", "nope/**"], ws) == []


def test_symlinks_are_not_followed(ws):
    assert ws_paths(["outside-link"], ws) == ["outside-link"]


def test_absolute_path_inside_workspace_is_fine(ws):
    assert ws_paths([str(ws / "top.txt")], ws) == ["top.txt"]


@pytest.mark.parametrize("line", ["../elsewhere", "backend/../../x", "!../x", "~/../x", "/opt/x/../../etc"])
def test_dot_dot_is_refused(ws, line):
    with pytest.raises(PathError, match=r"uses '\.\.'"):
        match_paths([line], ws)


def test_lines_below_a_symlinked_directory_are_skipped_with_a_warning(ws):
    (ws / "linked").symlink_to(ws / "backend")  # inside the workspace, even: a save never reads through
    got = match_paths(["linked/src/app.ts", "linked/node_modules/*", "top.txt", "linked"], ws)
    assert got.trees == [Tree(WORKSPACE, str(ws), ["top.txt", "linked"])]  # the link is kept, as a link
    assert [w.split(":")[0] for w in got.warnings] == ["path 'linked/src/app.ts' was not saved",
                                                       "path 'linked/node_modules/*' was not saved"]


@pytest.fixture
def box(tmp_path, monkeypatch):
    """A workspace, a HOME (the job's, set in the environment) and an absolute root, apart."""
    dirs = {name: tmp_path / name for name in ("ws", "home", "abs")}
    for path in dirs.values():
        path.mkdir()
    monkeypatch.setenv("HOME", str(dirs["home"]))
    for rel in ["home/.npm/_cacache/index", "home/.npm/_logs/debug.log", "abs/cache/x/data", "abs/cache/y",
                "ws/node_modules/a.js"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    return dirs


def test_each_line_is_read_from_its_anchor(box):
    home, absolute = box["home"], box["abs"]
    got = match_paths(["node_modules", "~/.npm", "!~/.npm/_logs", f"{absolute}/cache/x"], box["ws"])
    assert got.trees == [
        Tree(WORKSPACE, str(box["ws"]), ["node_modules", "node_modules/a.js"]),
        Tree(HOME, str(home), [".npm", ".npm/_cacache", ".npm/_cacache/index"]),
        Tree(f"{absolute}/cache", f"{absolute}/cache", ["x", "x/data"])]
    assert got.warnings == []


def test_nested_absolute_roots_fold_into_the_outer_one_and_exclusions_apply_there(box, tmp_path):
    absolute = box["abs"]
    lines = [f"{absolute}/cache/x/data", f"{absolute}/cache", f"!{absolute}/cache/y", f"!{tmp_path}/other/x"]
    assert [(*anchor[:2], anchor.lines) for anchor in anchors(lines, box["ws"])] == [
        (str(absolute), str(absolute), [(lines[0], f"{absolute}/cache/x/data"),
                                        (lines[1], f"{absolute}/cache")])]
    assert match_paths(lines, box["ws"]).trees == [  # one walk, from the outer line's literal prefix
        Tree(str(absolute), str(absolute), ["cache", "cache/x", "cache/x/data"])]


def test_the_workspace_root_is_each_of_its_entries_but_a_restore_staging_directory(box):
    ws = box["ws"]
    (ws / ".git").mkdir()
    (ws / ".ci-actions-restore-1-abcd").mkdir()  # a restore at work
    for line in (".", "./", str(ws), f"{ws}/"):
        assert ws_paths([line, "!node_modules/a.js"], ws) == [".git", "node_modules"], line
        assert ws_paths([line], ws) == [".git", "node_modules", "node_modules/a.js"], line
    assert ws_paths(["**"], ws) == [".git", "node_modules", "node_modules/a.js"]
    assert places(["."], ws)[WORKSPACE].selects(".git")
    assert places(["."], ws)[WORKSPACE].selects("node_modules/a.js")  # below an entry: in the workspace
    assert not places(["."], ws)[WORKSPACE].selects(".ci-actions-restore-1-abcd", True)
    assert not places([".", "!node_modules/a.js"], ws)[WORKSPACE].selects("node_modules/a.js", False)


@pytest.mark.parametrize("line", [
    "/", "/*", "/u*/local", "/usr", "/usr/", "/usr/local", "/usr/local/*", "/var", "/var/lib", "/var/lib/",
    "/etc/cron.d/job", "/proc/self/environ", "/sys/kernel", "/dev/shm/x", "/boot/grub", "/lib64", "/root",
    "/home", "/opt/*", "/tmp/*", "/srv", "/cache",
])
def test_system_directories_are_refused_naming_the_line(box, line):
    with pytest.raises(PathError, match=re.escape(f"path {line!r} cannot be cached")):
        match_paths(["node_modules", line], box["ws"])
    with pytest.raises(PathError, match=re.escape(f"path {line!r} cannot be cached")):
        places([line], box["ws"])


def test_home_itself_or_what_holds_it_is_refused(box):
    home = box["home"]
    for line in ("~", "~/", "~/*", "~/.*", "~/**", str(home), f"{home}/*", str(home.parent)):
        with pytest.raises(PathError, match="HOME"):
            match_paths([line], box["ws"])


@pytest.mark.parametrize("line", ["~root/.npm", "~runner", "!~other/x"])
def test_another_users_home_is_an_error(box, line):
    with pytest.raises(PathError, match="not expanded"):
        match_paths([line], box["ws"])


def test_no_line_may_reach_the_store(box):
    store = box["home"] / ".cache" / "ci-actions" / "store"
    for line in ("~/.cache", "~/.cache/*", "~/.cache/ci-actions/store/blobs", f"{store}"):
        with pytest.raises(PathError, match="store"):
            match_paths([line], box["ws"], keep_out=[store])
    assert places(["~/.cache/pip"], box["ws"], keep_out=[store])  # beside it is fine


def test_a_symlinked_directory_on_the_way_under_home_or_to_an_absolute_root_is_not_read(box, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "pip").mkdir(parents=True)
    (elsewhere / "pip" / "secret").write_text("not HOME's")
    (box["home"] / ".cache").symlink_to(elsewhere)
    (tmp_path / "abs-link").symlink_to(box["abs"])
    got = match_paths(["~/.cache/pip", f"{tmp_path}/abs-link/cache/x"], box["ws"])
    assert got.trees == []
    assert got.warnings == [
        "path '~/.cache/pip' was not saved: .cache is a symbolic link, and a cache never reads through one "
        "(list the link itself to keep it as a link)",
        f"path '{tmp_path}/abs-link/cache/x' was not saved: {tmp_path}/abs-link is a symbolic link, and a "
        "cache never reads through one (list the link itself to keep it as a link)"]


def test_home_must_be_known(box, monkeypatch):
    monkeypatch.setenv("HOME", "/")
    with pytest.raises(PathError, match="HOME is '/'"):
        match_paths(["~/.npm"], box["ws"])


# -- the runner's rules: @actions/glob's lines, the last match deciding ------------------------------


@pytest.fixture
def deps(tmp_path):
    """A node_modules with a cache in it, one directory of which is to be kept."""
    for rel in ["node_modules/a/index.js", "node_modules/.cache/babel/x.json", "node_modules/.cache/keep/y",
                "node_modules/.cache/keep/sub/z", "node_modules/.cache/top.txt", "dist/out.js", "notes.md"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    return tmp_path


def test_a_line_after_an_exclusion_takes_back_part_of_what_it_dropped(deps):
    lines = ["node_modules", "!node_modules/.cache", "node_modules/.cache/keep"]
    assert ws_paths(lines, deps) == [
        "node_modules", "node_modules/.cache/keep", "node_modules/.cache/keep/sub",
        "node_modules/.cache/keep/sub/z", "node_modules/.cache/keep/y", "node_modules/a",
        "node_modules/a/index.js"]  # .cache itself is not taken: it comes back only as keep's parent
    place = places(lines, deps)[WORKSPACE]
    assert place.selects("node_modules/.cache/keep", True) and place.selects("node_modules/.cache/keep/y")
    assert not place.selects("node_modules/.cache", True) and not place.selects("node_modules/.cache/top.txt")
    # ...and an exclusion after that drops it again: the last line that matches decides.
    again = ws_paths([*lines, "!**/sub"], deps)
    assert "node_modules/.cache/keep/y" in again and not [p for p in again if "/sub" in p]


def test_an_exclusion_drops_only_what_the_lines_above_it_took(deps):
    assert "node_modules/.cache/top.txt" in ws_paths(["!node_modules/.cache", "node_modules"], deps)
    assert ws_paths(["**/*.js", "!node_modules/**", "node_modules/a/*"], deps) == [
        "dist/out.js", "node_modules/a/index.js"]
    assert ws_paths(["*", "!*/"], deps) == ["notes.md"]  # a line ending in / is a directory only
    assert ws_paths(["*/", "!node_modules/"], deps)[:2] == ["dist", "dist/out.js"]


def test_lines_are_read_as_glob_reads_them(deps):
    assert ws_paths(["# a comment, not a path", "", "  notes.md  "], deps) == ["notes.md"]
    assert ws_paths(["!!notes.md"], deps) == ["notes.md"]  # each `!` flips the line
    assert ws_paths(["notes.md", "! notes.md"], deps) == []  # `! x` is `!x`
    assert ws_paths(["dist/**"], deps) == ["dist", "dist/out.js"]  # P/** takes P itself too
    assert ws_paths(["notes.md/**"], deps) == ["notes.md"]  # ...even a file
    assert ws_paths(["notes.md/"], deps) == []  # not a directory
    # One walk from the workspace (the second line's root lies in the first's), names in byte order.
    assert ws_paths(["[nd]*s.md", "node_modules/[!.]"], deps) == [
        "node_modules/a", "node_modules/a/index.js", "notes.md"]
    (deps / "a*b").write_text("star")
    assert ws_paths([r"a\*b"], deps) == ["a*b"]  # a backslash escapes


def test_search_roots_keep_the_order_of_their_lines(deps):
    assert ws_paths(["notes.md", "dist"], deps) == ["notes.md", "dist", "dist/out.js"]
    assert ws_paths(["dist", "notes.md"], deps) == ["dist", "dist/out.js", "notes.md"]


def test_a_symlink_is_kept_as_a_link_and_is_no_directory_to_a_trailing_slash(ws):
    assert ws_paths(["outside-link/"], ws) == []
    assert ws_paths(["*", "!backend", "!frontend"], ws) == ["outside-link", "top.txt"]
    assert ws_paths(["backend/node_modules", "!**/dangling", "!**/.bin/a"], ws)[-2:] == [
        "backend/node_modules/a", "backend/node_modules/a/index.js"]


def test_an_exclusion_applies_in_every_anchor(box):
    home = box["home"]
    got = match_paths(["~/.npm", f"!{home}/.npm/_logs", "node_modules", "!~/.npm/_cacache/index"], box["ws"])
    assert got.trees == [Tree(WORKSPACE, str(box["ws"]), ["node_modules", "node_modules/a.js"]),
                         Tree(HOME, str(home), [".npm", ".npm/_cacache"])]


@pytest.mark.parametrize(("line", "said"), [
    ("!!/usr/local", "is or holds the system directory /usr/local"),  # `!!` is no exclusion: it is checked
    ("!!~", "it is HOME itself"),
    ("!", "has nothing after '!'"),
    ("!!", "has nothing after '!'"),
    ("node_modules/./a", "has a '.' segment"),
    ("~/./.npm", "has a '.' segment"),
    ("node_modules/\\.\\./x", "uses '..'"),  # escaped dots are still `..`, as @actions/glob reads them
    ("/u*/local", "a glob in its first component"),
    ("/cache", "it sits directly under /"),
])
def test_lines_the_matcher_or_the_anchors_refuse_name_the_line(box, line, said):
    for resolve in (match_paths, places):
        with pytest.raises(PathError, match=re.escape(f"path {line!r}") + ".*" + re.escape(said)):
            resolve(["node_modules", line], box["ws"])


# -- against upstream: @actions/glob itself, run under node -------------------------------------------

GLOB_JS = r"""
const glob = require(process.env.GLOB_MODULE)
;(async () => {
  const options = {implicitDescendants: process.env.IMPLICIT === '1',
                   followSymbolicLinks: process.env.FOLLOW === '1'}
  const globber = await glob.create(process.env.PATTERNS, options)
  const found = []
  for await (const file of globber.globGenerator()) found.push(file)
  process.stdout.write('\n__GLOB__' + JSON.stringify(found) + '\n')  // @actions/core logs to stdout too
})().catch(error => { process.stderr.write(String(error)); process.exit(1) })
"""


def upstream_glob(script: Path, ws: Path, lines: list[str], *, implicit: bool,
                  follow: bool) -> list[str] | None:
    """What @actions/glob yields for the lines in `ws` (the runner's pinned copy, the one the hashFiles
    reference runs: actions/cache's 0.5 has the same Pattern and globber), or None when it throws."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(ws / "home"), "PATTERNS": "\n".join(lines),
           "GLOB_MODULE": str(script.parent / "node_modules" / "@actions" / "glob"),
           "IMPLICIT": "1" if implicit else "0", "FOLLOW": "1" if follow else "0"}
    done = subprocess.run([shutil.which("node") or "node", "-e", GLOB_JS], cwd=ws, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        return None
    return json.loads(next(line for line in done.stdout.splitlines() if line.startswith("__GLOB__"))[8:])


def ours_or_none(lines: list[str], ws: Path) -> list[str] | None:
    try:
        return ws_paths(lines, ws)
    except PathError:
        return None


def below_a_link(ws: Path, rel: str) -> bool:
    parts = rel.split("/")
    return any((ws / "/".join(parts[:i])).is_symlink() for i in range(1, len(parts)))


CURATED = [
    ["**"], ["."], ["*.json"], ["foo"], ["foo/"], ["foo/**"], ["**/foo/**"], ["src", "!src/a"],
    ["**", "!**/*.md", "!src/**"], ["**", "!src/**", "src/a/**"], ["src/**/*.ts", "!src/**/*.test.ts"],
    ["node_modules", "!node_modules/.bin", "node_modules/.bin/tool"], ["!node_modules/pkg", "node_modules"],
    ["./src/**/*.ts"], ["#notes.md", "\\#notes.md"], ["\\!bang.md"], ["**/.*"], ["[ab]*", "?oo*"],
    ["src/\\[id\\].ts", "src/x\\?y.ts"], ["link-*"], ["link-dir/**"], ["link-dir/a/**"], ["file.txt/**"],
    ["emoji/*.txt", "caf\u00e9/*"], ["src/./index.ts"], ["!"], ["**/", "*.md"], ["src/a/loop/**", "src/a"],
]


@pytest.fixture(scope="module")
def glob_trees(tmp_path_factory):
    return {"mixed": mixed_tree(tmp_path_factory.mktemp("glob-mixed")),
            **{f"random{seed}": random_tree(seed)(tmp_path_factory.mktemp(f"glob-random{seed}"))
               for seed in range(3)}}


GLOB_CASES = [("mixed", lines) for lines in CURATED] + [
    (f"random{seed}", lines.split("\n")) for seed in range(3) for lines in random_patterns(seed)]


@pytest.fixture(scope="module")
def glob_answers(reference_script, glob_trees):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda case: upstream_glob(reference_script, glob_trees[case[0]], case[1],
                                                        implicit=True, follow=False), GLOB_CASES))


@pytest.mark.parametrize("index", range(len(GLOB_CASES)),
                         ids=[f"{tree}-{i}" for i, (tree, _) in enumerate(GLOB_CASES)])
def test_the_same_paths_as_actions_glob_with_implicit_descendants_and_no_links_followed(
        glob_answers, glob_trees, index):
    """Ours is exactly what @actions/glob yields with implicitDescendants (so `!` works, as in
    hashFiles) and followSymbolicLinks off, in its order; but for the workspace itself, which is not a
    path of its tree, and what lies below a symlinked search path, which a cache never reads."""
    tree, lines = GLOB_CASES[index]
    ws = glob_trees[tree]
    answer = glob_answers[index]
    want = None if answer is None else [
        rel for path in answer if (rel := os.path.relpath(path, ws)) != "." and not below_a_link(ws, rel)]
    assert ours_or_none(lines, ws) == want, lines


def test_the_upstream_cases_are_not_vacuous(glob_answers, glob_trees):
    assert sum(answer is None for answer in glob_answers) >= 2
    assert sum(bool(answer) for answer in glob_answers) >= 30
    assert sum(answer == [] for answer in glob_answers) >= 3
    mixed = {tuple(lines): glob_answers[i] for i, (tree, lines) in enumerate(GLOB_CASES) if tree == "mixed"}
    ws = glob_trees["mixed"]
    assert mixed[("link-dir/a/**",)] and all(below_a_link(ws, os.path.relpath(p, ws))
                                              for p in mixed[("link-dir/a/**",)])  # read through a link
    assert os.path.join(ws, "node_modules/.bin/tool") in mixed[
        ("node_modules", "!node_modules/.bin", "node_modules/.bin/tool")]  # taken back after `!`


@pytest.mark.parametrize("lines", [
    ["**"], ["."], ["node_modules"], ["foo", "src/a"], ["**/*.json"], ["src/**/*.ts"], ["*/"], ["foo*/**"],
    ["src", "src/a/b/c.ts"], ["#notes.md", "package.json"], ["[!f]*"],
])
def test_what_actions_cache_stores_for_lines_without_exclusions(reference_script, tmp_path, lines):
    """actions/cache's resolvePaths: @actions/glob with implicitDescendants off (links followed, none
    here), each match then taken whole by tar. Ours, without a `!` line, is the same set of paths."""
    ws = mixed_tree(tmp_path)
    for link in [p for p in ws.rglob("*") if p.is_symlink()]:
        link.unlink()
    answer = upstream_glob(reference_script, ws, lines, implicit=False, follow=True)
    assert answer is not None
    stored = set()
    for path in map(Path, answer):
        stored |= {path, *path.rglob("*")} if path.is_dir() else {path}
    assert stored, lines
    assert set(ours_or_none(lines, ws) or []) == {os.path.relpath(p, ws) for p in stored if p != ws}
