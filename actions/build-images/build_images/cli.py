"""`ci-actions images build|prune|list`: the action's work from any shell; flags mirror the inputs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from build_images import inputs, prune
from build_images.build import BuildError, BuildReport, build, plan
from build_images.inputs import BUILD, COMPOSE, INPUTS, RETENTION
from build_images.plan import PlanError
from ci_actions import declared, engine, ledger
from ci_actions.cli import subcommand
from ci_actions.compose import ComposeError

FAILURES = (BuildError, PlanError, ComposeError, engine.EngineError, ledger.LedgerError)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("images", help="build, tag, list and prune release images (build-images)")
    commands = parser.add_subparsers(dest="images_command", required=True, metavar="COMMAND")
    build_parser = subcommand(commands, "build", "build every service once, tag it with the commit, verify",
                              _build, INPUTS, BUILD)
    build_parser.add_argument("--latest", action="store_true", help="also tag `latest` (default branch)")
    build_parser.add_argument("--run-id", default="", help="also tag `run-<id>`")
    build_parser.add_argument("--source", default="", help="repository URL for the OCI source label")
    build_parser.add_argument("--dry-run", action="store_true", help="print the plan, build nothing")
    build_parser.add_argument("--verbose", action="store_true",
                              help="print each service's `docker compose build` log to stderr")
    prune_parser = subcommand(commands, "prune", "remove images no recent release, container or rollback "
                              "needs", _prune, INPUTS, (*COMPOSE, *RETENTION))
    prune_parser.add_argument("--dry-run", action="store_true")
    subcommand(commands, "list", "the project's images, newest first, and why each is kept", _list, INPUTS,
               (*COMPOSE, *RETENTION))


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
    values = declared.from_args(args)
    try:
        request = inputs.request(values, Path.cwd(), latest=args.latest, run_id=args.run_id,
                                 source=args.source)
        if args.dry_run:
            print("\n".join(plan(request)[2].describe()))
            return 0
        report = build(request)
    except FAILURES as exc:
        return _fail(exc)
    pruned, problem = prune.after_build(report.plan.project, values["keep"], values["state-dir"])
    if problem:
        print(f"warning: {problem}", file=sys.stderr)
    if args.verbose:
        for result in report.results:
            print(f"== {result.service} ==\n{result.log.rstrip()}", file=sys.stderr)
    print(json.dumps(report_json(report, pruned)))
    return 0


def _project(values: declared.Values) -> str:
    return values["project-name"] or inputs.compose(values, Path.cwd()).config()["name"]


def _prune(args: argparse.Namespace) -> int:
    values = declared.from_args(args)
    keep, state_dir = values["keep"], values["state-dir"]
    try:
        client, project = engine.connect(), _project(values)
        if args.dry_run:
            prune_plan = prune.plan(client, project, keep, state_dir)
            print(json.dumps({"remove": [i.id for i in prune_plan.remove], "keep": prune_plan.kept}))
            return 0
        report = prune.prune(client, project, keep, state_dir)
    except FAILURES as exc:
        return _fail(exc)
    for image_id, why in report.failed.items():
        print(f"warning: {image_id} not removed: {why}", file=sys.stderr)
    print(json.dumps({"removed": [{"id": i.id, "tags": list(i.tags)} for i in report.removed],
                      "bytes-freed": report.bytes_freed}))
    return 0


def _list(args: argparse.Namespace) -> int:
    values = declared.from_args(args)
    try:
        client, project = engine.connect(), _project(values)
        kept = prune.plan(client, project, values["keep"], values["state-dir"]).kept
        images = prune.project_images(client, project)
    except FAILURES as exc:
        return _fail(exc)
    for image in images:
        print(f"{image.created or '-':25} {image.revision[:12] or '-':12} {image.service:12} "
              f"{image.id[7:19]} {image.size / 1e6:7.1f} MB  {' '.join(image.tags) or '<untagged>'}"
              f"  [{kept.get(image.id, 'prunable')}]")
    return 0
