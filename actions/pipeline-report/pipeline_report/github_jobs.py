"""The run attempt's jobs and steps from the GitHub API, through PyGithub: the attempt-aware endpoint
`GET /repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt}/jobs`, so a re-run's report shows
its own jobs, not the first attempt's. Jobs not completed yet (the report's own) are left out."""

from __future__ import annotations

from datetime import datetime

from github import Auth, Github, GithubException
from github.PaginatedList import PaginatedList
from github.WorkflowJob import WorkflowJob
from requests.exceptions import RequestException

from pipeline_report.timeline import ApiJob, ApiStep

API_ERRORS = (GithubException, RequestException)


def _time(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def fetch(token: str, api_url: str, repository: str, run_id: int, attempt: int) -> list[ApiJob]:
    """Every completed job of the attempt, with its steps; API_ERRORS when the API says no."""
    gh = Github(auth=Auth.Token(token), base_url=api_url, lazy=True, retry=None, timeout=30, per_page=100)
    run = gh.get_repo(repository).get_workflow_run(run_id).get_attempt(attempt)  # lazy: no request yet
    pages = PaginatedList(WorkflowJob, run.requester, f"{run.url}/jobs", None, list_item="jobs")
    jobs = []
    for job in pages:
        if job.status != "completed":
            continue
        steps = tuple(ApiStep(s.name, _time(s.started_at), _time(s.completed_at), s.conclusion or "")
                      for s in job.steps)
        jobs.append(ApiJob(job.name, _time(job.started_at), _time(job.completed_at), job.conclusion or "",
                           steps))
    return jobs
