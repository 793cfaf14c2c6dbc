"""Per-service health checks from the action's lines: bare values for all, `service: value` to differ."""

from __future__ import annotations

import pytest

from hotswap_deploy.checks import health_checks
from hotswap_deploy.plan import PlanError

URLS = ["backend: http://localhost/api/health", "frontend: http://127.0.0.1:8080/"]


def test_defaults_then_a_bare_value_then_a_per_service_override():
    checks = health_checks(URLS, matches=["backend: {sha}"], timeouts=["30", "backend: 90"],
                           intervals=["0.25"], statuses=["frontend: 204"])
    backend, frontend = checks["backend"], checks["frontend"]
    assert (backend.timeout, frontend.timeout) == (90, 30)
    assert backend.interval == frontend.interval == 0.25
    assert (backend.expect_status, frontend.expect_status) == (200, 204)
    assert (backend.body_match, frontend.body_match) == ("{sha}", "")
    assert health_checks(URLS)["backend"].timeout == 60


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"timeouts": ["soon"]}, "health-timeout: 'soon' is not a number of at least 0.1"),
    ({"timeouts": ["worker: 5"]}, "health-timeout: worker has no health-url"),
    ({"intervals": ["backend: 0"]}, "health-interval for backend: '0' is not a number of at least 0.05"),
    ({"statuses": ["42"]}, "health-status: '42' is not a number of at least 100"),
    ({"matches": ["just text"]}, "health-match: entry 1 is not `service: value`"),
])
def test_bad_values_name_the_input(kwargs, message):
    with pytest.raises(PlanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        health_checks(URLS, **kwargs)


def test_a_health_url_off_localhost_is_refused():
    with pytest.raises(PlanError, match="health-url for backend"):
        health_checks(["backend: http://example.com/health"])
