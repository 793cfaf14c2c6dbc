"""hotswap-deploy's action inputs: the guard reads the run, and fails closed when it cannot tell; the step
and the CLI build the same settings from one table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_actions import cli, declared
from hotswap_deploy import inputs
from hotswap_deploy.guard import GuardError
from hotswap_deploy.settings import NginxSettings


@pytest.fixture
def run_env(monkeypatch, tmp_path):
    def set_run(event: str, ref: str, payload: dict, **inputs_: str) -> None:
        event_file = tmp_path / "event.json"
        event_file.write_text(json.dumps(payload))
        monkeypatch.setenv("GITHUB_EVENT_NAME", event)
        monkeypatch.setenv("GITHUB_REF", ref)
        monkeypatch.setenv("GITHUB_EVENT_PATH", str(event_file))
        for name, value in inputs_.items():
            monkeypatch.setenv(f"INPUT_{name.upper()}", value)
    return set_run


def test_the_default_branch_may_deploy_by_default(run_env):
    run_env("push", "refs/heads/main", {"repository": {"default_branch": "main"}})
    inputs.check_guard()


def test_another_branch_is_refused_by_default(run_env):
    run_env("push", "refs/heads/feature", {"repository": {"default_branch": "main"}})
    with pytest.raises(GuardError, match="refusing to deploy from refs/heads/feature: allowed-refs is "
                                         "refs/heads/main"):
        inputs.check_guard()


def test_no_default_branch_and_no_allowed_refs_fails_closed(run_env):
    run_env("push", "refs/heads/main", {})
    with pytest.raises(GuardError, match="set allowed-refs"):
        inputs.check_guard()


def test_pull_request_needs_the_opt_in(run_env):
    run_env("pull_request", "refs/pull/7/merge", {}, allowed_refs="refs/**")
    with pytest.raises(GuardError, match="allow-untrusted-events"):
        inputs.check_guard()
    run_env("pull_request", "refs/pull/7/merge", {}, allowed_refs="refs/**", allow_untrusted_events="true")
    inputs.check_guard()


def test_a_comment_on_the_default_branch_is_refused(run_env):
    run_env("issue_comment", "refs/heads/main", {"repository": {"default_branch": "main"}})
    with pytest.raises(GuardError, match="refusing to deploy from a issue_comment event: anyone who can "
                                         "comment starts it"):
        inputs.check_guard()


def test_a_workflow_run_is_judged_by_the_run_that_triggered_it(run_env):
    repo = {"default_branch": "main", "full_name": "org/app"}
    fork = {"event": "pull_request", "head_repository": {"full_name": "mallory/app"}}
    run_env("workflow_run", "refs/heads/main", {"repository": repo, "workflow_run": fork})
    with pytest.raises(GuardError, match="the run that triggered it was a pull_request event"):
        inputs.check_guard()
    ours = {"event": "push", "head_repository": {"full_name": "org/app"}}
    run_env("workflow_run", "refs/heads/main", {"repository": repo, "workflow_run": ours})
    inputs.check_guard()


def test_an_untrusted_event_is_refused_before_the_default_branch_is_asked_for(run_env):
    run_env("pull_request_target", "refs/heads/main", {})
    with pytest.raises(GuardError, match="pull_request_target event"):
        inputs.check_guard()


@pytest.mark.parametrize(("proxy", "strategy", "nginx"), [
    ("none", "recreate", None),
    ("nginx", "blue-green", NginxSettings(Path("/etc/nginx/nginx.conf"), Path("/etc/nginx/ci-actions"))),
])
def test_the_step_and_the_cli_build_the_same_settings(tmp_path, proxy, strategy, nginx):
    """One table, one builder: the same defaults (watch 30 s, keep 3) and the same strategy rule."""
    given = {"services": "web", "health-url": "web: http://localhost/", "proxy": proxy,
             "state-dir": str(tmp_path)}
    step = declared.read(inputs.INPUTS, lambda name: given.get(name, ""))
    argv = [arg for name, value in given.items() for arg in (inputs.INPUTS[name].option, value)]
    flags = declared.from_args(cli.build_parser("deploy").parse_args(["deploy", "run", *argv]))
    built = inputs.deploy_settings(step, tmp_path)
    assert built == inputs.deploy_settings(flags, tmp_path)
    assert (built.strategy, built.nginx, built.watch_seconds, built.keep) == (strategy, nginx, 30, 3)
    assert built.compose.files == ((tmp_path / "docker-compose.yml").resolve(),)
