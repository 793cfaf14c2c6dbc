"""restore-workspace as a GitHub step: inputs in, restore, outputs and a summary table out."""

from ci_actions import runner
from ci_actions.workspace import run_step
from restore_workspace import inputs
from restore_workspace.restore import RestoreReport, restore_workspace


def summary(report: RestoreReport) -> str:
    rows = [f"| {r.entry.role} | `{r.entry.paths[0]}` | {'hit' if r.hit else 'rebuilt'} | {r.seconds:.2f}s |"
            for r in report.entries]
    phases = " · ".join(f"{name} {seconds:.2f}s" for name, seconds in report.phases.items())
    return "\n".join(["### restore-workspace", "", f"From `{report.artifact_dir}` ({report.manifest.run}).",
                      "", "| entry | path | store | time |", "|---|---|---|---|", *rows, "",
                      f"Phases: {phases}.", ""])


def main() -> None:
    report = run_step("restore-workspace", inputs.INPUTS, inputs.request, restore_workspace)
    runner.set_output("workspace-ready", "true")
    runner.set_output("cache-hit", "true" if report.all_hit else "false")
    runner.set_output("artifact-digest", f"sha256:{report.manifest.archive_sha256}")
    runner.set_output("unpack-seconds", f"{report.phases['unpack']:.3f}")
    runner.set_output("deps-seconds", f"{report.phases['dependencies']:.3f}")
    runner.append_summary(summary(report))


main()
