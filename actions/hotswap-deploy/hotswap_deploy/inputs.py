"""hotswap-deploy's inputs, read through the runner protocol into settings and a request."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from ci_actions import ledger, runner
from ci_actions.compose import Compose
from hotswap_deploy import envfile, guard, settings, setup
from hotswap_deploy.checks import health_checks
from hotswap_deploy.deploy import DeployRequest
from hotswap_deploy.plan import STRATEGIES
from hotswap_deploy.rollback import rollback_request


def check_guard() -> None:
    """Before anything else: untrusted events and refs never reach the production machine."""
    context = runner.run_context()
    allowed = runner.get_multiline_input("allowed-refs")
    allow_untrusted = runner.get_boolean_input("allow-untrusted-events")
    guard.check_event(context, allow_untrusted_events=allow_untrusted)
    if not allowed:
        if not context.default_branch:
            raise guard.GuardError("allowed-refs is empty and the event does not say which branch is the "
                                   "default: set allowed-refs (e.g. refs/heads/main) to say who may deploy")
        allowed = [f"refs/heads/{context.default_branch}"]
    guard.check(context, allowed_refs=allowed, allow_untrusted_events=allow_untrusted)


def env_values() -> dict[str, str] | None:
    """The env-file input, every value masked before anything can print it."""
    text = runner.get_input("env-file")
    if not text:
        return None
    values = envfile.parse(text)
    for value in values.values():
        if value:
            runner.mask(value)
    return values


def state_dir() -> Path:
    value = runner.get_input("state-dir")
    return Path(value).expanduser() if value else ledger.default_state_dir()


def deploy_settings() -> settings.Settings:
    proxy = runner.get_choice_input("proxy", ("nginx", "none"), default="nginx")
    prefix, pid = runner.get_input("nginx-prefix"), runner.get_input("nginx-pid")
    nginx = settings.NginxSettings(Path(runner.get_input("nginx-config", default="/etc/nginx/nginx.conf")),
                                   Path(runner.get_input("upstream-dir", default="/etc/nginx/ci-actions")),
                                   prefix=Path(prefix) if prefix else None,
                                   pid_file=Path(pid) if pid else None)
    default_strategy = "blue-green" if proxy == "nginx" else "recreate"
    files = runner.get_multiline_input("compose-files") or ["docker-compose.yml"]
    health = health_checks(runner.get_multiline_input("health-url"),
                           matches=runner.get_multiline_input("health-match"),
                           statuses=runner.get_multiline_input("health-status"),
                           timeouts=runner.get_multiline_input("health-timeout"),
                           intervals=runner.get_multiline_input("health-interval"))
    return settings.Settings(
        compose=Compose(tuple((runner.workspace() / f).resolve() for f in files),
                        runner.get_input("project-name")),
        services=runner.get_multiline_input("services", required=True),
        health=health,
        state_dir=state_dir(),
        strategy=runner.get_choice_input("strategy", STRATEGIES, default=default_strategy),
        nginx=nginx if proxy == "nginx" else None,
        migrate=tuple(shlex.split(runner.get_input("migrate-command"))),
        watch_seconds=runner.get_number_input("watch-seconds", default=30),
        keep=int(runner.get_number_input("keep", default=settings.DEFAULT_KEEP, minimum=1, whole=True)))


def request() -> DeployRequest:
    context = runner.run_context()
    run = f"{context.run_id}/{context.attempt}"
    lock_timeout = runner.get_number_input("lock-timeout", default=600)
    rollback_to = runner.get_input("rollback-to")
    saved = deploy_settings()
    if rollback_to:
        project = saved.compose.project or saved.compose.config()["name"]
        return rollback_request(saved, project, rollback_to, lock_timeout=lock_timeout, run=run,
                                actor=context.actor)
    images_text = runner.get_input("images")
    try:
        images = json.loads(images_text) if images_text else {}
    except ValueError as exc:
        raise runner.InputError(f"Input 'images' is not JSON (build-images' `images` output): {exc}") from exc
    if not isinstance(images, dict):
        raise runner.InputError("Input 'images' must be a JSON object {service: image}")
    return DeployRequest(settings=saved, images=images, sha=runner.get_input("sha"), env_values=env_values(),
                         run=run, actor=context.actor, lock_timeout=lock_timeout)


def setup_nginx(saved: settings.Settings) -> list[str]:
    """With `setup: true`, make nginx ready first (nothing to do without a proxy)."""
    if not runner.get_boolean_input("setup") or saved.nginx is None:
        return []
    return setup.setup(saved.compose, saved.nginx, saved.services, runner.get_multiline_input("routes"),
                       runner.get_input("listen", default="80"))
