"""hotswap-deploy's inputs, declared once (the step, the CLI and action.yml's check read this table),
and the Settings and DeployRequest they make, for the step and `ci-actions deploy run` alike."""

from __future__ import annotations

from pathlib import Path

from ci_actions import declared, ledger, runner
from ci_actions.compose import Compose
from ci_actions.declared import Input, Values
from hotswap_deploy import envfile, guard
from hotswap_deploy.checks import health_checks, number_line, service_line
from hotswap_deploy.deploy import DeployRequest
from hotswap_deploy.plan import STRATEGIES
from hotswap_deploy.rollback import rollback_request
from hotswap_deploy.settings import DEFAULT_KEEP, NginxSettings, Settings


def strategy(text: str) -> str:
    if text and text not in STRATEGIES:
        raise ValueError(f"is {text!r}; use one of: {', '.join(STRATEGIES)} (empty: blue-green with a proxy, "
                         "recreate with proxy none)")
    return text


def images(text: str) -> dict[str, str]:
    value = declared.json_object(text)
    if not all(isinstance(ref, str) and ref for ref in value.values()):
        raise ValueError('must map each service to an image, such as {"web": "app:sha"}')
    return value


INPUTS = declared.table(
    Input("compose-files", "Compose files, one per line, relative to the workspace.",
          default="docker-compose.yml", many=True, flag="compose-file", parse=Path),
    Input("project-name", "The compose project name. Empty means compose's own choice."),
    Input("services", "Services to deploy, one per line, in order (e.g. backend, then frontend).",
          required=True, many=True, flag="service"),
    Input("images", "build-images' `images` output: JSON {service: image}. Empty means `<repository>:<sha>`.",
          parse=images),
    Input("sha", "The commit to deploy; with `images`, empty means the images' revision label."),
    Input("strategy", "blue-green (the default with a proxy) or recreate (the default with proxy none; has "
          "downtime).", parse=strategy),
    Input("proxy", "nginx (on the host) or none.", default="nginx", choices=("nginx", "none")),
    Input("nginx-config", "The host nginx's main config (checked with `nginx -t -c`).",
          default="/etc/nginx/nginx.conf", parse=Path),
    Input("upstream-dir", "Where the action writes one upstream file per service (docs/nginx-setup.md).",
          default="/etc/nginx/ci-actions", parse=Path),
    Input("nginx-prefix", "nginx's `-p` prefix, for a private nginx (its relative paths, `pid` included, "
          "resolve there).", parse=declared.path()),
    Input("nginx-pid", "The nginx master's pid file, when its config's `pid` directive does not say where it "
          "is.", parse=declared.path()),
    Input("setup", "First make nginx ready (`ci-actions deploy setup`): a 503 placeholder, missing upstream "
          "files, a site with the `routes`; checks that nginx includes them. Safe to repeat.",
          default="false", parse=declared.boolean, cli=False),
    Input("routes", "With setup: `service: /path/` lines for the site (e.g. `backend: /api/`, `frontend: "
          "/`).", many=True, flag="route", parse=service_line),
    Input("listen", "With setup, the site's `listen` (a port, or address:port).", default="80"),
    Input("migrate-command", "Run once in a one-off container of the first service's new image, before any "
          "switch.", parse=declared.argv),
    Input("health-url", "`service: url` lines, on localhost; the port is replaced by the new container's "
          "published port.", required=True, many=True, parse=service_line),
    Input("health-match", "`service: text` lines the health body must contain; `{sha}` is the commit being "
          "deployed.", many=True, parse=service_line),
    Input("health-status", "The status a healthy service answers: one value, and/or `service: value` lines.",
          default="200", many=True, parse=number_line("health-status")),
    Input("health-timeout", "Seconds a new container has to become healthy: one value, and/or `service: "
          "value` lines.", default="60", many=True, parse=number_line("health-timeout")),
    Input("health-interval", "Seconds between health probes: one value, and/or `service: value` lines.",
          default="1", many=True, parse=number_line("health-interval")),
    Input("watch-seconds", "Seconds the new containers are watched after the switch, with the old ones kept "
          "as backup.", default="30", parse=declared.number(0)),
    Input("env-file", "KEY=VALUE lines (usually from secrets), kept 0600 in the state folder (never the "
          "workspace) and passed to compose with --env-file, values masked.", cli=False),
    Input("rollback-to", "Instead of deploying, go back to a retained release (a sha, or `previous`).",
          flag="to"),
    Input("allowed-refs", "Refs allowed to deploy, one pattern per line, as GitHub's branch filters (`*` "
          "within a segment, `**` across, `!` excludes, the last match decides; without `refs/` a pattern "
          "names a branch). Empty means the default branch.", many=True, cli=False),
    Input("allow-untrusted-events", "Allow deploys from events that untrusted code or input can start "
          "(pull requests, comments, reviews, a workflow_run after a pull request or from a fork, and any "
          "event but push, workflow_dispatch, schedule, merge_group, repository_dispatch, release and "
          "deployment).", default="false", parse=declared.boolean, cli=False),
    Input("github-token", "When given, a GitHub Deployment and its statuses are created.", cli=False),
    Input("environment", "The GitHub Deployment environment.", default="production", cli=False),
    Input("keep", "Releases kept as rollback targets (their images are never pruned).",
          default=str(DEFAULT_KEEP), parse=declared.number(1, whole=True)),
    Input("lock-timeout", "Seconds a deploy waits for another deploy of the same project.", default="600",
          parse=declared.number(0)),
    Input("state-dir", "Where the release ledger lives (shared with build-images). Empty means "
          "~/.local/state/ci-actions.", parse=declared.path(ledger.default_state_dir)),
)
COMPOSE = ("compose-files", "project-name", "services")
NGINX = ("nginx-config", "upstream-dir", "nginx-prefix", "nginx-pid")
HEALTH = ("health-url", "health-match", "health-status", "health-timeout", "health-interval")
RUN = (*COMPOSE, "images", "sha", "strategy", "proxy", *NGINX, "migrate-command", *HEALTH, "watch-seconds",
       "keep", "lock-timeout", "state-dir")
SETUP = (*COMPOSE, "routes", "listen", *NGINX)
ROLLBACK = ("rollback-to", "lock-timeout", "state-dir")
GUARD = ("allowed-refs", "allow-untrusted-events")


def check_guard() -> None:
    """Before anything else: untrusted events and refs never reach the production machine."""
    context = runner.run_context()
    values = runner.read_inputs(INPUTS, GUARD)
    allowed, allow_untrusted = values["allowed-refs"], values["allow-untrusted-events"]
    guard.check_event(context, allow_untrusted_events=allow_untrusted)
    if not allowed:
        if not context.default_branch:
            raise guard.GuardError("allowed-refs is empty and the event does not say which branch is the "
                                   "default: set allowed-refs (e.g. refs/heads/main) to say who may deploy")
        allowed = [f"refs/heads/{context.default_branch}"]
    guard.check(context, allowed_refs=allowed, allow_untrusted_events=allow_untrusted)


def compose(values: Values, workspace: Path) -> Compose:
    return Compose(tuple((workspace / f).resolve() for f in values["compose-files"]), values["project-name"])


def nginx(values: Values, workspace: Path, binary: str = "nginx") -> NginxSettings:
    """The host nginx the inputs name; relative paths are the workspace's (the CLI's: the current folder)."""
    config, upstream_dir, prefix, pid = ((workspace / values[name]).resolve() if values[name] else None
                                         for name in NGINX)
    return NginxSettings(config, upstream_dir, binary, prefix, pid)


def deploy_settings(values: Values, workspace: Path, binary: str = "nginx") -> Settings:
    """An empty strategy is blue-green behind a proxy and recreate with proxy none."""
    proxy = nginx(values, workspace, binary) if values["proxy"] == "nginx" else None
    return Settings(
        compose=compose(values, workspace), services=values["services"],
        health=health_checks(values["health-url"], matches=values["health-match"],
                             statuses=values["health-status"], timeouts=values["health-timeout"],
                             intervals=values["health-interval"]),
        state_dir=values["state-dir"], strategy=values["strategy"] or ("blue-green" if proxy else "recreate"),
        nginx=proxy, migrate=tuple(values["migrate-command"]), watch_seconds=values["watch-seconds"],
        keep=values["keep"])


def request(values: Values, workspace: Path, *, run: str, actor: str = "",
            binary: str = "nginx") -> DeployRequest:
    """The deploy the values ask for, or with `rollback-to` the rollback; `env-file` is its text (empty:
    the env file the last deploy installed stays)."""
    saved = deploy_settings(values, workspace, binary)
    lock_timeout = values["lock-timeout"]
    if values.get("rollback-to"):
        project = saved.compose.project or saved.compose.config()["name"]
        return rollback_request(saved, project, values["rollback-to"], lock_timeout=lock_timeout, run=run,
                                actor=actor)
    text = values.get("env-file", "")
    return DeployRequest(settings=saved, images=values["images"], sha=values["sha"],
                         env_values=envfile.parse(text) if text else None, run=run, actor=actor,
                         lock_timeout=lock_timeout)
