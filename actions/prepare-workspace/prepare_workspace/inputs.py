"""prepare-workspace's inputs, read through the runner protocol into a PrepareRequest."""

from __future__ import annotations

import shlex
from pathlib import Path

from ci_actions import artifact, cache, runner
from ci_actions.store.store import LINK_MODES
from ci_actions.units import parse_duration
from prepare_workspace.prepare import PrepareRequest


def _command(name: str, default: str) -> list[str]:
    text = runner.get_input(name, default=default)
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise runner.InputError(f"Input '{name}' is not a valid command line: {exc}") from exc
    if not argv:
        raise runner.InputError(f"Input '{name}' is empty")
    return argv


def _directory(name: str, default: Path) -> Path:
    value = runner.get_input(name)
    return Path(value).expanduser() if value else default


def request() -> PrepareRequest:
    generate = runner.get_input("prisma-generate-command")
    try:
        retention = parse_duration(runner.get_input("retention", default="1d"), name="retention")
    except ValueError as exc:
        raise runner.InputError(str(exc)) from exc
    context = runner.run_context()
    return PrepareRequest(
        workspace=runner.workspace(),
        package_dirs=runner.get_multiline_input("package-dirs", required=True),
        install_command=_command("install-command", "npm ci"),
        prod_layer=runner.get_boolean_input("prod-layer"),
        prisma_schemas=runner.get_multiline_input("prisma-schema"),
        generate_command=_command("prisma-generate-command", generate) if generate else None,
        cache_dir=_directory("cache-dir", cache.default_cache_dir()),
        workspace_root=_directory("workspace-root", artifact.default_root()),
        exclude=runner.get_multiline_input("exclude") or ["node_modules"],
        retention=retention,
        link_mode=runner.get_choice_input("link-mode", LINK_MODES, default="auto"),
        run=artifact.RunId(context.repository, context.run_id, context.attempt),
    )
