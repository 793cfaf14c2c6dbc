"""restore-workspace as a GitHub step."""

from pathlib import Path

from ci_actions import artifact, cache, runner
from ci_actions.artifact import ArtifactError
from ci_actions.store.store import LINK_MODES
from ci_actions.workspace import DEFAULT_INSTALL, LAYERS, Commands, WorkspaceError
from restore_workspace.restore import RestoreReport, RestoreRequest, restore_workspace


def request() -> RestoreRequest:
    context = runner.run_context()
    root, cache_dir = runner.get_input("workspace-root"), runner.get_input("cache-dir")
    return RestoreRequest(
        workspace=runner.workspace(),
        workspace_root=Path(root).expanduser() if root else artifact.default_root(),
        cache_dir=Path(cache_dir).expanduser() if cache_dir else cache.default_cache_dir(),
        layer=runner.get_choice_input("layer", LAYERS, default="all"),
        link_mode=runner.get_choice_input("link-mode", LINK_MODES, default="auto"),
        run=artifact.RunId(context.repository, context.run_id, context.attempt),
        commands=Commands(tuple(runner.get_argv_input("install-command", default=DEFAULT_INSTALL)),
                          tuple(runner.get_argv_input("prisma-generate-command")) or None),
        clean=runner.get_boolean_input("clean", default=True),
        shared_store=runner.get_boolean_input("shared-store"),
        scope=context.cache_scope(),
    )


def summary(report: RestoreReport) -> str:
    rows = [f"| {r.entry.role} | `{r.entry.paths[0]}` | {'hit' if r.hit else 'rebuilt'} | {r.seconds:.2f}s |"
            for r in report.entries]
    phases = " · ".join(f"{name} {seconds:.2f}s" for name, seconds in report.phases.items())
    return "\n".join(["### restore-workspace", "", f"From `{report.artifact_dir}` ({report.manifest.run}).",
                      "", "| entry | path | store | time |", "|---|---|---|---|", *rows, "",
                      f"Phases: {phases}.", ""])


def main() -> None:
    try:
        report = restore_workspace(request())
    except (runner.InputError, ArtifactError, WorkspaceError) as exc:
        runner.set_output("workspace-ready", "false")
        runner.fail(str(exc))
    for warning in report.warnings:
        runner.warning(warning)
    runner.set_output("workspace-ready", "true")
    runner.set_output("cache-hit", "true" if report.all_hit else "false")
    runner.set_output("artifact-digest", f"sha256:{report.manifest.archive_sha256}")
    runner.set_output("unpack-seconds", f"{report.phases['unpack']:.3f}")
    runner.set_output("deps-seconds", f"{report.phases['dependencies']:.3f}")
    runner.append_summary(summary(report))


main()
