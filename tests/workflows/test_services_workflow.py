"""test-services through the consumer's view under act: two jobs of one run in parallel, each with its
own Postgres on its own leased port; a job whose tests fail still has its stack removed by the post
step; an explicit stop/. After the run nothing of any stack is left."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from tests.support.labelled import labelled, remove_labelled
from tests.workflows.act_runner import REPO_ROOT, make_consumer_repo, run_workflow

pytestmark = pytest.mark.workflow
WORKFLOW = Path(__file__).with_name("test-services.yml")
APP = REPO_ROOT / "tests" / "fixtures" / "services-app"
LEASES_LABEL = "ci-actions.test-services.leases"


@pytest.fixture(scope="module")
def services_run(tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    leases = str(state / "test-services" / "leases")
    repo = make_consumer_repo(tmp_path_factory.mktemp("consumer"), WORKFLOW, tree=APP)
    client = docker.from_env()
    try:
        run = run_workflow(repo, repo / ".github" / "workflows" / WORKFLOW.name,
                           env={"STATE_DIR": str(state), "RENDEZVOUS": str(tmp_path_factory.mktemp("meet"))})
        left = leftovers(client, leases)
        yield run, state, left
    finally:
        remove_labelled(client, f"{LEASES_LABEL}={leases}")  # only what this run's stacks carry
        client.close()


def leftovers(client: docker.DockerClient, leases: str) -> list[str]:
    return [name for names in labelled(client, f"{LEASES_LABEL}={leases}").values() for name in names]


def test_two_parallel_jobs_each_get_their_own_postgres(services_run):
    run, _, _ = services_run
    one, two = run.job("one"), run.job("two")
    assert one.result == "success", one.text[-4000:]
    assert two.result == "success", two.text[-4000:]
    assert one.outputs["project"] != two.outputs["project"]
    assert one.outputs["project"].startswith("ci-") and "-one-1-" in one.outputs["project"]
    assert one.outputs["port"] != two.outputs["port"]
    # each waited for the other's stack inside its own run: they overlapped
    assert one.started < two.ended and two.started < one.ended


def test_a_job_whose_tests_fail_still_has_its_stack_removed(services_run):
    run, _, left = services_run
    job = run.job("fails")
    assert job.result == "failure"
    assert "PONG" in job.text and "2 tests failed" in job.text
    project = job.outputs["project"]
    assert project and f"test-services: {project}: removed 2 container(s), 1 network(s)" in job.text
    assert not [name for name in left if name.startswith(project)]


def test_stop_removes_the_stack_and_the_post_step_finds_nothing(services_run):
    run, _, _ = services_run
    job = run.job("stopped")
    assert job.result == "success", job.text[-4000:]
    project = job.outputs["project"]
    assert f"test-services: {project}: removed 1 container(s), 1 network(s)" in job.text
    assert f"test-services: {project}: nothing left to remove" in job.text  # the post step, after stop


def test_nothing_is_left_and_every_lease_is_released(services_run):
    run, state, left = services_run
    assert left == []
    root = state / "test-services" / "leases"
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == [".lock"]
    assert run.undeclared_outputs == []
