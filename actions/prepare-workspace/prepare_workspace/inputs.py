"""prepare-workspace's inputs, read through the runner protocol into a PrepareRequest."""

from __future__ import annotations

from pathlib import Path

from ci_actions import artifact, cache, runner
from ci_actions.store.store import LINK_MODES
from ci_actions.units import parse_duration
from ci_actions.workspace import DEFAULT_INSTALL
from prepare_workspace.prepare import PrepareRequest


def _directory(name: str, default: Path) -> Path:
    value = runner.get_input(name)
    return Path(value).expanduser() if value else default


def request() -> PrepareRequest:
    try:
        retention = parse_duration(runner.get_input("retention", default="1d"))
    except ValueError as exc:
        raise runner.InputError(f"Input 'retention' {exc}") from exc
    context = runner.run_context()
    return PrepareRequest(
        workspace=runner.workspace(),
        package_dirs=runner.get_multiline_input("package-dirs", required=True),
        install_command=runner.get_argv_input("install-command", default=DEFAULT_INSTALL),
        prod_layer=runner.get_boolean_input("prod-layer"),
        prisma_schemas=runner.get_multiline_input("prisma-schema"),
        generate_command=runner.get_argv_input("prisma-generate-command") or None,
        cache_dir=_directory("cache-dir", cache.default_cache_dir()),
        workspace_root=_directory("workspace-root", artifact.default_root()),
        exclude=runner.get_multiline_input("exclude") or ["node_modules"],
        retention=retention,
        link_mode=runner.get_choice_input("link-mode", LINK_MODES, default="auto"),
        run=artifact.RunId(context.repository, context.run_id, context.attempt),
        shared_store=runner.get_boolean_input("shared-store"),
        scope=context.cache_scope(),
    )
