"""restore-workspace never destroys work, and never reports a layer that prepare did not make.

The action and the CLI both clean by default (clean: true, --clean), as actions/checkout cleans a
runner's job directory; clean: false (--no-clean) is the guarded form, and so is a RestoreRequest's
own default, which the tests below use.
"""

import os
import subprocess
import sys

import pytest

from ci_actions.artifact import RunId
from ci_actions.store.store import Store
from ci_actions.workspace import WorkspaceError
from restore_workspace.guard import WorkAtRisk
from tests.support.small_workspace import install_command, prepare_small, restore_small

RUN = RunId("acme/guard", "3", 1)


@pytest.fixture
def tmp(tmp_path):
    prepare_small(tmp_path, RUN)
    return tmp_path


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_an_empty_or_missing_workspace_is_restored(tmp):
    restore_small(tmp, RUN, tmp / "new-job")
    (tmp / "empty").mkdir()
    restore_small(tmp, RUN, tmp / "empty")
    assert (tmp / "empty" / "app" / "node_modules" / "dep" / "index.js").exists()


def test_a_directory_of_someone_elses_files_is_refused_and_left_whole(tmp):
    job = tmp / "notes"
    (job / "drafts").mkdir(parents=True)
    (job / "drafts" / "plan.md").write_text("mine")
    (job / "todo.txt").write_text("mine too")
    with pytest.raises(WorkAtRisk, match=r"files no restore left here, which a restore would delete: .*todo"):
        restore_small(tmp, RUN, job)
    assert (job / "drafts" / "plan.md").read_text() == "mine" and (job / "todo.txt").exists()
    restore_small(tmp, RUN, job, clean=True)
    assert not (job / "todo.txt").exists() and (job / "app" / "index.js").exists()


def test_the_tree_a_restore_left_is_replaced_but_work_added_since_is_not(tmp):
    job = tmp / "job"
    restore_small(tmp, RUN, job)
    (job / "app" / "node_modules" / "dep" / "scratch.js").write_text("node_modules never counts")
    restore_small(tmp, RUN, job)  # unchanged since the last restore: replaced without a word
    (job / "app" / "index.js").write_text("edited")
    (job / "app" / "new.js").write_text("added")
    with pytest.raises(WorkAtRisk, match=r"files added or changed since the last restore.*app/"):
        restore_small(tmp, RUN, job)
    assert (job / "app" / "index.js").read_text() == "edited" and (job / "app" / "new.js").exists()
    message = ""
    try:
        restore_small(tmp, RUN, job)
    except WorkAtRisk as exc:
        message = str(exc)
    assert "app/index.js" in message and "app/new.js" in message and "--clean" in message


def test_a_checkout_no_restore_made_is_work_and_its_git_config_never_runs(tmp):
    """Asking git whether a checkout is clean runs what its config names: a clean filter planted by the
    job that left the tree ran as root. So no git is asked; a checkout is work unless --clean."""
    upstream, job = tmp / "upstream", tmp / "checkout"
    upstream.mkdir()
    git(upstream, "init", "-q", "-b", "main")
    (upstream / "README").write_text("r\n")
    git(upstream, "add", ".")
    git(upstream, "commit", "-qm", "init")
    git(tmp, "clone", "-q", str(upstream), str(job))
    pwned = tmp / "pwned"
    git(job, "config", "filter.x.clean", f"sh -c 'touch {pwned}; cat'")
    (job / ".git" / "info").mkdir(exist_ok=True)
    (job / ".git" / "info" / "attributes").write_text("* filter=x\n")
    os.utime(job / "README", (978307200, 978307200))  # git would have to re-read it, through the filter
    with pytest.raises(WorkAtRisk, match=r"files no restore left here.*README"):
        restore_small(tmp, RUN, job)
    assert (job / "README").exists() and not pwned.exists()
    restore_small(tmp, RUN, job, clean=True)
    assert (job / "app" / "index.js").exists() and not pwned.exists()


@pytest.mark.parametrize("work", ["an ignored .env", "a commit", "a detached commit", "a submodule's file"])
def test_work_done_in_a_restored_tree_is_never_deleted(tmp, work):
    """Whatever git would hide (ignored files, commits on no branch, submodules), a file added or
    changed since the restore, .git's own included, is work."""
    job = tmp / "job"
    restore_small(tmp, RUN, job)
    if work == "an ignored .env":
        (job / ".gitignore").write_text(".env\n")
        (job / ".env").write_text("SECRET=1\n")
    else:
        git(job, "init", "-q", "-b", "main")
        git(job, "add", "app/index.js")
        git(job, "commit", "-qm", "work")
        if work == "a detached commit":
            git(job, "checkout", "-q", "--detach")
            (job / "app" / "more.js").write_text("more\n")
            git(job, "add", "app/more.js")
            git(job, "commit", "-qm", "detached")
        elif work == "a submodule's file":
            (job / "lib").mkdir()
            (job / "lib" / "s.txt").write_text("x\n")
    with pytest.raises(WorkAtRisk, match="files added or changed since the last restore"):
        restore_small(tmp, RUN, job)
    assert (job / "app" / "index.js").exists()


def test_a_layer_prepare_did_not_make_is_an_error_naming_the_input(tmp):
    with pytest.raises(WorkspaceError, match="layer: prod was asked for, but prepare-workspace made no prod "
                                             "layer in this run; set prod-layer: true there"):
        restore_small(tmp, RUN, tmp / "build-job", layer="prod")
    assert not (tmp / "build-job").exists()


def test_the_prod_layer_is_restored_when_prepare_made_it(tmp_path):
    run = RunId("acme/guard", "4", 1)
    prepare_small(tmp_path, run, prod_layer=True)
    report = restore_small(tmp_path, run, tmp_path / "build-job", layer="prod")
    assert [r.entry.role for r in report.entries] == ["deps-prod"] and report.all_hit


def cli_restore(tmp, job, *flags, check=True):
    return subprocess.run([sys.executable, "-m", "ci_actions", "workspace", "restore", "--workspace",
                           str(job), "--workspace-root", str(tmp / "runs"), "--cache-dir", str(tmp / "store"),
                           "--repository", RUN.repository, "--run-id", RUN.run_id, "--install-command",
                           " ".join(install_command(tmp)), *flags],
                          capture_output=True, text=True, check=check)


def test_the_cli_cleans_as_the_action_does_unless_told_no_clean(tmp):
    job = tmp / "notes"
    job.mkdir()
    (job / "todo.txt").write_text("mine")
    refused = cli_restore(tmp, job, "--no-clean", check=False)
    assert refused.returncode == 1 and "files no restore left here" in refused.stderr and "--clean" in \
        refused.stderr and "Traceback" not in refused.stderr
    assert (job / "todo.txt").read_text() == "mine"
    cli_restore(tmp, job)
    assert not (job / "todo.txt").exists() and (job / "app" / "index.js").exists()


def test_the_cli_warns_as_the_action_does_when_it_rebuilds_a_lost_entry(tmp):
    Store(tmp / "store").prune(max_bytes=0, max_age=1e9)
    done = cli_restore(tmp, tmp / "cli-job")
    assert "warning: ci-actions-deps-app-all-" in done.stderr and "was not in the store; rebuilt it with" \
        in done.stderr
