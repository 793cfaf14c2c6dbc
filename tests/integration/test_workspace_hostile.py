"""An artifact's entry list is another job's word: checked before use, and never a command to run.

Each test prepares a real workspace, then rewrites the artifact's manifest as an attacker with write
access to the runs root would (the archive digest does not cover the metadata), and restores it.
"""

import json
from pathlib import Path

import pytest

from ci_actions.artifact import MANIFEST, ArtifactError, RunId
from ci_actions.store.store import Store
from ci_actions.workspace import WorkspaceError, remove_beneath
from tests.support.small_workspace import prepare_small, restore_small

RUN = RunId("acme/hostile", "9", 1)


@pytest.fixture
def prepared(tmp_path):
    prepare_small(tmp_path, RUN)
    job = tmp_path / "job"
    job.mkdir()
    (job / "sentinel").write_text("the job's own file")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep").write_text("not the job's")
    return tmp_path


def rewrite_entries(tmp: Path, change) -> None:
    manifest_path = RUN.directory(tmp / "runs") / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    change(manifest["metadata"]["entries"])
    manifest_path.write_text(json.dumps(manifest))


def restore(tmp: Path):
    return restore_small(tmp, RUN, tmp / "job", clean=True)


def untouched(tmp: Path) -> bool:
    return ((tmp / "job" / "sentinel").read_text() == "the job's own file"
            and (tmp / "outside" / "keep").read_text() == "not the job's")


@pytest.mark.parametrize("field, value, why", [
    ("paths", ["/etc"], "not a plain path inside the workspace"),
    ("paths", ["../outside"], "not a plain path inside the workspace"),
    ("paths", ["app/node_modules/../../../outside"], "not a plain path inside the workspace"),
    ("paths", ["app/src"], "holds 'app/src', not its node_modules"),
    ("directory", "../outside", "not a plain path inside the workspace"),
    ("directory", "/tmp", "not a plain path inside the workspace"),
    ("role", "deps-evil", "unknown entry role"),
    ("key", 12, "is not a string"),
    ("key", "a,b", "contains a comma"),
    ("command", "rm -rf /", "not a list of strings"),
    ("paths", "app/node_modules", "not a list of one path"),
    ("directory", "app\ud800", "is not valid text"),
])
def test_a_bad_entry_field_is_refused_before_the_workspace_is_touched(prepared, field, value, why):
    tmp = prepared

    def change(entries):
        entries[0][field] = value

    rewrite_entries(tmp, change)
    with pytest.raises(ArtifactError, match=f"entry list is not to be trusted: .*{why}"):
        restore(tmp)
    assert untouched(tmp)


def test_an_entry_list_that_is_not_a_list_is_refused(prepared):
    tmp = prepared
    manifest_path = RUN.directory(tmp / "runs") / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["metadata"]["entries"] = {"role": "deps-all"}
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="entries is not a list"):
        restore(tmp)
    assert untouched(tmp)


def test_the_recorded_command_is_never_run_and_a_rebuild_by_another_is_not_saved(prepared):
    tmp = prepared
    pwned = tmp / "outside" / "pwned"

    def change(entries):
        entries[0]["command"] = ["sh", "-c", f"touch {pwned}"]

    rewrite_entries(tmp, change)
    Store(tmp / "store").prune(max_bytes=0, max_age=1e9)  # a miss: the entry must be rebuilt
    report = restore(tmp)
    assert not pwned.exists()
    assert (tmp / "job" / "app" / "node_modules" / "dep" / "index.js").exists()
    assert not report.all_hit
    assert any("so the store was not updated" in w for w in report.warnings)
    assert Store(tmp / "store").headers() == []


def test_a_rebuild_never_deletes_through_a_linked_parent(prepared):
    """The unpacked tree makes `app` a link to a directory outside it (which the artifact's own checks
    refuse); here it is planted after unpacking, where the rebuild's clean-up would meet it."""
    tmp = prepared
    (tmp / "outside" / "node_modules").mkdir()
    (tmp / "job" / "linked").symlink_to(tmp / "outside")
    with pytest.raises(WorkspaceError, match="a parent directory is a link"):
        remove_beneath(tmp / "job", "linked/node_modules")
    assert (tmp / "outside" / "node_modules").is_dir()
    (tmp / "job" / "node_modules").symlink_to(tmp / "outside" / "node_modules")
    remove_beneath(tmp / "job", "node_modules")  # the link itself goes, never what it points at
    assert not (tmp / "job" / "node_modules").is_symlink() and (tmp / "outside" / "node_modules").is_dir()
