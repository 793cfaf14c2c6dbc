"""prepare-workspace and restore-workspace against real npm: installs once, shares everywhere."""

import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ci_actions.artifact import RunId
from ci_actions.store.store import Store
from ci_actions.workspace import Commands, WorkspaceError
from prepare_workspace.prepare import PrepareRequest, prepare
from restore_workspace.restore import RestoreRequest, restore_workspace

FIXTURE = Path(__file__).parents[1] / "fixtures" / "npm-app"


@pytest.fixture
def env(tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURE, ws / "app")
    (ws / "app" / "index.js").write_text("module.exports = require('is-number')(1)\n")
    (ws / ".hidden-config").write_text("kept\n")
    log = tmp_path / "installs.log"
    # The real npm ci, wrapped only to count how often it runs.
    install = ["sh", "-c", f'echo "$PWD" >> {log} && exec npm ci --no-audit --no-fund "$@"', "npm-ci"]
    return ws, tmp_path / "store", tmp_path / "runs", install, log


def request(env, run_id="100", attempt=1, **overrides):
    ws, store, runs, install, _ = env
    fields = dict(workspace=ws, package_dirs=["app"], install_command=install, prod_layer=True,
                  prisma_schemas=[], generate_command=None, cache_dir=store, workspace_root=runs,
                  exclude=["node_modules"], retention=86400.0, link_mode="auto",
                  run=RunId("acme/app", run_id, attempt))
    return PrepareRequest(**{**fields, **overrides})


def consumer(env, tmp_path, name, run_id="100", attempt=1, layer="all"):
    _, store, runs, install, _ = env
    job = tmp_path / name
    job.mkdir()
    (job / "left-by-last-run.txt").write_text("stale")
    run = RunId("acme/app", run_id, attempt)
    # clean: what the action does by default on a runner's job directory, which the last run left dirty
    return restore_workspace(RestoreRequest(job, runs, store, layer, "auto", run, Commands(tuple(install)),
                                            clean=True))


def installs(env) -> list[str]:
    log = env[4]
    return log.read_text().splitlines() if log.exists() else []


def test_warm_prepare_and_three_consumers_never_reinstall(env, tmp_path):
    cold = prepare(request(env, "1"))
    assert not cold.all_hit and len(installs(env)) == 2  # the full layer and the production layer
    warm = prepare(request(env, "2"))
    assert warm.all_hit and len(installs(env)) == 2
    for name in ("typecheck", "unit", "build"):
        report = consumer(env, tmp_path, name, run_id="2", layer="prod" if name == "build" else "all")
        job = tmp_path / name
        assert report.all_hit
        assert not (job / "left-by-last-run.txt").exists()
        assert (job / ".hidden-config").read_text() == "kept\n"
        assert (job / "app" / "node_modules" / "is-number" / "package.json").exists()
        assert (job / "app" / "node_modules" / "is-odd").exists() == (name != "build")
    assert len(installs(env)) == 2


def test_missing_lock_file_names_the_directory_and_saves_nothing(env):
    (env[0] / "app" / "package-lock.json").unlink()
    with pytest.raises(WorkspaceError, match=r"app: no package-lock\.json"):
        prepare(request(env))
    assert Store(env[1]).headers() == []


def test_lock_out_of_sync_quotes_npm_and_saves_nothing(env):
    package = env[0] / "app" / "package.json"
    manifest = json.loads(package.read_text())
    manifest["dependencies"]["is-even"] = "1.0.0"
    package.write_text(json.dumps(manifest))
    with pytest.raises(WorkspaceError) as caught:
        prepare(request(env, prod_layer=False))
    message = str(caught.value)
    assert message.startswith("app: deps-all: `sh -c")
    assert "package.json and package-lock.json" in message and "in sync" in message
    assert Store(env[1]).headers() == []


def test_a_package_json_edited_without_its_lock_misses_a_warm_store_and_npm_refuses_it(env):
    """The left-pad case: a dependency added to package.json, the lock not updated, committed. The key
    covers package.json, so the warm entry is not served and the job fails in npm's own words."""
    prepare(request(env, "81", prod_layer=False))
    package = env[0] / "app" / "package.json"
    manifest = json.loads(package.read_text())
    manifest["dependencies"]["left-pad"] = "^1.3.0"
    package.write_text(json.dumps(manifest))
    with pytest.raises(WorkspaceError, match=r"(?s)app: deps-all: .*can only install packages when your "
                                             r"package\.json and package-lock\.json .*in sync"):
        prepare(request(env, "82", prod_layer=False))
    assert len(installs(env)) == 2


def test_an_entry_lost_from_the_store_is_rebuilt_with_a_warning(env, tmp_path):
    prepare(request(env, "7"))
    Store(env[1]).prune(max_bytes=0, max_age=1e9)
    report = consumer(env, tmp_path, "job", run_id="7")
    assert not report.all_hit and len(installs(env)) == 3
    assert (tmp_path / "job" / "app" / "node_modules" / "is-number").exists()


def test_concurrent_runs_and_reruns_never_collide(env, tmp_path):
    """Two runs at once share the store and the runs root; each has its own checkout, as each runner
    has its own work directory (two `npm ci` in one directory would collide whatever we did)."""
    errors = []
    checkouts = {run_id: tmp_path / f"checkout-{run_id}" for run_id in ("31", "32")}
    for checkout in checkouts.values():
        shutil.copytree(env[0], checkout)

    def run(run_id):
        try:
            prepare(request(env, run_id, workspace=checkouts[run_id]))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r,)) for r in ("31", "32")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    runs = env[2] / "acme-app"
    assert sorted(p.name for p in runs.iterdir()) == ["31", "32"]
    rerun = consumer(env, tmp_path, "rerun", run_id="32", attempt=2)
    assert rerun.artifact_dir == runs / "32" / "1"


def test_cli_prepare_then_restore(env, tmp_path):
    ws, store, runs, _, _ = env
    common = ["--workspace-root", str(runs), "--cache-dir", str(store), "--repository", "acme/app",
              "--run-id", "55"]
    cli = [sys.executable, "-m", "ci_actions", "workspace"]
    prepared = subprocess.run([*cli, "prepare", "--workspace", str(ws), "--package-dir", "app", *common],
                              capture_output=True, text=True, check=True)
    assert json.loads(prepared.stdout)["dependency-hits"] == {"app": False}
    job = tmp_path / "cli-job"
    restored = subprocess.run([*cli, "restore", "--workspace", str(job), *common], capture_output=True,
                              text=True, check=True)
    assert json.loads(restored.stdout)["cache-hit"] is True
    assert (job / "app" / "index.js").exists()


def run_step(tmp_path, module, workspace, inputs):
    """One step as the runner runs it: inputs in INPUT_*, outputs read back from GITHUB_OUTPUT."""
    output = tmp_path / f"{module}.output"
    output.write_text("")
    action = Path(__file__).parents[2] / "actions" / module.replace("_", "-")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))}
    env = {**base, "PYTHONPATH": os.pathsep.join([str(action.parents[1] / "shared"), str(action)]),
           "GITHUB_OUTPUT": str(output), "GITHUB_WORKSPACE": str(workspace), "GITHUB_REPOSITORY": "acme/app",
           "GITHUB_RUN_ID": "70", "GITHUB_REF": "refs/heads/main", "GITHUB_EVENT_NAME": "push",
           **{f"INPUT_{name.upper().replace('-', '_')}": value for name, value in inputs.items()}}
    done = subprocess.run([sys.executable, "-m", module], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = output.read_text().splitlines()
    return {line.partition("<<")[0]: lines[i + 1] for i, line in enumerate(lines)
            if "<<ghadelimiter_" in line}  # the last value of each (workspace-ready is set false first)


def test_the_steps_prepare_and_restore_with_the_declared_defaults(env, tmp_path):
    ws, store, runs, install, _ = env
    where = {"cache-dir": str(store), "workspace-root": str(runs), "install-command": shlex.join(install)}
    prepared = run_step(tmp_path, "prepare_workspace", ws, {**where, "package-dirs": "app"})
    assert prepared["workspace-ready"] == "true" and prepared["dependency-hits"] == '{"app": false}'
    assert Path(prepared["workspace-path"]) == runs / "acme-app" / "70" / "1"
    job = tmp_path / "job"
    job.mkdir()
    (job / "left-by-last-run.txt").write_text("stale")  # clean: true by default, as actions/checkout
    restored = run_step(tmp_path, "restore_workspace", job, where)
    assert restored["workspace-ready"] == "true" and restored["cache-hit"] == "true"
    assert not (job / "left-by-last-run.txt").exists()
    assert (job / "app" / "node_modules" / "is-number").exists()


def test_a_package_without_dependencies_still_hits_next_time(env):
    (env[0] / "app" / "package.json").write_text('{"name": "bare", "version": "1.0.0"}')
    (env[0] / "app" / "package-lock.json").write_text(
        '{"name": "bare", "version": "1.0.0", "lockfileVersion": 3, "requires": true, '
        '"packages": {"": {"name": "bare", "version": "1.0.0"}}}')
    assert not prepare(request(env, "61")).all_hit
    assert prepare(request(env, "62")).all_hit
