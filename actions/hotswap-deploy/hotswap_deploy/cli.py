"""`ci-actions deploy setup|run|rollback|status|history`: the action's work from the production host's shell.

`run` takes the same flags as the action's inputs; `rollback`, `status` and `history` need only the
project, since every deploy saves its settings and releases under the state folder.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from ci_actions import engine, ledger
from ci_actions.compose import Compose, ComposeError
from hotswap_deploy import envfile, settings, setup, status
from hotswap_deploy.checks import health_checks
from hotswap_deploy.deploy import DeployError, DeployReport, DeployRequest, deploy, plan_only
from hotswap_deploy.lock import LockTimeout
from hotswap_deploy.plan import STRATEGIES, PlanError
from hotswap_deploy.proxy import ProxyError
from hotswap_deploy.rollback import RollbackError, rollback_request

FAILURES = (DeployError, PlanError, ComposeError, ProxyError, LockTimeout, RollbackError, engine.EngineError,
            ledger.LedgerError, settings.SettingsError, envfile.EnvFileError, setup.SetupError)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("deploy", help="zero-downtime deploys, rollback and the release ledger")
    commands = parser.add_subparsers(dest="deploy_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--state-dir", type=Path, default=ledger.default_state_dir())
        sub.set_defaults(func=func)
        return sub

    run = command("run", "deploy images (or a sha) to the compose project", _run)
    run.add_argument("--compose-file", action="append", type=Path, required=True, dest="compose_files")
    run.add_argument("--project-name", default="")
    run.add_argument("--service", action="append", required=True, dest="services", help="in deploy order")
    run.add_argument("--images", default="", help="build-images' JSON output: {service: ref}")
    run.add_argument("--sha", default="")
    run.add_argument("--strategy", choices=STRATEGIES, default="blue-green")
    run.add_argument("--nginx-config", type=Path)
    run.add_argument("--upstream-dir", type=Path)
    _nginx_flags(run)
    run.add_argument("--migrate-command", default="")
    run.add_argument("--health-url", action="append", required=True, help="`service: url` (repeat)")
    run.add_argument("--health-match", action="append", default=[], help="`service: text` (repeat)")
    for name, default in (("status", "200"), ("timeout", "60"), ("interval", "1")):
        run.add_argument(f"--health-{name}", action="append", default=[],
                         help=f"a value for every service (default {default}), or `service: value` (repeat)")
    run.add_argument("--watch-seconds", type=float, default=0)
    run.add_argument("--env-file", type=Path, help="KEY=VALUE lines, kept 0600 in the state folder and "
                     "passed to compose with --env-file")
    run.add_argument("--keep", type=int, default=settings.DEFAULT_KEEP, help="releases kept for rollback")
    run.add_argument("--lock-timeout", type=float, default=600)
    run.add_argument("--dry-run", action="store_true", help="print the plan, touch nothing")

    ready = command("setup", "make nginx ready for a first deploy: placeholder, upstreams, site", _setup)
    ready.add_argument("--compose-file", action="append", type=Path, required=True, dest="compose_files")
    ready.add_argument("--project-name", default="")
    ready.add_argument("--service", action="append", required=True, dest="services")
    ready.add_argument("--route", action="append", default=[], dest="routes",
                       help="`service: /path/` (repeat; one service alone gets /)")
    ready.add_argument("--listen", default="80", help="the site's public port or address:port")
    ready.add_argument("--nginx-config", type=Path, required=True)
    ready.add_argument("--upstream-dir", type=Path, required=True)
    _nginx_flags(ready)
    ready.add_argument("--dry-run", action="store_true", help="print the plan, touch nothing")

    back = command("rollback", "go back to a retained release with the same zero-downtime switch", _rollback)
    back.add_argument("--project", required=True)
    back.add_argument("--to", required=True, help="a sha (or its prefix), or `previous`")
    back.add_argument("--lock-timeout", type=float, default=600)
    for name, help_text, func in (("status", "what is live; recovers an interrupted deploy", _status),
                                  ("history", "every release: sha, images, times, outcome", _history)):
        command(name, help_text, func).add_argument("--project", required=True)


def _nginx_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nginx", default="nginx", help="the nginx binary")
    parser.add_argument("--nginx-prefix", type=Path, help="nginx's -p prefix (a private nginx)")
    parser.add_argument("--nginx-pid", type=Path, help="the master's pid file, when its config names none")


def _nginx_settings(args: argparse.Namespace) -> settings.NginxSettings:
    return settings.NginxSettings(args.nginx_config.resolve(), args.upstream_dir.resolve(), args.nginx,
                                  args.nginx_prefix and args.nginx_prefix.resolve(),
                                  args.nginx_pid and args.nginx_pid.resolve())


def settings_of(args: argparse.Namespace) -> settings.Settings:
    nginx = None
    if args.nginx_config or args.upstream_dir:
        if not (args.nginx_config and args.upstream_dir):
            raise PlanError("give both --nginx-config and --upstream-dir (the proxy), or neither")
        nginx = _nginx_settings(args)
    return settings.Settings(
        compose=Compose(tuple(p.resolve() for p in args.compose_files), args.project_name),
        services=args.services,
        health=health_checks(args.health_url, matches=args.health_match, statuses=args.health_status,
                             timeouts=args.health_timeout, intervals=args.health_interval),
        state_dir=args.state_dir, strategy=args.strategy, nginx=nginx,
        migrate=tuple(shlex.split(args.migrate_command)), watch_seconds=args.watch_seconds, keep=args.keep)


def report_json(report: DeployReport) -> dict:
    release = report.release
    return {"release": release.id, "sha": release.sha, "outcome": release.outcome,
            "images": {s: i.ref for s, i in release.images.items()}, "timings": report.timings,
            "recovered": report.recovered, "downtime": report.downtime, "warnings": report.warnings}


def _print_report(report: DeployReport) -> None:
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps(report_json(report)))


def _fail(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 1


def _run(args: argparse.Namespace) -> int:
    try:
        request = DeployRequest(
            settings=settings_of(args), images=json.loads(args.images) if args.images else {}, sha=args.sha,
            env_values=envfile.parse(args.env_file.read_text()) if args.env_file else None,
            lock_timeout=args.lock_timeout, run="cli")
        if args.dry_run:
            print("\n".join(plan_only(request).describe()))
            return 0
        report = deploy(request)
    except FAILURES as exc:
        return _fail(exc)
    _print_report(report)
    return 0


def _setup(args: argparse.Namespace) -> int:
    try:
        compose = Compose(tuple(p.resolve() for p in args.compose_files), args.project_name)
        done = setup.setup(compose, _nginx_settings(args), args.services, args.routes, args.listen,
                           dry_run=args.dry_run)
    except FAILURES as exc:
        return _fail(exc)
    print("\n".join(done))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    try:
        request = rollback_request(settings.load(args.state_dir, args.project), args.project, args.to,
                                   lock_timeout=args.lock_timeout, run="cli")
        report = deploy(request)
    except FAILURES as exc:
        return _fail(exc)
    _print_report(report)
    return 0


def _status(args: argparse.Namespace) -> int:
    try:
        print(status.render(status.status(args.state_dir, args.project)))
    except FAILURES as exc:
        return _fail(exc)
    return 0


def _history(args: argparse.Namespace) -> int:
    try:
        releases = ledger.Ledger(args.state_dir, args.project).releases()
    except FAILURES as exc:
        return _fail(exc)
    print(status.history_table(releases))
    return 0
