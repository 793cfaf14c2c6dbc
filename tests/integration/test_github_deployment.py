"""The optional GitHub Deployment, against a recorded-response fixture server on 127.0.0.1.

The GitHub API cannot be reached from here, so a loopback server replays GitHub's documented example
responses (tests/fixtures/github) and records what PyGithub sent: the requests are what is checked.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hotswap_deploy.github_deployment import API_ERRORS, GitHubDeployment
from tests.support.api_fixture import ApiFixture

SHA = "a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d"
LOG = "https://github.com/octo-org/shop/actions/runs/42"


class FixtureServer(ApiFixture):
    """POST /repos/<r>/deployments and .../statuses answer from the fixtures; `fail` answers 500."""

    def __init__(self) -> None:
        self.fail = False
        super().__init__(self._answer)

    def _answer(self, method: str, path: str, body: dict) -> tuple[int, str]:
        if self.fail:
            return 500, '{"message": "Server Error"}'
        name = "create_deployment_status" if path.endswith("/statuses") else "create_deployment"
        return 201, self.fixture(f"{name}.json")


@pytest.fixture
def github() -> Iterator[FixtureServer]:
    server = FixtureServer()
    yield server
    server.stop()


def test_a_deploy_creates_a_deployment_then_in_progress_then_success(github):
    deployment = GitHubDeployment("ghs_fixture_token", "octo-org/shop", github.base)
    deployment.start(SHA, "production", "hotswap-deploy of a84d88e7554f", LOG)
    deployment.finish(True, "a84d88e7554f is live", LOG)
    paths = [(method, path) for method, path, _, _ in github.requests]
    assert paths == [("POST", "/repos/octo-org/shop/deployments"),
                     ("POST", "/repos/octo-org/shop/deployments/1/statuses"),
                     ("POST", "/repos/octo-org/shop/deployments/1/statuses")]
    _, _, headers, created = github.requests[0]
    assert headers["Authorization"] == "token ghs_fixture_token"
    assert created == {"ref": SHA, "environment": "production",
                       "description": "hotswap-deploy of a84d88e7554f", "auto_merge": False,
                       "required_contexts": [], "production_environment": True}
    assert github.requests[1][3] == {"state": "in_progress", "target_url": LOG,
                                     "description": "hotswap-deploy of a84d88e7554f"}
    assert github.requests[2][3] == {"state": "success", "target_url": LOG,
                                     "description": "a84d88e7554f is live", "auto_inactive": True}


def test_a_failed_deploy_posts_failure_and_keeps_older_deployments_active(github):
    deployment = GitHubDeployment("t", "octo-org/shop", github.base)
    deployment.start(SHA, "staging", "d", LOG)
    deployment.finish(False, "rolled back: backend unhealthy", LOG)
    assert github.requests[0][3]["production_environment"] is False
    assert github.requests[-1][3] == {"state": "failure", "target_url": LOG,
                                      "description": "rolled back: backend unhealthy", "auto_inactive": False}


def test_an_api_error_is_raised_as_an_api_error_for_the_caller_to_warn_about(github):
    github.fail = True
    deployment = GitHubDeployment("t", "octo-org/shop", github.base)
    with pytest.raises(API_ERRORS):
        deployment.start(SHA, "production", "d", LOG)
    deployment.finish(True, "never posted", LOG)  # no deployment was created: nothing to post
    assert len(github.requests) == 1
