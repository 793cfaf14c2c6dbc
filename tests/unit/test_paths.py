"""Cache `path` lines: whole subtrees, working `!` exclusions, globs, and nothing outside the workspace."""

import pytest

from ci_actions.paths import PathError, match_paths


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
    assert match_paths(["backend/node_modules"], ws).paths == [
        "backend/node_modules", "backend/node_modules/.bin", "backend/node_modules/.bin/a",
        "backend/node_modules/.cache", "backend/node_modules/.cache/x", "backend/node_modules/a",
        "backend/node_modules/a/index.js", "backend/node_modules/dangling",
    ]


def test_exclusions_work(ws):
    got = match_paths(["backend/node_modules", "!backend/node_modules/.cache", "!**/.bin/*"], ws).paths
    assert "backend/node_modules/.cache" not in got and "backend/node_modules/.cache/x" not in got
    assert "backend/node_modules/.bin/a" not in got and "backend/node_modules/.bin" in got


def test_globstar_finds_each_node_modules_once(ws):
    got = match_paths(["**/node_modules", "backend/node_modules/a"], ws).paths
    assert [p for p in got if p.endswith("node_modules")] == ["backend/node_modules", "frontend/node_modules"]
    assert len(got) == len(set(got))


def test_star_matches_dotfiles_within_one_segment(ws):
    assert match_paths(["frontend/*"], ws).paths[:1] == ["frontend/.env"]
    assert match_paths(["*.txt"], ws).paths == ["top.txt"]


def test_missing_paths_give_nothing(ws):
    assert match_paths(["nope", "nope/**"], ws).paths == []


def test_symlinks_are_not_followed(ws):
    assert match_paths(["outside-link"], ws).paths == ["outside-link"]


def test_absolute_path_inside_workspace_is_fine(ws):
    assert match_paths([str(ws / "top.txt")], ws).paths == ["top.txt"]


@pytest.mark.parametrize("line", ["/etc/passwd", "../elsewhere", "backend/../../x", "!../x"])
def test_paths_outside_the_workspace_are_refused(ws, line):
    with pytest.raises(PathError, match="workspace"):
        match_paths([line], ws)


def test_lines_below_a_symlinked_directory_are_skipped_with_a_warning(ws):
    (ws / "linked").symlink_to(ws / "backend")  # inside the workspace, even: a save never reads through
    got = match_paths(["linked/src/app.ts", "linked/node_modules/*", "top.txt", "linked"], ws)
    assert got.paths == ["top.txt", "linked"]  # the link itself is kept, as a link
    assert [w.split(":")[0] for w in got.warnings] == ["path 'linked/src/app.ts' was not saved",
                                                       "path 'linked/node_modules/*' was not saved"]
