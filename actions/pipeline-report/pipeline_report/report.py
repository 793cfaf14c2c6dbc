"""report.json: the timeline with its figures, for other tools (the bench, the history, a dashboard).
Its format is documented in docs/pipeline-report.md; `v` changes when a field changes meaning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline_report.timeline import Job, Phase, Step, Timeline, cache_figures, critical_path

FORMAT_VERSION = 1
FILE_NAME = "report.json"
FAILED = ("failure", "timed_out", "startup_failure")


@dataclass(frozen=True)
class RunInfo:
    repository: str
    run_id: str
    attempt: int
    sha: str = ""
    ref: str = ""


def conclusion(asked: str, timeline: Timeline) -> str:
    """`asked` unless it is `auto`: then from the jobs the API or the needs results judged (any failed:
    failure; else any cancelled: cancelled; else success), or without them from the records (a failed
    phase: failure), else unknown."""
    if asked != "auto":
        return asked
    judged = [job.outcome for job in timeline.jobs if job.source in ("api", "needs")]
    if judged:
        if any(outcome in FAILED for outcome in judged):
            return "failure"
        return "cancelled" if "cancelled" in judged else "success"
    return "failure" if any(p.outcome != "success" for p in timeline.phases) else "unknown"


def _seconds(start: float | None, end: float | None) -> float | None:
    return round(end - start, 3) if start is not None and end is not None else None


def _phase(phase: Phase) -> dict[str, Any]:
    return {"name": phase.name, "action": phase.action, "start": phase.start, "end": phase.end,
            "seconds": _seconds(phase.start, phase.end), "outcome": phase.outcome, "fields": phase.fields}


def _step(step: Step) -> dict[str, Any]:
    return {"name": step.name, "start": step.start, "end": step.end,
            "seconds": _seconds(step.start, step.end),
            "outcome": step.outcome, "phases": [_phase(p) for p in step.phases]}


def _job(job: Job) -> dict[str, Any]:
    return {"name": job.name, "source": job.source, "start": job.start, "end": job.end,
            "seconds": _seconds(job.start, job.end), "outcome": job.outcome,
            "steps": [_step(s) for s in job.steps]}


def build(timeline: Timeline, run: RunInfo, *, title: str, asked_conclusion: str, records: int,
          warnings: list[str]) -> dict[str, Any]:
    cache = cache_figures(timeline.phases)
    return {
        "v": FORMAT_VERSION, "title": title, "repository": run.repository, "run_id": run.run_id,
        "attempt": run.attempt, "sha": run.sha, "ref": run.ref,
        "conclusion": conclusion(asked_conclusion, timeline),
        "start": timeline.start, "end": timeline.end, "wall_seconds": timeline.wall,
        "sources": {"records": records, "api_jobs": sum(j.source == "api" for j in timeline.jobs)},
        "critical_path": [job.name for job in critical_path(timeline)],
        "cache": {"lookups": cache.lookups, "hits": cache.hits, "hit_rate": cache.hit_rate,
                  "bytes_restored": cache.bytes_restored, "bytes_saved": cache.bytes_saved},
        "jobs": [_job(job) for job in timeline.jobs],
        "warnings": warnings,
    }
