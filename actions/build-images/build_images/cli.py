"""`ci-actions images build|prune|list`: the action's work from any shell; flags mirror the inputs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from build_images import prune
from build_images.build import BuildError, BuildReport, BuildRequest, build, plan
from build_images.plan import PlanError, parse_key_values, parse_smoke
from build_images.tags import TagError, TagRules, check_sha
from ci_actions import engine, ledger
from ci_actions.compose import Compose, ComposeError

DEFAULT_KEEP = 5
FAILURES = (BuildError, PlanError, TagError, ComposeError, engine.EngineError, ledger.LedgerError)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("images", help="build, tag, list and prune release images (build-images)")
    commands = parser.add_subparsers(dest="images_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--compose-file", action="append", type=Path, required=True, dest="compose_files")
        sub.add_argument("--project-name", default="")
        sub.set_defaults(func=func)
        return sub

    def retention(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--keep", type=_at_least_one, default=DEFAULT_KEEP, help="releases to retain")
        sub.add_argument("--state-dir", type=Path, default=ledger.default_state_dir())

    build_parser = command("build", "build every service once, tag it with the commit, verify", _build)
    build_parser.add_argument("--sha", required=True)
    build_parser.add_argument("--service", action="append", default=[], dest="services")
    build_parser.add_argument("--latest", action="store_true", help="also tag `latest` (default branch)")
    build_parser.add_argument("--run-id", default="")
    build_parser.add_argument("--tag", action="append", default=[], dest="extra_tags")
    build_parser.add_argument("--build-arg", action="append", default=[], dest="build_args")
    build_parser.add_argument("--no-cache", action="store_true")
    build_parser.add_argument("--smoke", action="append", default=[], help="`service: command`")
    build_parser.add_argument("--source", default="", help="repository URL for the OCI source label")
    build_parser.add_argument("--dry-run", action="store_true", help="print the plan, build nothing")
    build_parser.add_argument("--verbose", action="store_true",
                              help="print each service's `docker compose build` log to stderr")
    retention(build_parser)
    prune_parser = command("prune", "remove images no recent release, container or rollback needs", _prune)
    prune_parser.add_argument("--dry-run", action="store_true")
    retention(prune_parser)
    retention(command("list", "the project's images, newest first, and why each is kept", _list))


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of releases, at least 1")
    return int(text)


def compose_of(args: argparse.Namespace) -> Compose:
    return Compose(tuple(p.resolve() for p in args.compose_files), args.project_name)


def request_of(args: argparse.Namespace) -> BuildRequest:
    return BuildRequest(
        compose=compose_of(args),
        rules=TagRules(check_sha(args.sha), latest=args.latest, run_id=args.run_id,
                       extra=tuple(args.extra_tags)),
        services=args.services, smoke=parse_smoke(args.smoke),
        build_args=parse_key_values(args.build_args, name="build-args"), no_cache=args.no_cache,
        source=args.source)


def report_json(report: BuildReport, pruned: prune.PruneReport | None) -> dict:
    return {"images-ready": True, "images": report.images(),
            "image-ids": {r.service: r.image_id for r in report.results},
            "build-seconds": {r.service: round(r.seconds, 3) for r in report.results},
            "tags": report.plan.tags,
            "pruned": [i.id for i in pruned.removed] if pruned else [],
            "bytes-freed": pruned.bytes_freed if pruned else 0}


def _fail(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    for line in getattr(exc, "log_tail", []):
        print(f"  | {line}", file=sys.stderr)
    return 1


def _build(args: argparse.Namespace) -> int:
    try:
        request = request_of(args)
        if args.dry_run:
            print("\n".join(plan(request)[2].describe()))
            return 0
        report = build(request)
    except FAILURES as exc:
        return _fail(exc)
    pruned, problem = prune.after_build(report.plan.project, args.keep, args.state_dir)
    if problem:
        print(f"warning: {problem}", file=sys.stderr)
    if args.verbose:
        for result in report.results:
            print(f"== {result.service} ==\n{result.log.rstrip()}", file=sys.stderr)
    print(json.dumps(report_json(report, pruned)))
    return 0


def _project(args: argparse.Namespace) -> str:
    return args.project_name or compose_of(args).config()["name"]


def _prune(args: argparse.Namespace) -> int:
    try:
        client, project = engine.connect(), _project(args)
        if args.dry_run:
            prune_plan = prune.plan(client, project, args.keep, args.state_dir)
            print(json.dumps({"remove": [i.id for i in prune_plan.remove], "keep": prune_plan.kept}))
            return 0
        report = prune.prune(client, project, args.keep, args.state_dir)
    except FAILURES as exc:
        return _fail(exc)
    for image_id, why in report.failed.items():
        print(f"warning: {image_id} not removed: {why}", file=sys.stderr)
    print(json.dumps({"removed": [{"id": i.id, "tags": list(i.tags)} for i in report.removed],
                      "bytes-freed": report.bytes_freed}))
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        client, project = engine.connect(), _project(args)
        kept = prune.plan(client, project, args.keep, args.state_dir).kept
        images = prune.project_images(client, project)
    except FAILURES as exc:
        return _fail(exc)
    for image in images:
        print(f"{image.created or '-':25} {image.revision[:12] or '-':12} {image.service:12} "
              f"{image.id[7:19]} {image.size / 1e6:7.1f} MB  {' '.join(image.tags) or '<untagged>'}"
              f"  [{kept.get(image.id, 'prunable')}]")
    return 0
