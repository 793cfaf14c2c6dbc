"""The step summary: headline figures, the critical path, the cache, the gantt charts and a table."""

from __future__ import annotations

from typing import Any

from pipeline_report import gantt
from pipeline_report.timeline import Timeline

EMPTY = ("No timing records for this run and no token for the GitHub API: nothing to draw. Our actions "
         "write their records under the state dir (`$CI_ACTIONS_STATE_DIR`); give `token` for every job's "
         "and step's times.")


def megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def _offset(value: float | None, base: float | None) -> str:
    return f"{value - base:.1f}s" if value is not None and base is not None else "-"


def _duration(start: float | None, end: float | None) -> str:
    return f"{end - start:.1f}s" if start is not None and end is not None else "-"


def table(timeline: Timeline) -> list[str]:
    base = timeline.start
    rows = ["| job | step / phase | start | duration | outcome |", "|---|---|---:|---:|---|"]
    for job in timeline.jobs:
        rows.append(f"| **{_cell(job.name)}** | | {_offset(job.start, base)} | "
                    f"{_duration(job.start, job.end)} | {_outcome(job.outcome)} |")
        for step in job.steps:
            rows.append(f"| | {_cell(step.name)} | {_offset(step.start, base)} | "
                        f"{_duration(step.start, step.end)} | {_outcome(step.outcome)} |")
            rows += [f"| | ↳ {_cell(p.label)} | {_offset(p.start, base)} | {_duration(p.start, p.end)} | "
                     f"{_outcome(p.outcome)} |" for p in step.phases]
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _outcome(outcome: str) -> str:
    return outcome if outcome in ("success", "skipped") else f"**{outcome}**"


def cache_line(cache: dict[str, Any]) -> str:
    rate = (f"{cache['hits']}/{cache['lookups']} hits ({cache['hit_rate']:.0%})" if cache["lookups"]
            else "no lookups")
    return (f"Cache: {rate}; restored {megabytes(cache['bytes_restored'])}, "
            f"saved {megabytes(cache['bytes_saved'])}.")


def markdown(timeline: Timeline, report: dict[str, Any]) -> str:
    lines = [f"## {report['title']}", ""]
    if not timeline.jobs:
        return "\n".join([*lines, EMPTY, ""])
    path = " → ".join(f"`{name}`" for name in report["critical_path"]) or "-"
    lines += [f"Wall time **{report['wall_seconds']:.1f}s** ({report['conclusion']}); critical path: {path}.",
              "", cache_line(report["cache"]), ""]
    for source in gantt.charts(timeline, report["title"]):
        lines += ["```mermaid", source.rstrip("\n"), "```", ""]
    lines += ["<details><summary>Every job, step and phase</summary>", "", *table(timeline), "",
              "</details>", ""]
    return "\n".join(lines)
