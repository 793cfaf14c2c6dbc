"""One report from a run's folder (its timing file) and, when given, the API's jobs: what the step
and `ci-actions report render` both do before they print or write it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_actions import timing
from pipeline_report import report, timeline
from pipeline_report.report import RunInfo


@dataclass(frozen=True)
class Made:
    timeline: timeline.Timeline
    report: dict[str, Any]

    @property
    def empty(self) -> bool:
        return not self.timeline.jobs


def make(folder: Path, run: RunInfo, *, title: str, conclusion: str,
         api_jobs: Sequence[timeline.ApiJob] = (), results: Mapping[str, str] | None = None,
         warnings: Sequence[str] = ()) -> Made:
    """`warnings` (the API's, say) come first; then one per timing line that was not a record."""
    records, skipped = timing.read(folder / timing.FILE_NAME)
    built = timeline.build(records, api_jobs, results)
    if built.left_out:
        skipped.append(f"{built.left_out} timing record(s) belong to no completed job of the API's list "
                       "(a job still running?); left out")
    return Made(built, report.build(built, run, title=title, asked_conclusion=conclusion,
                                    records=len(records), warnings=[*warnings, *skipped]))
