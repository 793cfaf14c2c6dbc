"""`ci-actions workspace prepare`: the action from any shell; flags mirror the inputs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ci_actions.units import parse_duration
from ci_actions.workspace import WorkspaceError, add_run_arguments, commands_of, run_cli, run_of, scope_of
from prepare_workspace.prepare import PrepareRequest, prepare


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("prepare", help="install, generate and pack a workspace once per run")
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--package-dir", action="append", required=True, dest="package_dirs")
    parser.add_argument("--prod-layer", action="store_true")
    parser.add_argument("--prisma-schema", action="append", default=[], dest="prisma_schemas")
    parser.add_argument("--exclude", action="append", default=None)
    parser.add_argument("--retention", default="1d")
    add_run_arguments(parser)
    parser.set_defaults(func=run)


def request_of(args: argparse.Namespace) -> PrepareRequest:
    """The flags as a request; a malformed one is a WorkspaceError naming it (run_cli prints it)."""
    commands = commands_of(args)
    try:
        retention = parse_duration(args.retention)
    except ValueError as exc:
        raise WorkspaceError(f"--retention {exc}") from exc
    return PrepareRequest(
        workspace=args.workspace.resolve(), package_dirs=args.package_dirs,
        install_command=list(commands.install), prod_layer=args.prod_layer,
        prisma_schemas=args.prisma_schemas,
        generate_command=list(commands.generate) if commands.generate else None,
        cache_dir=args.cache_dir.resolve(), workspace_root=args.workspace_root.resolve(),
        exclude=args.exclude or ["node_modules"], retention=retention, link_mode=args.link_mode,
        run=run_of(args), shared_store=args.shared_store, scope=scope_of(args))


def run(args: argparse.Namespace) -> int:
    return run_cli(lambda: prepare(request_of(args)), lambda report: {
        "cache-hit": report.all_hit, "dependency-hits": report.directory_hits(),
        "entries": {r.entry.key: r.hit for r in report.entries},
        "artifact": str(report.packed.archive), "artifact-digest": report.packed.manifest.archive_sha256,
        "phases": {k: round(v, 3) for k, v in report.phases.items()}})
