"""Cache `path` lines: whole subtrees, working `!` exclusions, globs, and nothing outside the workspace."""

import re

import pytest

from ci_actions.paths import HOME, WORKSPACE, PathError, Tree, anchors, match_paths, places


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
    assert [(*anchor[:2], anchor.negatives) for anchor in anchors(lines, box["ws"])] == [
        (str(absolute), str(absolute), ["cache/y"])]  # the exclusion under no root is dropped
    assert match_paths(lines, box["ws"]).trees == [
        Tree(str(absolute), str(absolute), ["cache/x/data", "cache", "cache/x"])]


def test_the_workspace_root_is_each_of_its_entries_but_a_restore_staging_directory(box):
    ws = box["ws"]
    (ws / ".git").mkdir()
    (ws / ".ci-actions-restore-1-abcd").mkdir()  # a restore at work
    for line in (".", "./", str(ws), f"{ws}/"):
        assert ws_paths([line, "!node_modules/a.js"], ws) == [".git", "node_modules"], line
    assert places(["."], ws)[WORKSPACE].selects(".git")
    assert not places(["."], ws)[WORKSPACE].selects("node_modules/a.js")  # a top path is one component


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
