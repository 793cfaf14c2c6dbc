"""Moving a staged tree in is planned before anything moves: the plan, golden, for a merge."""

import os
from pathlib import Path

from ci_actions.store import placement
from ci_actions.store.placement import _Step


def test_the_plan_of_a_merge(tmp_path: Path):
    """Replaced names go to the trash first; a name the workspace lacks moves whole; a missing parent
    is made; a top inside another top's staged tree is carried by it; nothing changes while planning."""
    ws, staging = tmp_path / "ws", tmp_path / "ws" / ".ci-actions-restore-1-0000"
    for tree, files in ((ws, ["node_modules/a/index.js", "node_modules/local.txt"]),
                        (staging, ["node_modules/a/index.js", "node_modules/b/c.js", "node_modules/link",
                                   "backend/node_modules/x.js"])):
        for name in files:
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_text(name)
    (ws / "node_modules" / "link").symlink_to("a")
    (ws / "node_modules").chmod(0o750)
    before = sorted(str(p) for p in ws.rglob("*"))
    ws_fd = os.open(ws, os.O_RDONLY | os.O_DIRECTORY)
    st_fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    existing: dict[str, int] = {}
    try:
        plan = placement._plan(ws_fd, st_fd, ["node_modules", "node_modules/b/c.js", "backend/node_modules"],
                               existing)
    finally:
        os.close(ws_fd)
        os.close(st_fd)
    assert plan == [_Step("trash", "node_modules/a/index.js"), _Step("move", "node_modules/a/index.js"),
                    _Step("move", "node_modules/b"),
                    _Step("trash", "node_modules/link"), _Step("move", "node_modules/link"),
                    _Step("mkdir", "backend"), _Step("move", "backend/node_modules")]
    a_mode = (ws / "node_modules" / "a").stat().st_mode & 0o777
    assert existing == {"node_modules": 0o750, "node_modules/a": a_mode}
    assert sorted(str(p) for p in ws.rglob("*")) == before
