"""The seed's "after" pipeline on the example app, as a consumer runs it: prepare once, then quality,
unit tests and build start in parallel from restore-workspace. A warm run installs and generates nothing."""


import pytest

from tests.workflows.act_runner import REPO_ROOT, make_consumer_repo, run_workflow

pytestmark = pytest.mark.workflow
WORKFLOW = REPO_ROOT / "examples" / "workflows" / "after.yml"
APP = REPO_ROOT / "examples" / "loyalty-app"
CONSUMERS = ("quality", "unit-tests", "build")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    repo = make_consumer_repo(tmp_path_factory.mktemp("consumer"), WORKFLOW, tree=APP)
    shared = tmp_path_factory.mktemp("runner-disk")
    env = {"CI_ACTIONS_CACHE_DIR": str(shared / "store"),
           "CI_ACTIONS_WORKSPACE_ROOT": str(shared / "workspaces")}
    workflow = repo / ".github" / "workflows" / WORKFLOW.name
    cold = run_workflow(repo, workflow, env=env)
    warm = run_workflow(repo, workflow, env=env)
    return cold, warm


@pytest.mark.parametrize("which", ["cold", "warm"])
def test_every_job_passes(runs, which):
    run = runs[0] if which == "cold" else runs[1]
    for job in ("prepare", *CONSUMERS):
        assert run.job(job).result == "success", run.job(job).text[-3000:]
    assert run.undeclared_outputs == []


def test_cold_run_installs_once_and_consumers_only_restore(runs):
    cold, _ = runs
    prepare = cold.job("prepare").step_outputs["prepare"]
    assert prepare["cache-hit"] == "false" and prepare["workspace-ready"] == "true"
    for job in CONSUMERS:
        assert cold.job(job).step_outputs["workspace"]["cache-hit"] == "true", cold.job(job).text[-2000:]


def test_warm_run_reruns_neither_npm_ci_nor_prisma(runs):
    _, warm = runs
    prepare = warm.job("prepare")
    assert prepare.step_outputs["prepare"]["cache-hit"] == "true"
    assert prepare.step_outputs["prepare"]["dependency-hits"] == '{"backend": true, "frontend": true}'
    assert "prisma backend/src/generated/prisma: hit" in prepare.text
    for job in CONSUMERS:
        assert warm.job(job).step_outputs["workspace"]["cache-hit"] == "true"
        assert "rebuilt it with" not in warm.job(job).text
