"""build-images feeding hotswap-deploy under act, through the consumer's view, against a real nginx on
127.0.0.1 and real containers; then a job whose ref is not allowed, which must touch nothing; then a
deploy that fails its health check and rolls back, which pipeline-report's report must show."""

import json
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest

from ci_actions import ledger
from hotswap_deploy.proxy import Upstream
from tests.support.nginx import start_nginx
from tests.support.production import remove_project
from tests.workflows.act_runner import REPO_ROOT, make_consumer_repo, run_workflow

pytestmark = pytest.mark.workflow
WORKFLOW = Path(__file__).with_name("deploy.yml")
APP = REPO_ROOT / "tests" / "fixtures" / "deploy-app"
SECRET = "s3cr3t-token-value"


@pytest.fixture(scope="module")
def deploy_run(tmp_path_factory):
    name = f"hd-wf-{uuid.uuid4().hex[:8]}"
    repo = make_consumer_repo(tmp_path_factory.mktemp("consumer"), WORKFLOW, tree=APP)
    sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                         check=True).stdout.strip()
    nginx = start_nginx(tmp_path_factory.mktemp("nginx"), name, {"web": Upstream(["127.0.0.1:9"], [])})
    state = tmp_path_factory.mktemp("state")
    try:
        run = run_workflow(repo, repo / ".github" / "workflows" / WORKFLOW.name,
                           env={"DEPLOY_APP_NAME": name, "STATE_DIR": str(state), "FAKE_SECRET": SECRET,
                                "NGINX_CONFIG": str(nginx.config), "UPSTREAM_DIR": str(nginx.upstream_dir)})
        with urllib.request.urlopen(nginx.url("web"), timeout=5) as response:
            served = response.read().decode()
        yield run, name, sha, state, served
    finally:
        nginx.stop()
        remove_project(name)


def test_the_built_images_are_deployed_and_serve_through_nginx(deploy_run):
    run, name, sha, state, served = deploy_run
    for job in ("images", "deploy"):
        assert run.job(job).result == "success", run.job(job).text[-3000:]
    assert served.strip() == f"web at {sha}"
    release = ledger.Ledger(state, name).releases()[0]
    assert (release.sha, release.outcome, release.images["web"].ref) == (sha, "live", f"{name}-web:{sha}")
    assert run.undeclared_outputs == []


def test_the_env_file_secret_is_masked_and_written_0600(deploy_run):
    run, *_ = deploy_run
    job = run.job("deploy")
    assert "the env file is in the state folder, mode 0600, not in the checkout" in job.text
    assert job.result == "success"
    assert SECRET not in job.text


def test_a_ref_that_is_not_allowed_is_refused_before_anything_is_touched(deploy_run):
    run, name, _, state, _ = deploy_run
    job = run.job("untrusted-ref")
    assert job.result == "failure"
    assert "refusing to deploy from refs/heads/main: allowed-refs is refs/heads/release/*" in job.text
    # the deploy's release and the unhealthy job's, nothing in between
    assert [r.outcome for r in ledger.Ledger(state, name).releases()] == ["live", "rolled-back"]


def test_an_unhealthy_deploy_rolls_back_and_the_report_shows_it(deploy_run):
    run, _, sha, state, served = deploy_run
    job = run.job("unhealthy")
    assert job.result == "success", job.text[-3000:]  # its checks: failed, deployed false, rolled back
    assert "failed and was rolled back" in job.text
    assert served.strip() == f"web at {sha}"  # read after the whole run: the first release serves
    assert run.job("report").result == "success", run.job("report").text[-3000:]
    report = json.loads((state / "report.json").read_text())
    assert report["conclusion"] == "failure"
    [unhealthy] = [j for j in report["jobs"] if j["name"] == "unhealthy"]
    phases = [(p["name"], p["outcome"]) for step in unhealthy["steps"] for p in step["phases"]]
    assert ("rollback", "success") in phases, phases
    assert any(outcome == "failure" for _, outcome in phases), phases
