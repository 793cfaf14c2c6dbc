"""prepare-workspace as a GitHub step: inputs in, prepare, outputs and a summary table out."""

import json

from ci_actions import runner
from ci_actions.artifact import ArtifactError
from ci_actions.workspace import Where, WorkspaceError
from prepare_workspace import inputs
from prepare_workspace.prepare import PrepareReport, prepare


def summary(report: PrepareReport) -> str:
    rows = [f"| {r.entry.role} | `{r.entry.paths[0]}` | {'hit' if r.hit else 'miss (built, saved)'} "
            f"| {r.seconds:.2f}s |" for r in report.entries]
    phases = " · ".join(f"{name} {seconds:.2f}s" for name, seconds in report.phases.items())
    return "\n".join(["### prepare-workspace", "", "| entry | path | cache | time |", "|---|---|---|---|",
                      *rows, "", f"Phases: {phases}. Artifact: `{report.packed.archive}` "
                      f"({report.packed.manifest.archive_bytes / 1e6:.1f} MB).", ""])


def main() -> None:
    runner.set_output("workspace-ready", "false")
    try:
        where = Where.of_run(runner.workspace(), runner.run_context())
        request = inputs.request(runner.read_inputs(inputs.INPUTS), where)
    except runner.InputError as exc:
        runner.fail(str(exc), status=2)
    try:
        with runner.group("prepare-workspace"):
            report = prepare(request)
    except (WorkspaceError, ArtifactError) as exc:
        runner.fail(str(exc))
    for warning in report.warnings:
        runner.warning(warning)
    for result in report.entries:
        runner.info(f"{result.entry.role} {result.entry.paths[0]}: {'hit' if result.hit else 'miss'} "
                    f"({result.seconds:.2f}s)")
    runner.set_output("workspace-ready", "true")
    runner.set_output("cache-hit", "true" if report.all_hit else "false")
    runner.set_output("dependency-hits", json.dumps(report.directory_hits()))
    runner.set_output("workspace-path", str(report.packed.directory))
    runner.set_output("artifact", str(report.packed.archive))
    runner.set_output("artifact-digest", f"sha256:{report.packed.manifest.archive_sha256}")
    runner.set_output("deps-seconds", f"{report.phases['dependencies']:.3f}")
    runner.set_output("prisma-seconds", f"{report.phases['prisma']:.3f}")
    runner.set_output("pack-seconds", f"{report.phases['pack']:.3f}")
    runner.append_summary(summary(report))


main()
