"""The seed's "after" pipeline on the example app, as a consumer runs it: prepare once, then security,
unit + integration and E2E in parallel from restore-workspace (each test job with its own Postgres and
Redis), the images built once after them and deployed behind a real nginx on 127.0.0.1, then the
report. A warm run installs and generates nothing. A third run, on a commit whose unit test fails,
builds and deploys nothing, production goes on serving the warm run's release, and the report marks
the failed job and the skipped ones."""

import json
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest

from ci_actions import ledger
from tests.support.production import production_host
from tests.workflows.act_runner import REPO_ROOT, make_consumer_repo, run_workflow

pytestmark = pytest.mark.workflow
WORKFLOW = REPO_ROOT / "examples" / "workflows" / "after.yml"
APP = REPO_ROOT / "examples" / "loyalty-app"
CONSUMERS = ("security", "unit-integration", "e2e", "build")
FAILING_TEST = "backend/test/config.test.ts"
PASSING = "assert.equal(config.port, 3000);"


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    with production_host(tmp_path_factory.mktemp("production"), f"loyalty-{uuid.uuid4().hex[:8]}") as made:
        yield made


@pytest.fixture(scope="module")
def runs(tmp_path_factory, host):
    repo = make_consumer_repo(tmp_path_factory.mktemp("consumer"), WORKFLOW, tree=APP)
    shared = tmp_path_factory.mktemp("runner-disk")
    env = {"CI_ACTIONS_CACHE_DIR": str(shared / "store"),
           "CI_ACTIONS_WORKSPACE_ROOT": str(shared / "workspaces"), **host.env()}
    workflow = repo / ".github" / "workflows" / WORKFLOW.name
    cold = run_workflow(repo, workflow, env=env)
    warm = run_workflow(repo, workflow, env=env)
    return cold, warm, repo, env


@pytest.fixture(scope="module")
def failing(runs):
    """A commit whose backend unit test fails (an expectation changed, so the suite's test count, which
    the security job checks, stays), run after the other two."""
    *_, repo, env = runs
    test = repo / FAILING_TEST
    text = test.read_text()
    assert PASSING in text
    test.write_text(text.replace(PASSING, PASSING.replace("3000", "3001"), 1))
    git = ["git", "-C", str(repo), "-c", "user.name=ci", "-c", "user.email=ci@localhost"]
    subprocess.run([*git, "commit", "-qam", "a failing unit test"], check=True, capture_output=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout
    return run_workflow(repo, repo / ".github" / "workflows" / WORKFLOW.name, env=env), sha.strip()


@pytest.mark.parametrize("which", ["cold", "warm"])
def test_every_job_passes(runs, which):
    run = runs[0] if which == "cold" else runs[1]
    for job in ("prepare", *CONSUMERS, "deploy", "report"):
        assert run.job(job).result == "success", run.job(job).text[-3000:]
    assert run.undeclared_outputs == []


def test_cold_run_installs_once_and_consumers_only_restore(runs):
    cold, *_ = runs
    prepare = cold.job("prepare").step_outputs["prepare"]
    assert prepare["cache-hit"] == "false" and prepare["workspace-ready"] == "true"
    for job in CONSUMERS:
        assert cold.job(job).step_outputs["workspace"]["cache-hit"] == "true", cold.job(job).text[-2000:]


def test_warm_run_reruns_neither_npm_ci_nor_prisma(runs):
    _, warm, *_ = runs
    prepare = warm.job("prepare")
    assert prepare.step_outputs["prepare"]["cache-hit"] == "true"
    assert prepare.step_outputs["prepare"]["dependency-hits"] == '{"backend": true, "frontend": true}'
    assert "prisma backend/src/generated/prisma: hit" in prepare.text
    for job in CONSUMERS:
        assert warm.job(job).step_outputs["workspace"]["cache-hit"] == "true"
        assert "rebuilt it with" not in warm.job(job).text


def test_the_images_built_once_are_what_production_serves(runs, host):
    _, warm, *_ = runs
    images = json.loads(warm.job("build").outputs["images"])
    with urllib.request.urlopen(host.nginx.url("backend", "/api/health"), timeout=5) as response:
        health = json.loads(response.read())
    releases = ledger.Ledger(host.state_dir, host.project).releases()
    assert [r.outcome for r in releases] == ["live", "live"]
    assert health["commit"] == releases[-1].sha
    assert {s: i.ref for s, i in releases[-1].images.items()} == images
    with urllib.request.urlopen(host.nginx.url("frontend"), timeout=5) as response:
        assert response.status == 200


def test_a_failing_unit_test_builds_and_deploys_nothing_and_the_report_marks_it(failing, host):
    run, sha = failing
    unit = run.job("unit-integration")
    assert unit.result == "failure" and "3000 !== 3001" in unit.text, unit.text[-3000:]
    for job in ("prepare", "security", "e2e"):
        assert run.job(job).result == "success", run.job(job).text[-3000:]
    assert run.job("prepare").step_outputs["prepare"]["cache-hit"] == "true"
    assert {"build", "deploy"}.isdisjoint(job for job, ran in run.jobs.items() if ran.result != "skipped")
    releases = ledger.Ledger(host.state_dir, host.project).releases()
    assert [r.outcome for r in releases] == ["live", "live"]  # the cold and warm runs' only
    with urllib.request.urlopen(host.nginx.url("backend", "/api/health"), timeout=5) as response:
        assert json.loads(response.read())["commit"] == releases[-1].sha != sha
    assert run.job("report").result == "success", run.job("report").text[-3000:]
    [report] = [r for r in map(json.loads, map(Path.read_text, host.state_dir.glob("runs/*/*/report.json")))
                if r["sha"] == sha]
    outcomes = {job["name"]: job["outcome"] for job in report["jobs"]}
    assert report["conclusion"] == "failure"
    assert outcomes == {"prepare": "success", "security": "success", "unit-integration": "failure",
                        "e2e": "success", "build": "skipped", "deploy": "skipped"}, outcomes
