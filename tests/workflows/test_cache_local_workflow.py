"""cache-local through the consumer's view under act: miss then save, hits, lookup-only, failures."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflows.act_runner import make_consumer_repo, run_workflow

pytestmark = pytest.mark.workflow
WORKFLOW = Path(__file__).with_name("cache-local.yml")


@pytest.fixture(scope="module")
def cache_run(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    repo = make_consumer_repo(tmp_path_factory.mktemp("consumer"), WORKFLOW)
    run = run_workflow(repo, repo / ".github" / "workflows" / WORKFLOW.name, env={"CACHE_DIR": str(store)})
    return run, store


def keys_in(store: Path) -> set[str]:
    listing = subprocess.run([sys.executable, "-m", "ci_actions", "cache", "list", "--cache-dir", str(store)],
                             capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in listing.splitlines()[1:]}


@pytest.mark.parametrize("job", ["first", "exact", "partial", "lookup-only", "split"])
def test_scenario_passes(cache_run, job):
    run, _ = cache_run
    assert run.job(job).result == "success", run.job(job).text


def test_first_run_saves_in_post(cache_run):
    run, _ = cache_run
    assert "Cache saved with key: deps-A" in run.job("first").text
    assert "Cache hit occurred on the primary key deps-A, not saving cache." in run.job("exact").text
    assert "Cache saved with key: deps-B" in run.job("partial").text


def test_fail_on_cache_miss_fails_the_job(cache_run):
    run, _ = cache_run
    job = run.job("must-hit")
    assert job.result == "failure"
    assert "Failed to restore cache entry. Exiting as fail-on-cache-miss is set. Input key: never-saved" \
        in job.text


def test_a_failed_job_saves_only_when_asked(cache_run):
    run, store = cache_run
    assert run.job("failed-job").result == "failure"
    assert run.job("failed-job-saves").result == "failure"
    assert keys_in(store) == {"deps-A", "deps-B", "failed-opted-in", "split-A"}


def test_outputs_are_machine_readable(cache_run):
    run, _ = cache_run
    outputs = run.job("split").step_outputs
    assert outputs["save"]["saved"] == "true" and int(outputs["save"]["saved-files"]) == 1
    assert json.loads(outputs["restore"]["restored-bytes"]) == len("split\n")


def test_no_step_sets_an_undeclared_output(cache_run):
    run, _ = cache_run
    assert run.undeclared_outputs == []
