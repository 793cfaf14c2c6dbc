"""build-images' inputs, read through the runner protocol into a BuildRequest."""

from __future__ import annotations

from pathlib import Path

from build_images.build import BuildRequest
from build_images.plan import parse_key_values, parse_smoke
from build_images.tags import TagRules, check_sha
from ci_actions import ledger, runner
from ci_actions.compose import Compose

PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


def commit() -> str:
    """The `sha` input, else the run's commit; on pull_request events the PR head only when opted in
    (`github.sha` there is the merge commit, which no branch ever deploys)."""
    explicit = runner.get_input("sha")
    if explicit:
        return explicit
    context = runner.run_context()
    if context.event_name in PULL_REQUEST_EVENTS and runner.get_boolean_input("use-pr-head"):
        head = runner.event_payload().get("pull_request", {}).get("head", {}).get("sha", "")
        if head:
            return head
    if not context.sha:
        raise runner.InputError("Input 'sha' is empty and GITHUB_SHA is not set")
    return context.sha


def on_default_branch() -> bool:
    default = runner.event_payload().get("repository", {}).get("default_branch", "")
    return bool(default) and runner.run_context().ref == f"refs/heads/{default}"


def request() -> BuildRequest:
    context = runner.run_context()
    files = runner.get_multiline_input("compose-files") or ["docker-compose.yml"]
    rules = TagRules(check_sha(commit()), latest=on_default_branch(),
                     run_id=context.run_id if context.run_id != "local" else "",
                     extra=tuple(runner.get_multiline_input("extra-tags")))
    return BuildRequest(
        compose=Compose(tuple((runner.workspace() / f).resolve() for f in files),
                        runner.get_input("project-name")),
        rules=rules,
        services=runner.get_multiline_input("services"),
        smoke=parse_smoke(runner.get_multiline_input("smoke-command")),
        build_args=parse_key_values(runner.get_multiline_input("build-args"), name="build-args"),
        no_cache=runner.get_boolean_input("no-cache"),
        source=context.repository_url)


def keep() -> int:
    return int(runner.get_number_input("keep", default=5, minimum=1, whole=True))


def state_dir() -> Path:
    value = runner.get_input("state-dir")
    return Path(value).expanduser() if value else ledger.default_state_dir()
