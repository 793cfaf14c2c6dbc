"""build-images through the consumer's view under act: build + smoke + tags, the images output consumed
by a later job, and a failing smoke command that fails its job with `images-ready: false`."""

import contextlib
import json
import subprocess
import uuid
from pathlib import Path

import docker
import pytest
from docker.errors import ImageNotFound

from tests.workflows.act_runner import REPO_ROOT, JobRun, make_consumer_repo, run_workflow, undeclared_outputs

pytestmark = pytest.mark.workflow
WORKFLOW = Path(__file__).with_name("build-images.yml")
APP = REPO_ROOT / "tests" / "fixtures" / "images-app"
PROJECT_LABEL = "io.ci-actions.project"
RUN_ID = "4242"


@pytest.fixture(scope="module")
def images_run(tmp_path_factory):
    name = f"bi-wf-{uuid.uuid4().hex[:8]}"
    repo = make_consumer_repo(tmp_path_factory.mktemp("consumer"), WORKFLOW, tree=APP)
    sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                         check=True).stdout.strip()
    client = docker.from_env()
    try:
        run = run_workflow(repo, repo / ".github" / "workflows" / WORKFLOW.name,
                           payload={"repository": {"default_branch": "main"}},  # a push to main: `latest`
                           env={"IMAGES_APP_NAME": name, "STATE_DIR": str(tmp_path_factory.mktemp("state")),
                                "GITHUB_RUN_ID": RUN_ID})
        yield run, name, sha, client
    finally:
        for image in client.images.list(filters={"label": f"{PROJECT_LABEL}={name}"}):
            with contextlib.suppress(ImageNotFound):
                client.images.remove(image.id, force=True)
        client.close()


def test_build_and_use_jobs_pass(images_run):
    run, *_ = images_run
    for job in ("build", "use"):
        assert run.job(job).result == "success", run.job(job).text[-3000:]


def test_every_service_is_tagged_with_the_commit_latest_the_run_and_the_extra_tag(images_run):
    run, name, sha, client = images_run
    outputs = run.job("build").step_outputs["build"]
    assert outputs["images-ready"] == "true"
    assert json.loads(outputs["images"]) == {s: f"{name}-{s}:{sha}" for s in ("web", "api")}
    assert {s: outputs[f"image-{s}"] for s in ("web", "api")} == json.loads(outputs["images"])
    tags = [sha, f"sha-{sha[:7]}", "latest", f"run-{RUN_ID}", "edge"]
    assert json.loads(outputs["tags"]) == tags
    for service, image_id in json.loads(outputs["image-ids"]).items():
        image = client.images.get(image_id)
        assert set(image.tags) == {f"{name}-{service}:{tag}" for tag in tags}
        assert image.labels["org.opencontainers.image.revision"] == sha


def test_the_images_output_reaches_the_next_job_and_runs(images_run):
    run, name, sha, _ = images_run
    assert json.loads(run.job("build").outputs["images"])["web"] == f"{name}-web:{sha}"
    assert f"ran {name}-web:{sha}" in run.job("use").text


def test_a_failing_smoke_command_fails_the_job_and_tags_nothing(images_run):
    run, name, _, client = images_run
    job = run.job("smoke-fails")
    assert job.result == "failure"
    assert job.step_outputs["build"]["images-ready"] == "false"
    assert "smoke command `sh -c echo api smoke says no; exit 4` for api exited 4" in job.text
    assert "after a failed smoke" not in job.text
    refs = {t for i in client.images.list(filters={"label": f"{PROJECT_LABEL}={name}"}) for t in i.tags}
    failed_sha = "0" * 39 + "1"
    assert not any(ref.endswith((f":{failed_sha}", ":sha-0000000")) for ref in refs)
    assert not any(":ci-build-" in ref for ref in refs)


def test_only_the_documented_per_service_outputs_are_undeclared(images_run):
    run, *_ = images_run
    assert run.undeclared_outputs == []
    # the allowance is for build-images' `image-<service>` only, not for anything it might set
    jobs = {"build": JobRun(step_outputs={"build": {"image-web": "x", "secret": "y"}})}
    assert undeclared_outputs(WORKFLOW, jobs) == [
        "build/build: org/ci-actions/actions/build-images@v1 set undeclared output 'secret'"]
