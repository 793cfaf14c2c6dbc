"""The run's timeline, a pure model: jobs, their steps, and the timing records' phases inside the steps.

Two sources. The GitHub API knows every job and step (names, times to the second, conclusions) but
nothing inside a step; the timing records (ci_actions.timing) know each action's inner phases but only
of our actions. With API jobs, a record goes to the API job named as its `job` (GITHUB_JOB: the job's
id, the API's name when the job has no `name:`; a matrix leg is `id (...)`), or else to the job its
time falls in, and inside that job to the step it overlaps most. Without them, a job is its records'
`job`, a step its records' action (and step id), each spanning its records; and the workflow's `needs`
results, when given, are the jobs' outcomes: a job whose own steps failed after our actions succeeded
is failed, and a job that left no records (skipped, or failed before our first action) is listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TOLERANCE = 1.0  # the API's times are whole seconds; a phase may start or end past its step's


@dataclass(frozen=True)
class ApiStep:
    name: str
    start: float | None
    end: float | None
    conclusion: str


@dataclass(frozen=True)
class ApiJob:
    name: str
    start: float | None
    end: float | None
    conclusion: str
    steps: tuple[ApiStep, ...] = ()


@dataclass
class Phase:
    """One timing record: an action's inner phase (restore, install, migrate, switch...)."""

    name: str
    action: str
    start: float
    end: float
    outcome: str
    fields: dict[str, Any] = field(default_factory=dict)  # hit, bytes_restored, service, package_dir...

    @property
    def label(self) -> str:
        detail = " ".join(str(self.fields[k]) for k in ("service", "package_dir")
                          if isinstance(self.fields.get(k), str | int) and self.fields[k] != "")
        return f"{self.name} {detail}".strip()


@dataclass
class Step:
    name: str
    start: float | None
    end: float | None
    outcome: str
    phases: list[Phase] = field(default_factory=list)


@dataclass
class Job:
    name: str
    start: float | None
    end: float | None
    outcome: str
    source: str  # "api", "records", or "needs" (its outcome is the needs result; any steps are records')
    steps: list[Step] = field(default_factory=list)

    @property
    def ran(self) -> bool:
        return self.start is not None and self.end is not None


@dataclass
class Timeline:
    jobs: list[Job]
    left_out: int = 0  # records of no job the API listed (a job still running, another attempt's)

    @property
    def ran(self) -> list[Job]:
        return [job for job in self.jobs if job.ran]

    @property
    def start(self) -> float | None:
        return min((job.start for job in self.ran), default=None)  # type: ignore[type-var]

    @property
    def end(self) -> float | None:
        return max((job.end for job in self.ran), default=None)  # type: ignore[type-var]

    @property
    def wall(self) -> float:
        return round(self.end - self.start, 3) if self.start is not None and self.end is not None else 0.0

    @property
    def phases(self) -> list[Phase]:
        return [phase for job in self.jobs for step in job.steps for phase in step.phases]


KNOWN_FIELDS = ("v", "phase", "start", "end", "outcome", "run", "job", "action", "step")


def phase_of(record: dict[str, Any]) -> Phase:
    outcome = record.get("outcome") if isinstance(record.get("outcome"), str) else "success"
    return Phase(record["phase"], str(record.get("action") or ""), float(record["start"]),
                 float(max(record["end"], record["start"])), outcome,
                 {k: v for k, v in record.items() if k not in KNOWN_FIELDS})


def build(records: Iterable[dict[str, Any]], api_jobs: Sequence[ApiJob] = (),
          results: Mapping[str, str] | None = None) -> Timeline:
    """The timeline of `records` (timing.read's), inside the API's jobs when there are any, else with
    `results` (job id -> the needs context's result) as the jobs' outcomes."""
    tagged = [(record, phase_of(record)) for record in records]
    if api_jobs:
        return _with_api(tagged, api_jobs)
    return _with_results(_from_records(tagged), results or {})


def _with_results(timeline: Timeline, results: Mapping[str, str]) -> Timeline:
    known = {job.name: job for job in timeline.jobs}
    for name, result in results.items():
        job = known.get(name)
        if job is None:
            timeline.jobs.append(Job(name, None, None, result, "needs"))
        else:
            job.outcome, job.source = result, "needs"
    return timeline


def _outcome(phases: Iterable[Phase]) -> str:
    return "failure" if any(p.outcome != "success" for p in phases) else "success"


def _span(phases: Sequence[Phase]) -> tuple[float, float]:
    return min(p.start for p in phases), max(p.end for p in phases)


def _from_records(tagged: list[tuple[dict[str, Any], Phase]]) -> Timeline:
    jobs: dict[str, dict[str, list[Phase]]] = {}
    for record, phase in tagged:
        job = str(record.get("job") or "") or "job"
        step = str(record.get("step") or "")
        name = phase.action or "records"
        if step and not step.startswith("__"):  # a step id the workflow gave (`id: deploy`)
            name = f"{name} ({step})"
        elif step:  # the runner's generated id: one step per use of the action
            name = f"{name}{_nth(step)}"
        jobs.setdefault(job, {}).setdefault(name, []).append(phase)
    result = []
    for job_name, steps in jobs.items():
        built = [Step(name, *_span(phases), _outcome(phases), sorted(phases, key=lambda p: p.start))
                 for name, phases in steps.items()]
        built.sort(key=lambda s: s.start or 0.0)
        every = [p for s in built for p in s.phases]
        result.append(Job(job_name, *_span(every), _outcome(every), "records", built))
    result.sort(key=lambda j: j.start or 0.0)
    return Timeline(result)


def _nth(step_id: str) -> str:
    """`__org_ci-actions_2` is the action's second use in the job: say so ('' for the first)."""
    tail = step_id.rpartition("_")[2]
    return f" ({tail})" if tail.isdigit() else ""


def _with_api(tagged: list[tuple[dict[str, Any], Phase]], api_jobs: Sequence[ApiJob]) -> Timeline:
    jobs = [Job(j.name, j.start, j.end, j.conclusion or "unknown", "api",
                [Step(s.name, s.start, s.end, s.conclusion or "unknown") for s in j.steps]) for j in api_jobs]
    left_out = 0
    for record, phase in tagged:
        job = _job_for(jobs, str(record.get("job") or ""), phase)
        if job is None:
            left_out += 1
            continue
        step = _step_for(job, phase)
        if step is None:
            step = Step(phase.action or "records", phase.start, phase.end, "success")
            job.steps.append(step)
        step.phases.append(phase)
    for job in jobs:
        for step in job.steps:
            step.phases.sort(key=lambda p: p.start)
            if step.phases and step.start is None:  # a step the API has no times for
                step.start, step.end = _span(step.phases)
        job.steps.sort(key=lambda s: s.start if s.start is not None else float("inf"))
    jobs.sort(key=lambda j: j.start if j.start is not None else float("inf"))
    return Timeline(jobs, left_out)


def _inside(start: float | None, end: float | None, phase: Phase) -> bool:
    return (start is not None and end is not None
            and start - TOLERANCE <= phase.start and phase.end <= end + TOLERANCE)


def _job_for(jobs: list[Job], name: str, phase: Phase) -> Job | None:
    named = [j for j in jobs if name and (j.name == name or j.name.startswith(f"{name} ("))]
    if len(named) == 1:
        return named[0]
    timed = [j for j in named or jobs if _inside(j.start, j.end, phase)]
    if timed:
        return timed[0]
    return named[0] if named else None


def _step_for(job: Job, phase: Phase) -> Step | None:
    def overlap(step: Step) -> float:
        if step.start is None or step.end is None:
            return -1.0
        return min(step.end + TOLERANCE, phase.end) - max(step.start - TOLERANCE, phase.start)
    best = max(job.steps, key=overlap, default=None)
    return best if best is not None and overlap(best) >= 0 else None


def critical_path(timeline: Timeline) -> list[Job]:
    """The chain of jobs that made the wall time, from the times alone (the API does not say a job's
    `needs`): the job that ended last, then the job that ended latest before it started (within a
    second: the API's times are whole seconds), and so on back to the start. A job that ended after
    another started cannot have held it up, so the chain is always one job after another."""
    ran = sorted(timeline.ran, key=lambda j: (j.end, j.start))
    if not ran:
        return []
    chain = [ran[-1]]
    while True:
        current = chain[-1]
        before = [j for j in ran if j is not current and j not in chain
                  and j.end <= current.start + TOLERANCE and j.start < current.start]  # type: ignore[operator]
        if not before:
            break
        chain.append(max(before, key=lambda j: (j.end, j.start)))
    return chain[::-1]


@dataclass(frozen=True)
class CacheFigures:
    lookups: int
    hits: int
    bytes_restored: int
    bytes_saved: int

    @property
    def hit_rate(self) -> float | None:
        return round(self.hits / self.lookups, 4) if self.lookups else None


def cache_figures(phases: Iterable[Phase]) -> CacheFigures:
    """Every record with a `hit` field is a lookup; bytes are the sums of the records' fields."""
    lookups = hits = restored = saved = 0
    for phase in phases:
        hit = phase.fields.get("hit")
        if isinstance(hit, bool):
            lookups += 1
            hits += hit
        restored += _count(phase.fields.get("bytes_restored"))
        saved += _count(phase.fields.get("bytes_saved"))
    return CacheFigures(lookups, hits, restored, saved)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
