"""pipeline-report: the timeline model, the critical path, the charts and their split, bad timing lines,
an empty run, the history, the CLI's bad input, and the step itself on a timing file real actions wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ci_actions import cli, timing
from pipeline_report import gantt, history, summary
from pipeline_report.report import RunInfo
from pipeline_report.run_report import make
from pipeline_report.timeline import build, cache_figures, critical_path
from tests.action_conformance import REPO_ROOT

T0 = 1_700_000_000.0
RUN = RunInfo("octo-org/shop", "77", 1, "a" * 40, "refs/heads/main")


def rec(job: str, action: str, phase: str, start: float, end: float, **fields) -> dict:
    return {"v": 1, "run": "77-1", "job": job, "action": action,
            "step": fields.pop("step", "__octo-org_ci-actions"), "phase": phase, "start": T0 + start,
            "end": T0 + end, "outcome": fields.pop("outcome", "success"), **fields}


PIPELINE = [
    rec("prepare", "prepare-workspace", "restore", 1, 3, hit=True, bytes_restored=4_000_000),
    rec("prepare", "prepare-workspace", "install", 3, 9, package_dir="backend", hit=False),
    rec("prepare", "prepare-workspace", "pack", 9, 11, bytes_saved=2_000_000),
    rec("unit", "restore-workspace", "unpack", 12, 14, hit=True, bytes_restored=1_000_000),
    rec("unit", "test-services", "services up", 14, 18),
    rec("e2e", "restore-workspace", "unpack", 12, 15),
    rec("e2e", "test-services", "services up", 15, 40),
    rec("build", "build-images", "build", 41, 60, service="backend"),
    rec("deploy", "hotswap-deploy", "migrate", 61, 63),
    rec("deploy", "hotswap-deploy", "switch", 63, 64, service="backend", outcome="failure"),
    rec("deploy", "hotswap-deploy", "rollback", 64, 66),
]


def write(folder: Path, records: list[dict], tail: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / timing.FILE_NAME
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    return folder


def test_records_alone_make_jobs_of_steps_of_phases():
    line = build(PIPELINE)
    assert [j.name for j in line.jobs] == ["prepare", "unit", "e2e", "build", "deploy"]
    prepare = line.jobs[0]
    assert (prepare.start, prepare.end, prepare.source) == (T0 + 1, T0 + 11, "records")
    assert [s.name for s in prepare.steps] == ["prepare-workspace"]
    assert [p.label for p in prepare.steps[0].phases] == ["restore", "install backend", "pack"]
    unit = line.jobs[1]
    assert [(s.name, s.start - T0, s.end - T0) for s in unit.steps] == [("restore-workspace", 12, 14),
                                                                         ("test-services", 14, 18)]
    deploy = line.jobs[-1]
    assert deploy.outcome == "failure" and deploy.steps[0].outcome == "failure"
    assert line.wall == 65.0


def test_a_step_id_or_a_second_use_of_an_action_is_its_own_step():
    line = build([rec("e2e", "test-services", "services up", 0, 1, step="db"),
                  rec("e2e", "test-services", "services up", 1, 2, step="__octo-org_ci-actions_2"),
                  rec("e2e", "test-services", "services up", 2, 3)])
    names = [s.name for s in line.jobs[0].steps]
    assert names == ["test-services (db)", "test-services (2)", "test-services"]


def test_needs_results_are_the_jobs_outcomes_and_list_the_jobs_without_records(tmp_path):
    """The unit job's own test step failed after its restore and services succeeded; build and deploy
    were skipped, so they wrote no records: the report still shows all three as the runner judged them."""
    results = {"prepare": "success", "unit": "failure", "e2e": "success", "build": "skipped",
               "deploy": "skipped"}
    made = make(write(tmp_path / "77-1", PIPELINE[:7]), RUN, title="Run", conclusion="auto", results=results)
    jobs = {j["name"]: (j["outcome"], j["source"], j["start"]) for j in made.report["jobs"]}
    assert jobs["unit"] == ("failure", "needs", T0 + 12)
    assert jobs["build"] == ("skipped", "needs", None) and jobs["deploy"] == ("skipped", "needs", None)
    assert made.report["conclusion"] == "failure"
    text = summary.markdown(made.timeline, made.report)
    assert "| **unit** | | 11.0s | 6.0s | **failure** |" in text
    assert "| **build** | | - | - | skipped |" in text
    assert "unit (failure)" in text  # its bar is marked in the chart
    all_green = dict.fromkeys(results, "success")
    assert make(tmp_path / "77-1", RUN, title="Run", conclusion="auto",
                results=all_green).report["conclusion"] == "success"


def test_the_critical_path_walks_back_from_the_job_that_ended_last():
    names = [job.name for job in critical_path(build(PIPELINE))]
    assert names == ["prepare", "e2e", "build", "deploy"]  # e2e ended at 40, unit at 18: e2e held build


def test_jobs_that_overlap_are_not_a_chain():
    line = build([rec("a", "x", "p", 0, 10), rec("b", "x", "p", 5, 20), rec("c", "x", "p", 21, 30)])
    assert [job.name for job in critical_path(line)] == ["b", "c"]


def test_cache_figures_are_the_records_sums():
    cache = cache_figures(build(PIPELINE).phases)
    assert (cache.lookups, cache.hits, cache.hit_rate) == (3, 2, 0.6667)
    assert (cache.bytes_restored, cache.bytes_saved) == (5_000_000, 2_000_000)


def test_the_gantt_has_a_section_per_job_with_phases_under_their_step_and_failures_marked():
    [chart] = gantt.charts(build(PIPELINE), "Run")
    lines = chart.splitlines()
    assert lines[:4] == ["gantt", "    title Run", "    dateFormat x", "    axisFormat %M:%S"]
    assert [line.strip() for line in lines if "section" in line] == [
        "section prepare", "section unit", "section e2e", "section build", "section deploy"]
    start = lines.index("    section prepare")
    assert lines[start + 1:start + 4] == ["    prepare :done, 0, 10000",
                                          "    prepare-workspace :active, 0, 10000", "    ↳ restore :0, 2000"]
    assert "    ↳ switch backend (failure) :crit, 62000, 63000" in lines
    assert "    deploy (failure) :crit, 60000, 65000" in lines


def test_a_big_run_is_split_into_charts_of_at_most_60_bars():
    records = [rec(f"job{j}", "x", f"phase {p}", j * 10 + p, j * 10 + p + 1)
               for j in range(8) for p in range(9)]
    records += [rec("huge", "x", f"phase {p}", 100 + p, 101 + p) for p in range(130)]
    sources = gantt.charts(build(records), "Run")
    bars = [sum(1 for line in s.splitlines() if " :" in line) for s in sources]
    assert len(sources) >= 4 and max(bars) <= gantt.MAX_BARS
    assert sum(bars) == 8 * 11 + 132  # every bar is drawn once: job, step, phases
    assert "    title Run (1/" in sources[0] and "section huge (1/3)" in "".join(sources)


def test_a_name_cannot_break_the_chart():
    assert gantt.bar_name("build: backend; #1") == "build  backend   1"


def test_torn_and_interleaved_lines_are_skipped_with_a_warning_each(tmp_path):
    garbage = '{"v":1,"phase":"unpack","start":1700000012,"en{"v":1,"phase":"x"\n'  # two writers mixed
    folder = write(tmp_path / "77-1", PIPELINE[:3], garbage + '["not", "a record"]\n' + '{"v":1,"phase":"to')
    made = make(folder, RUN, title="Run", conclusion="auto")
    assert made.report["sources"]["records"] == 3
    assert made.report["warnings"] == [
        "timings.jsonl line 4 is not a JSON record (torn or garbled); skipped",
        "timings.jsonl line 5 is not a timing record; skipped",
        "timings.jsonl line 6 is not a JSON record (torn or garbled); skipped"]
    assert [j.name for j in made.timeline.jobs] == ["prepare"]


def test_non_finite_or_boolean_times_are_skipped_and_the_report_stays_valid_json(tmp_path):
    hostile = ('{"v":1,"phase":"x","start":1e999,"end":1e999}\n{"v":1,"phase":"y","start":NaN,"end":1}\n'
               '{"v":1,"phase":"z","start":true,"end":2}\n')
    made = make(write(tmp_path / "77-1", PIPELINE[:3], hostile), RUN, title="Run", conclusion="auto")
    assert made.report["sources"]["records"] == 3
    assert made.report["warnings"] == [f"timings.jsonl line {n} is not a timing record; skipped"
                                       for n in (4, 5, 6)]
    json.dumps(made.report, allow_nan=False)
    gantt.charts(made.timeline, "Run")


def test_a_hostile_history_line_is_skipped_not_a_crash(tmp_path):
    file = history.path(tmp_path, "octo-org/shop")
    file.parent.mkdir(parents=True)
    file.write_text('{"sha":"a","recorded_at":Infinity,"conclusion":"success"}\n'
                    '{"sha":"b","recorded_at":1,"critical_path":5,"conclusion":"success"}\n'
                    '{"sha":"c","recorded_at":2,"critical_path":["x", 1],"conclusion":"success"}\n'
                    '{"sha":"d","recorded_at":3,"critical_path":["prepare"],"conclusion":"success"}\n')
    read = history.read(file)
    assert read.skipped == 3 and [r["sha"] for r in read.runs] == ["d"]


def test_no_records_and_no_token_is_an_empty_valid_report(tmp_path):
    made = make(tmp_path / "77-1", RUN, title="Run", conclusion="auto")
    assert made.empty
    report = json.loads(json.dumps(made.report))
    assert report["jobs"] == [] and report["critical_path"] == [] and report["wall_seconds"] == 0.0
    assert report["conclusion"] == "unknown" and report["start"] is None
    text = summary.markdown(made.timeline, made.report)
    assert "No timing records for this run and no token" in text and "mermaid" not in text


def test_the_summary_names_the_wall_the_path_and_the_cache(tmp_path):
    made = make(write(tmp_path / "77-1", PIPELINE), RUN, title="Run", conclusion="failure")
    text = summary.markdown(made.timeline, made.report)
    assert "Wall time **65.0s** (failure); critical path: `prepare` → `e2e` → `build` → `deploy`." in text
    assert "Cache: 2/3 hits (67%); restored 5.0 MB, saved 2.0 MB." in text
    assert text.count("```mermaid") == 1
    assert "| | ↳ rollback | 63.0s | 2.0s | success |" in text
    assert "| | ↳ switch backend | 62.0s | 1.0s | **failure** |" in text


def test_the_history_keeps_green_runs_and_finds_the_last_green_commit(tmp_path):
    file = history.path(tmp_path, "octo-org/shop")
    assert file == tmp_path / "runs" / "octo-org+shop" / "history.jsonl"
    made = make(write(tmp_path / "77-1", PIPELINE[:3]), RUN, title="Run", conclusion="success")
    history.append(file, history.entry(made.report, 100.0))
    other = {**made.report, "sha": "b" * 40, "ref": "refs/heads/feature"}
    history.append(file, history.entry(other, 200.0))
    with file.open("a") as handle:
        handle.write('{"sha": "c", "recor')  # a torn line
    read = history.read(file)
    assert read.skipped == 1 and [r["sha"] for r in read.runs] == ["a" * 40, "b" * 40]
    assert read.runs[0]["jobs"]["prepare"] == {"start": T0 + 1, "end": T0 + 11, "seconds": 10.0,
                                               "outcome": "success"}
    assert history.last_green(read.runs)["sha"] == "b" * 40
    assert history.last_green(read.runs, "main")["sha"] == "a" * 40

    def cli_out(*argv: str) -> str:
        return subprocess.run([sys.executable, "-m", "ci_actions", "report", "history", "--state-dir",
                               str(tmp_path), *argv], capture_output=True, text=True, check=True).stdout
    assert cli_out("--last-green") == "b" * 40 + "\n"
    assert cli_out("--last-green", "--branch", "main", "--repository", "octo-org/shop") == "a" * 40 + "\n"
    listed = cli_out("--limit", "1").splitlines()
    assert len(listed) == 2 and listed[1].split()[2] == "b" * 12


@pytest.mark.parametrize(("argv", "message"), [
    (["render", "--attempt", "0", "--run-id", "1", "--repository", "a/b"],
     "argument --attempt: must be a whole number, at least 1 (got '0')"),
    (["render", "--repository", "no-slash", "--run-id", "1"],
     "argument --repository: is 'no-slash'; give owner/name"),
    (["render", "--run-id", "1 2", "--repository", "a/b"], "argument --run-id: is '1 2'"),
    (["render", "--run-dir", "/nonexistent/77-1"],
     "argument --run-dir: '/nonexistent/77-1' is not a directory"),
    (["render", "--run-dir", "/"], "argument --run-dir: '/' is not a run folder"),
    (["render"], "give --run-dir, or --repository and --run-id"),
    (["history", "--limit", "x"], "argument --limit: must be a whole number"),
])
def test_bad_cli_input_is_exit_2_naming_it(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as caught:
        sys.exit(cli.main(["report", *argv, "--state-dir", str(tmp_path)]))
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_history_with_no_repository_named_and_none_found_says_so(tmp_path, capsys):
    assert cli.main(["report", "history", "--state-dir", str(tmp_path)]) == 2
    assert "give --repository (histories under" in capsys.readouterr().err


def _step_env(tmp_path: Path, **inputs: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "RUNNER_"))}
    env.update(CI_ACTIONS_STATE_DIR=str(tmp_path / "state"), GITHUB_REPOSITORY="octo-org/shop",
               GITHUB_RUN_ID="77", GITHUB_RUN_ATTEMPT="1", GITHUB_SHA="a" * 40, GITHUB_REF="refs/heads/main",
               GITHUB_JOB="cache", GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"),
               GITHUB_OUTPUT=str(tmp_path / "output"), GITHUB_WORKSPACE=str(tmp_path / "ws"),
               PYTHONPATH=os.pathsep.join(str(REPO_ROOT / p) for p in
                                          ("shared", "actions/cache-local", "actions/pipeline-report")))
    env.update({f"INPUT_{k.upper()}": v for k, v in inputs.items()})
    return env


def _step(tmp_path: Path, module: str, **inputs: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module], env=_step_env(tmp_path, **inputs), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def test_the_step_reports_what_real_cache_local_steps_recorded(tmp_path):
    """cache-local's steps really run (a miss, a save, a hit) and write the run's timing file; the
    report step then reads it as a workflow would run it."""
    (tmp_path / "ws" / "deps").mkdir(parents=True)
    (tmp_path / "ws" / "deps" / "lib.js").write_text("x" * 50_000)
    store = str(tmp_path / "store")
    cache = {"path": "deps", "key": "deps-1", "cache_dir": store}
    for module in ("cache_local.restore", "cache_local.save", "cache_local.restore"):
        done = _step(tmp_path, module, **cache)
        assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / "state" / "runs" / "octo-org+shop" / "77-1"
    with (folder / timing.FILE_NAME).open("a") as handle:
        handle.write('{"v":1,"phase":"restore","st')  # a writer killed mid-line
    (tmp_path / "output").write_text("")
    done = _step(tmp_path, "pipeline_report", conclusion="success", title="Cache run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "::warning::pipeline-report: timings.jsonl line 4 is not a JSON record" in done.stdout
    report = json.loads((folder / "report.json").read_text())
    assert [j["name"] for j in report["jobs"]] == ["cache"]
    phases = [p for s in report["jobs"][0]["steps"] for p in s["phases"]]
    assert [(p["name"], p["fields"].get("hit")) for p in phases] == [("restore", False), ("save", None),
                                                                     ("restore", True)]
    assert report["cache"]["lookups"] == 2 and report["cache"]["hits"] == 1
    assert report["cache"]["bytes_saved"] >= 50_000 and report["cache"]["bytes_restored"] >= 50_000
    outputs = (tmp_path / "output").read_text()
    assert f"\n{folder / 'report.json'}\n" in outputs and '\n["cache"]\n' in outputs
    text = (tmp_path / "summary.md").read_text()
    assert "## Cache run" in text and "```mermaid" in text
    green = history.read(history.path(tmp_path / "state", "octo-org/shop")).runs
    assert [(r["sha"], r["branch"], r["run_id"]) for r in green] == [("a" * 40, "main", "77")]


def test_the_step_with_nothing_to_read_notices_and_writes_an_empty_report(tmp_path):
    done = _step(tmp_path, "pipeline_report")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "::notice::pipeline-report: no timing records in" in done.stdout
    assert "no token given" in done.stdout
    folder = tmp_path / "state" / "runs" / "octo-org+shop" / "77-1"
    assert json.loads((folder / "report.json").read_text())["jobs"] == []
    assert "conclusion unknown: not recorded in the run history" in done.stdout
    assert "No timing records" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize(("inputs", "message"), [
    ({"conclusion": "green"}, "Input 'conclusion' is 'green'; use one of: auto, success, failure"),
    ({"needs": "{not json"}, "Input 'needs' is not JSON; pass ${{ toJSON(needs) }}"),
    ({"needs": '{"build": "failure"}'}, "Input 'needs' is not a needs context"),
])
def test_the_step_names_a_bad_input_and_writes_nothing(tmp_path, inputs, message):
    done = _step(tmp_path, "pipeline_report", **inputs)
    assert done.returncode == 2
    assert f"::error::{message}" in done.stdout
    assert not (tmp_path / "state").exists() and not (tmp_path / "summary.md").exists()
