"""build-images as a GitHub step: build, tag, verify, prune; outputs and a summary table out."""

import json

from build_images import inputs, prune
from build_images.build import BuildError, BuildReport, BuildRequest, build
from build_images.cli import FAILURES
from ci_actions import runner, timing
from ci_actions.declared import Values


def summary(report: BuildReport, pruned: prune.PruneReport) -> str:
    rows = [f"| {r.service} | `{r.refs[0]}` | `{r.image_id[7:19]}` | {r.builder or '-'} | {r.seconds:.1f}s |"
            for r in report.results]
    tags = ", ".join(f"`{t}`" for t in report.plan.tags)
    removed = f"Pruned {len(pruned.removed)} image(s), {pruned.bytes_freed / 1e6:.1f} MB freed."
    return "\n".join(["### build-images", "", "| service | image | id | builder | build |",
                      "|---|---|---|---|---|", *rows, "", f"Tags: {tags}. {removed}", ""])


def failure_summary(exc: BuildError) -> str:
    lines = [f"### build-images: {exc.service or 'build'} failed", "", str(exc), ""]
    if exc.log_tail:
        lines += [f"Last {len(exc.log_tail)} lines:", "", "```", *exc.log_tail, "```", ""]
    return "\n".join(lines)


def request(values: Values, context: runner.RunContext) -> BuildRequest:
    """The run says what the CLI's flags would: the commit (a PR's head when opted in), whether this
    is the default branch (`latest`), the run id and the repository's URL."""
    sha = values["sha"] or (values["use-pr-head"] and context.pr_head_sha) or context.sha
    return inputs.request({**values, "sha": inputs.INPUTS["sha"].value(sha, "The run's commit")},
                          runner.workspace(), latest=context.on_default_branch,
                          run_id=context.run_id if context.run_id != "local" else "",
                          source=context.repository_url)


def main() -> None:
    runner.start_timing("build-images")
    runner.set_output("images-ready", "false")
    try:
        values = runner.read_inputs(inputs.INPUTS)
        build_request = request(values, runner.run_context())
    except runner.InputError as exc:
        runner.fail(str(exc), status=2)
    try:
        with runner.group("build-images"):
            report = build(build_request)
    except FAILURES as exc:
        if isinstance(exc, BuildError):
            runner.append_summary(failure_summary(exc))
        runner.fail(str(exc))
    with timing.phase("prune"):
        pruned, problem = prune.after_build(report.plan.project, values["keep"], values["state-dir"])
    if problem:
        runner.warning(problem)
    for image_id, why in pruned.failed.items():
        runner.warning(f"prune: {image_id} not removed: {why}")
    for image in pruned.removed:
        runner.info(f"pruned {image.service} {image.revision[:12]} {image.id[7:19]} "
                    f"({', '.join(image.tags) or 'untagged'})")
    runner.set_output("images-ready", "true")
    runner.set_output("images", json.dumps(report.images()))
    runner.set_output("image-ids", json.dumps({r.service: r.image_id for r in report.results}))
    runner.set_output("build-seconds", json.dumps({r.service: round(r.seconds, 3) for r in report.results}))
    runner.set_output("tags", json.dumps(report.plan.tags))
    for service, ref in report.images().items():
        runner.set_output(f"image-{service}", ref)
    runner.append_summary(summary(report, pruned))


main()
