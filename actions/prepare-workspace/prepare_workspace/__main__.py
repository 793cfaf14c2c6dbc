"""prepare-workspace as a GitHub step: inputs in, prepare, outputs and a summary table out."""

import json

from ci_actions import runner
from ci_actions.workspace import EntryResult, run_step
from prepare_workspace import inputs
from prepare_workspace.prepare import PrepareReport, prepare


def outcome(result: EntryResult) -> str:
    """A hit says where it is: only checked in the store (later jobs restore it), or restored here."""
    if result.hit:
        return "hit (restored here)" if result.restored else "hit (checked in the store, not restored here)"
    return "miss (built, saved)"


def summary(report: PrepareReport) -> str:
    rows = [f"| {r.entry.role} | `{r.entry.paths[0]}` | {outcome(r)} | {r.seconds:.2f}s |"
            for r in report.entries]
    phases = " · ".join(f"{name} {seconds:.2f}s" for name, seconds in report.phases.items())
    return "\n".join(["### prepare-workspace", "", "| entry | path | cache | time |", "|---|---|---|---|",
                      *rows, "", f"Phases: {phases}. Artifact: `{report.packed.archive}` "
                      f"({report.packed.manifest.archive_bytes / 1e6:.1f} MB).", ""])


def main() -> None:
    report = run_step("prepare-workspace", inputs.INPUTS, inputs.request, prepare)
    for result in report.entries:
        runner.info(f"{result.entry.role} {result.entry.paths[0]}: {outcome(result)} ({result.seconds:.2f}s)")
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
