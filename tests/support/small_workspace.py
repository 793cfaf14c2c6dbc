"""A one-package workspace whose "install" is a tiny Python script: prepare and restore end to end in
well under a second, for tests about what surrounds the install (metadata, guards), not npm itself."""

from __future__ import annotations

import sys
from pathlib import Path

from ci_actions.artifact import RunId
from ci_actions.workspace import Commands
from prepare_workspace.prepare import PrepareRequest, prepare
from restore_workspace.restore import RestoreReport, RestoreRequest, restore_workspace

INSTALL = """
import pathlib
root = pathlib.Path("node_modules/dep")
root.mkdir(parents=True, exist_ok=True)
(root / "index.js").write_text("module.exports = 1\\n")
"""


def install_command(tmp: Path) -> list[str]:
    script = tmp / "install.py"
    script.write_text(INSTALL)
    return [sys.executable, str(script)]


def prepare_small(tmp: Path, run: RunId, *, prod_layer: bool = False) -> None:
    """Prepare tmp/ws (package dir `app`) into tmp/store and tmp/runs."""
    package = tmp / "ws" / "app"
    package.mkdir(parents=True, exist_ok=True)
    (package / "package.json").write_text('{"name": "app"}')
    (package / "package-lock.json").write_text('{"name": "app", "lockfileVersion": 3}')
    (package / "index.js").write_text("require('dep')\n")
    prepare(PrepareRequest(tmp / "ws", ["app"], install_command(tmp), prod_layer, [], None, tmp / "store",
                           tmp / "runs", ["node_modules"], 3600.0, "copy", run))


def restore_small(tmp: Path, run: RunId, job: Path, **options) -> RestoreReport:
    return restore_workspace(RestoreRequest(job, tmp / "runs", tmp / "store", options.pop("layer", "all"),
                                            "copy", run, Commands(tuple(install_command(tmp))), **options))
