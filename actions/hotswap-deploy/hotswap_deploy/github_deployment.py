"""Optional GitHub Deployment and statuses for a deploy (PyGithub), when a token is given.

GitHub is told, not asked: an API failure is a warning for the caller, never a failed deploy, since
production has already moved (or stayed) by the time a status is posted.
"""

from __future__ import annotations

from github import Auth, Github, GithubException
from github.Deployment import Deployment
from requests import RequestException

API_ERRORS = (GithubException, RequestException)


class GitHubDeployment:
    """One Deployment of `sha` to `environment`, with an in_progress status now and a final one later."""

    def __init__(self, token: str, repository: str, api_url: str) -> None:
        self._github = Github(auth=Auth.Token(token), base_url=api_url, retry=None, lazy=True,
                              seconds_between_requests=None, seconds_between_writes=None)
        self._repository = repository
        self._deployment: Deployment | None = None

    def start(self, sha: str, environment: str, description: str, log_url: str) -> None:
        repo = self._github.get_repo(self._repository)
        self._deployment = repo.create_deployment(
            ref=sha, environment=environment, description=description[:140], auto_merge=False,
            required_contexts=[], production_environment=environment == "production")
        self._deployment.create_status("in_progress", target_url=log_url, description=description[:140])

    def finish(self, ok: bool, description: str, log_url: str) -> None:
        if self._deployment is not None:
            self._deployment.create_status("success" if ok else "failure", target_url=log_url,
                                           description=description[:140], auto_inactive=ok)
