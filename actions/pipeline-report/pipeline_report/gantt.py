"""The timeline as Mermaid gantt charts (GitHub renders ```mermaid blocks; no chart service is called).

One section per job: the job's bar (`done`, grey), each step's (`active`), and right below a step the
phases its action recorded (`↳ install backend`), so the inner work shows inside the step that did it.
Whatever did not succeed is `crit` (red) and says how it ended. Times are offsets from the run's start
(`dateFormat x`: milliseconds, shown as minutes:seconds). A chart of more than MAX_BARS bars is hard to
read and slow to render, so the jobs are dealt into several charts, a job too big for one into parts.
"""

from __future__ import annotations

import re

from pipeline_report.timeline import Job, Timeline

MAX_BARS = 60
_UNSAFE = re.compile(r"[:;#\n\r]+")  # a task's name ends at ':'; ';' and '#' end or comment a line


def bar_name(text: str) -> str:
    return _UNSAFE.sub(" ", text).strip() or "-"


def _bar(name: str, tag: str, outcome: str, start: float, end: float, base: float) -> str:
    if outcome not in ("success", "skipped"):
        name, tag = f"{name} ({outcome})", "crit"
    begin = round((start - base) * 1000)
    finish = max(round((end - base) * 1000), begin + 1)  # an instant still gets a sliver
    return f"    {bar_name(name)} :{tag + ', ' if tag else ''}{begin}, {finish}"


def job_bars(job: Job, base: float) -> list[str]:
    if not job.ran:
        return []
    bars = [_bar(job.name, "done", job.outcome, job.start, job.end, base)]  # type: ignore[arg-type]
    for step in job.steps:
        if step.start is None or step.end is None or step.outcome == "skipped":
            continue
        bars.append(_bar(step.name, "active", step.outcome, step.start, step.end, base))
        bars += [_bar(f"↳ {phase.label}", "", phase.outcome, phase.start, phase.end, base)
                 for phase in step.phases]
    return bars


def charts(timeline: Timeline, title: str, max_bars: int = MAX_BARS) -> list[str]:
    """The Mermaid sources, each at most `max_bars` bars ([] when nothing ran)."""
    base = timeline.start
    if base is None:
        return []
    sections: list[tuple[str, list[str]]] = []
    for job in timeline.ran:
        bars = job_bars(job, base)
        parts = [bars[i:i + max_bars] for i in range(0, len(bars), max_bars)]
        for number, part in enumerate(parts, 1):
            label = job.name if len(parts) == 1 else f"{job.name} ({number}/{len(parts)})"
            sections.append((bar_name(label), part))
    groups: list[list[tuple[str, list[str]]]] = [[]]
    for section in sections:
        if groups[-1] and sum(len(bars) for _, bars in groups[-1]) + len(section[1]) > max_bars:
            groups.append([])
        groups[-1].append(section)
    sources = []
    for number, group in enumerate(groups, 1):
        heading = title if len(groups) == 1 else f"{title} ({number}/{len(groups)})"
        lines = ["gantt", f"    title {bar_name(heading)}", "    dateFormat x", "    axisFormat %M:%S"]
        for name, bars in group:
            lines += [f"    section {name}", *bars]
        sources.append("\n".join(lines) + "\n")
    return sources
