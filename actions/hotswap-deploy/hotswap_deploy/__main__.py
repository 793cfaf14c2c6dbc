"""hotswap-deploy as a GitHub step: guard, deploy (or roll back), outputs, summary, GitHub Deployment."""

import dataclasses
import json

from ci_actions import engine, runner
from ci_actions.declared import Values
from hotswap_deploy import inputs, setup
from hotswap_deploy.cli import FAILURES
from hotswap_deploy.deploy import DeployError, DeployReport, DeployRequest, deploy, resolve_sha
from hotswap_deploy.github_deployment import API_ERRORS, GitHubDeployment
from hotswap_deploy.guard import GuardError
from hotswap_deploy.settings import Settings


def summary(report: DeployReport) -> str:
    release, timings = report.release, report.timings
    rows = []
    for target in report.plan.targets:
        service = target.service
        healthy, switched = timings.get(f"{service}.healthy_after"), timings.get(f"{service}.switched_after")
        rows.append(f"| {service} | `{target.image}` | {healthy if healthy is not None else '-'}s "
                    f"| {switched if switched is not None else '-'}s |")
    lines = [f"### hotswap-deploy: {release.kind} of `{release.sha[:12]}` is live", "",
             "| service | image | start → healthy | start → switched |", "|---|---|---|---|", *rows, "",
             f"Strategy {report.plan.strategy}; total {timings.get('total', 0)}s; release `{release.id}`."]
    if report.downtime:
        downtime = ", ".join(f"{s} {d:.2f}s" for s, d in report.downtime.items())
        lines.append(f"Measured downtime (recreate): {downtime}. For zero, put the service behind the proxy "
                     "and use strategy blue-green (docs/nginx-setup.md).")
    if report.recovered:
        lines.append(f"Recovered first: {report.recovered}.")
    return "\n".join([*lines, ""])


def request(values: Values, context: runner.RunContext) -> DeployRequest:
    """The inputs' request, with the run's id and actor; the token and every env-file value are masked
    before anything can print them."""
    runner.mask(values["github-token"])
    built = inputs.request(values, runner.workspace(), run=f"{context.run_id}/{context.attempt}",
                           actor=context.actor)
    for value in (built.env_values or {}).values():
        runner.mask(value)
    return built


def setup_nginx(values: Values, saved: Settings) -> list[str]:
    """With `setup: true`, make nginx ready first (nothing to do without a proxy)."""
    if not values["setup"] or saved.nginx is None:
        return []
    return setup.setup(saved.compose, saved.nginx, saved.services, values["routes"], values["listen"])


def github_deployment(values: Values, context: runner.RunContext,
                      sha: str) -> tuple[GitHubDeployment | None, str]:
    token, log_url = values["github-token"], context.run_url
    if not token:
        return None, log_url
    deployment = GitHubDeployment(token, context.repository, context.api_url)
    try:
        deployment.start(sha, values["environment"], f"hotswap-deploy of {sha[:12]}", log_url)
    except API_ERRORS as exc:
        runner.warning(f"GitHub Deployment not created ({exc}); deploying anyway")
        return None, log_url
    return deployment, log_url


def tell_github(deployment: GitHubDeployment | None, ok: bool, description: str, log_url: str) -> None:
    if deployment is None:
        return
    try:
        deployment.finish(ok, description, log_url)
    except API_ERRORS as exc:
        runner.warning(f"GitHub Deployment status not posted: {exc}")


def main() -> None:
    runner.start_timing("hotswap-deploy")
    runner.set_output("deployed", "false")
    runner.set_output("rolled-back", "false")
    try:
        inputs.check_guard()
        values = runner.read_inputs(inputs.INPUTS)
    except runner.InputError as exc:
        runner.fail(str(exc), status=2)
    except GuardError as exc:
        runner.fail(str(exc))
    context = runner.run_context()
    try:
        asked = request(values, context)
        asked = dataclasses.replace(asked, sha=resolve_sha(engine.connect(), asked))
        for line in setup_nginx(values, asked.settings):
            runner.info(f"setup: {line}")
    except FAILURES as exc:
        runner.fail(str(exc))
    deployment, log_url = github_deployment(values, context, asked.sha)
    try:
        with runner.group(f"hotswap-deploy ({asked.kind})"):
            report = deploy(asked)
    except FAILURES as exc:
        tell_github(deployment, False, str(exc).splitlines()[0], log_url)
        if isinstance(exc, DeployError) and exc.rolled_back:
            runner.set_output("rolled-back", "true")
        runner.append_summary(f"### hotswap-deploy failed\n\n```\n{exc}\n```\n")
        runner.fail(str(exc))
    for warning in report.warnings:
        runner.warning(warning)
    release = report.release
    tell_github(deployment, True, f"{release.sha[:12]} is live", log_url)
    runner.set_output("deployed", "true")
    runner.set_output("release", release.id)
    runner.set_output("sha", release.sha)
    runner.set_output("images", json.dumps({s: i.ref for s, i in release.images.items()}))
    runner.set_output("timings", json.dumps(report.timings))
    runner.append_summary(summary(report))


main()
