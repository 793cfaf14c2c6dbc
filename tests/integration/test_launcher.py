"""The launcher against a real cold tool cache: one build for concurrent jobs, recovery, offline installs."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCH = REPO_ROOT / "shared" / "launch"
LOCK = REPO_ROOT / "requirements" / "runtime.lock"
BUILD_BANNER = "::group::ci-actions: building the Python environment"


@pytest.fixture
def action(tmp_path):
    """A tiny action package that proves it ran inside the venv with the shared package importable."""
    package = tmp_path / "probe-action" / "probe_action"
    package.mkdir(parents=True)
    (package / "__main__.py").write_text(
        "import sys, zstandard, docker, filelock, github\n"
        "from ci_actions import runner\n"
        "print('probe ran', sys.prefix, *sys.argv[1:])\n"
        "raise SystemExit(int(runner.get_input('exit-code', default='0')))\n")
    return package.parent


def launch(action_dir, tool_cache, *args, env=None, **kwargs):
    environment = {**os.environ, "RUNNER_TOOL_CACHE": str(tool_cache), **(env or {})}
    return subprocess.Popen([sys.executable, str(LAUNCH), str(action_dir), *args], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def venvs(tool_cache: Path) -> list[Path]:
    return [p for p in (tool_cache / "ci-actions").iterdir() if p.is_dir()]


def test_four_cold_jobs_build_once_and_all_succeed(action, tmp_path):
    tool_cache = tmp_path / "tool-cache"
    procs = [launch(action, tool_cache, "probe_action", f"job{i}") for i in range(4)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    assert sum(out.count(BUILD_BANNER) for out, _ in outputs) == 1
    for i, (out, _) in enumerate(outputs):
        assert f"probe ran {tool_cache / 'ci-actions'}" in out and out.rstrip().endswith(f"job{i}")
    (env_dir,) = venvs(tool_cache)
    assert (env_dir / ".ci-actions-ready").read_text() == env_dir.name


def test_exit_code_and_inputs_pass_through(action, tmp_path):
    proc = launch(action, tmp_path / "tc", env={"INPUT_EXIT_CODE": "3"})
    assert proc.wait(timeout=600) == 3


def test_venv_killed_mid_install_is_rebuilt(action, tmp_path):
    tool_cache = tmp_path / "tool-cache"
    proc = launch(action, tool_cache, start_new_session=True)
    deadline = time.monotonic() + 120
    # Wait until pip is installing into the new venv, then kill the whole job as a runner would.
    while not list(tool_cache.glob("ci-actions/*/lib/python*/site-packages/*.dist-info")):
        assert time.monotonic() < deadline and proc.poll() is None, "the build never started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (env_dir,) = venvs(tool_cache)
    assert not (env_dir / ".ci-actions-ready").exists()

    again = launch(action, tool_cache)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert BUILD_BANNER in out and "probe ran" in out


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    """The locked wheels, downloaded once: what an air-gapped runner would be given."""
    target = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--require-hashes", "--no-deps",
                    "--only-binary=:all:", "-r", str(LOCK), "-d", str(target)], check=True)
    return target


OFFLINE = {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple"}


def test_offline_wheelhouse_installs_without_an_index(action, tmp_path, wheelhouse):
    proc = launch(action, tmp_path / "tc", env={**OFFLINE, "CI_ACTIONS_WHEELHOUSE": str(wheelhouse)})
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "probe ran" in out


def test_incomplete_wheelhouse_fails_clearly_and_marks_nothing_ready(action, tmp_path, wheelhouse):
    partial = tmp_path / "partial"
    partial.mkdir()
    for wheel in wheelhouse.iterdir():
        if not wheel.name.startswith("zstandard"):
            (partial / wheel.name).symlink_to(wheel)
    tool_cache = tmp_path / "tc"
    proc = launch(action, tool_cache, env={**OFFLINE, "CI_ACTIONS_WHEELHOUSE": str(partial)})
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1
    assert "::error::ci-actions: installing runtime.lock into" in out
    assert "Set CI_ACTIONS_WHEELHOUSE to a directory of the locked wheels" in out
    assert "probe ran" not in out
    assert not list(tool_cache.glob("ci-actions/*/.ci-actions-ready"))


def _child_priority(action_dir, tool_cache, priority: str | None) -> subprocess.CompletedProcess:
    """What a process the action starts runs at: `nice` and `ionice` of a child shell."""
    env = {"INPUT_EXIT_CODE": "0"}
    if priority is not None:
        env["CI_ACTIONS_PRIORITY"] = priority
    probe = action_dir / "probe_action" / "__main__.py"
    probe.write_text("import subprocess\nsubprocess.run(['sh', '-c', 'nice; ionice'], check=True)\n")
    process = launch(action_dir, tool_cache, env=env)
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_children_run_at_low_cpu_and_io_priority_by_default(action, tmp_path):
    result = _child_priority(action, tmp_path / "tools", None)
    assert result.returncode == 0, result.stderr
    nice, ionice = result.stdout.split("\n")[-3:-1]
    assert int(nice) >= 10 and ionice == "best-effort: prio 7", result.stdout


def test_normal_priority_leaves_children_alone(action, tmp_path):
    result = _child_priority(action, tmp_path / "tools", "normal")
    assert result.returncode == 0, result.stderr
    nice, ionice = result.stdout.split("\n")[-3:-1]
    assert int(nice) == os.getpriority(os.PRIO_PROCESS, 0) and ionice != "best-effort: prio 7", result.stdout


def test_unknown_priority_is_refused_by_name_before_anything_runs(action, tmp_path):
    result = _child_priority(action, tmp_path / "tools", "lowest")
    assert result.returncode == 2
    assert "::error::ci-actions: CI_ACTIONS_PRIORITY='lowest' is not one of low, normal" in result.stdout
    assert not (tmp_path / "tools" / "ci-actions").exists()  # refused before the venv was even built
