"""pipeline-report's GitHub API path: PyGithub really asks a loopback server for the attempt's jobs, and
the server answers with tests/fixtures/github/list_jobs_for_workflow_run_attempt.json, hand-made from
GitHub's documented schema (the API cannot be reached from here). What is checked: the request (path,
token, paging) and the timing records landing inside the API's steps."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import pytest

from pipeline_report import github_jobs, history
from pipeline_report.report import RunInfo
from pipeline_report.run_report import make
from tests.support.api_fixture import FIXTURES, ApiFixture
from tests.unit.test_pipeline_report import _step_env, write

FIXTURE = FIXTURES / "list_jobs_for_workflow_run_attempt.json"
JOBS_PATH = "/repos/octo-org/shop/actions/runs/9000000042/attempts/2/jobs"


class JobsServer(ApiFixture):
    """The attempt's jobs from the fixture; any other path is 404; `status` other than 200 refuses."""

    def __init__(self) -> None:
        self.status = 200
        super().__init__(self._answer)

    def _answer(self, method: str, path: str, body: dict) -> tuple[int, str]:
        if self.status != 200:
            return self.status, '{"message": "Bad credentials"}'
        if method != "GET" or path.partition("?")[0] != JOBS_PATH:
            return 404, '{"message": "Not Found"}'
        return 200, self.fixture(FIXTURE.name)


@pytest.fixture
def api() -> Iterator[JobsServer]:
    server = JobsServer()
    yield server
    server.stop()


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_pygithub_reads_the_attempts_completed_jobs_with_their_steps(api):
    jobs = github_jobs.fetch("ghs_fixture", api.base, "octo-org/shop", 9000000042, 2)
    [(_, path, headers, _)] = api.requests
    assert path.partition("?")[0] == JOBS_PATH and "per_page=100" in path
    assert headers["Authorization"] == "token ghs_fixture"
    assert [j.name for j in jobs] == ["prepare", "security", "unit", "e2e", "build", "deploy"]  # not `report`
    unit = jobs[2]
    assert unit.conclusion == "success" and unit.start == _at("2024-05-01T10:00:22Z")
    assert [s.name for s in unit.steps][:3] == ["Set up job",
                                                "Run octo-org/ci-actions/actions/restore-workspace@v1",
                                                "Run octo-org/ci-actions/actions/test-services@v1"]


def test_a_refusal_is_one_of_the_api_errors(api):
    api.status = 401
    with pytest.raises(github_jobs.API_ERRORS):
        github_jobs.fetch("bad", api.base, "octo-org/shop", 9000000042, 2)


def test_records_land_inside_the_api_steps_they_ran_in(api, tmp_path):
    doc = json.loads(FIXTURE.read_text())
    step = {(j["name"], s["name"]): (_at(s["started_at"]), _at(s["completed_at"]))
            for j in doc["jobs"] for s in j["steps"] if s["completed_at"]}
    start, end = step[("unit", "Run octo-org/ci-actions/actions/test-services@v1")]
    deploy_start, _ = step[("deploy", "Run octo-org/ci-actions/actions/hotswap-deploy@v1")]
    records = [
        {"v": 1, "job": "unit", "action": "test-services", "phase": "services up", "start": start + 0.3,
         "end": end - 2.1, "outcome": "success"},
        {"v": 1, "job": "unit", "action": "test-services", "phase": "health wait", "start": end - 2.1,
         "end": end + 0.4, "outcome": "success"},  # past the step's whole-second end
        {"v": 1, "job": "deploy", "action": "hotswap-deploy", "phase": "migrate", "start": deploy_start + 1,
         "end": deploy_start + 4, "outcome": "success"},
        {"v": 1, "job": "gone", "action": "x", "phase": "p", "start": 1.0, "end": 2.0, "outcome": "success"},
    ]
    jobs = github_jobs.fetch("ghs_fixture", api.base, "octo-org/shop", 9000000042, 2)
    made = make(write(tmp_path / "9000000042-2", records), RunInfo("octo-org/shop", "9000000042", 2),
                title="Run", conclusion="auto", api_jobs=jobs)
    by_name = {j.name: j for j in made.timeline.jobs}
    services = next(s for s in by_name["unit"].steps if s.name.endswith("test-services@v1"))
    assert [p.name for p in services.phases] == ["services up", "health wait"]
    hotswap = next(s for s in by_name["deploy"].steps if "hotswap" in s.name)
    assert [p.name for p in hotswap.phases] == ["migrate"]
    report = made.report
    assert "gone" not in by_name and report["warnings"] == [
        "1 timing record(s) belong to no completed job of the API's list (a job still running?); left out"]
    assert report["conclusion"] == "success" and report["sources"] == {"records": 4, "api_jobs": 6}
    assert report["critical_path"] == ["prepare", "e2e", "build", "deploy"]
    assert report["wall_seconds"] == 150.0


def test_the_step_with_a_token_reads_the_api_and_records_a_green_run(api, tmp_path):
    env = _step_env(tmp_path, token="ghs_fixture")
    env.update(GITHUB_API_URL=api.base, GITHUB_RUN_ID="9000000042", GITHUB_RUN_ATTEMPT="2")
    done = subprocess.run([sys.executable, "-m", "pipeline_report"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "::add-mask::ghs_fixture" in done.stdout and "::notice::" not in done.stdout
    folder = tmp_path / "state" / "runs" / "octo-org+shop" / "9000000042-2"
    report = json.loads((folder / "report.json").read_text())
    assert report["conclusion"] == "success" and len(report["jobs"]) == 6
    assert "section deploy" in (tmp_path / "summary.md").read_text()
    [green] = history.read(history.path(tmp_path / "state", "octo-org/shop")).runs
    assert green["run_id"] == "9000000042" and green["jobs"]["build"]["seconds"] == 37.0
