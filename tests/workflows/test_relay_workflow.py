"""The harness proof: a real workflow under act runs our launcher and runner protocol end to end."""

from pathlib import Path

import pytest

from tests.workflows.act_runner import JobRun, make_consumer_repo, run_workflow, undeclared_outputs

pytestmark = pytest.mark.workflow
WORKFLOW = Path(__file__).with_name("relay.yml")


@pytest.fixture(scope="module")
def relay_run(tmp_path_factory):
    repo = make_consumer_repo(tmp_path_factory.mktemp("consumer"), WORKFLOW)
    return run_workflow(repo, repo / ".github" / "workflows" / WORKFLOW.name)


def test_output_passes_between_jobs_through_needs(relay_run):
    first = relay_run.job("first")
    assert first.result == "success", first.text
    assert first.outputs == {"relayed": "HELLO WORLD"}
    second = relay_run.job("second")
    assert second.result == "success", second.text
    assert second.step_outputs["relay"]["message"] == "HELLO WORLD again"


def test_invalid_boolean_names_value_and_spellings(relay_run):
    job = relay_run.job("bad-boolean")
    assert job.result == "failure"
    assert "Input 'shout' is not a boolean: 'yes'; use one of: true | True | TRUE" in job.text


def test_missing_required_input_is_one_error_line(relay_run):
    job = relay_run.job("missing-input")
    assert job.result == "failure"
    assert job.text.count("Input required and not supplied: message") == 1
    assert relay_run.returncode != 0


def test_no_step_sets_an_undeclared_output(relay_run):
    assert relay_run.undeclared_outputs == []


def test_undeclared_output_check_catches_an_extra_output():
    jobs = {"first": JobRun(step_outputs={"relay": {"message": "x", "secret-extra": "y"}})}
    assert undeclared_outputs(WORKFLOW, jobs) == [
        "first/relay: org/ci-actions/tests/workflows/actions/relay@v1 set undeclared output 'secret-extra'"]
