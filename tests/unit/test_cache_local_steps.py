"""cache-local's steps as the runner runs them (a process per step, inputs in INPUT_*, outputs and state
in the GITHUB_* files), against actions/cache's observable behaviour: outputs per case, case-insensitive
keys, `! x` lines, a save that warns and goes on, and scopes from the run's ref and event."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ci_actions import cache

ROOT = Path(__file__).parents[2]
CODE = os.pathsep.join([str(ROOT / "shared"), str(ROOT / "actions" / "cache-local")])
MAIN_REF = {"GITHUB_REF": "refs/heads/main", "GITHUB_EVENT_NAME": "push"}


class Step:
    """One run of a cache-local step; `outputs` and `state` are what it wrote to the runner's files."""

    def __init__(self, tmp: Path, module: str, inputs: dict[str, str], env: dict[str, str]) -> None:
        files = {name: tmp / f"{module}-{name.lower()}" for name in ("GITHUB_OUTPUT", "GITHUB_STATE",
                                                                    "GITHUB_ENV", "GITHUB_STEP_SUMMARY")}
        for path in files.values():
            path.write_text("")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "STATE_"))}
        run_env = {**base, **{k: str(v) for k, v in files.items()}, "PYTHONPATH": CODE,
                   **{f"INPUT_{name.upper().replace('-', '_')}": value for name, value in inputs.items()},
                   **env}
        done = subprocess.run([sys.executable, "-m", module], env=run_env, capture_output=True, text=True,
                              timeout=120, check=False)
        self.code, self.stdout = done.returncode, done.stdout + done.stderr
        self.outputs = _commands(files["GITHUB_OUTPUT"].read_text())
        self.state = _commands(files["GITHUB_STATE"].read_text())

    @property
    def warnings(self) -> list[str]:
        return [line.split("::", 2)[2] for line in self.stdout.splitlines() if line.startswith("::warning")]


def _commands(text: str) -> dict[str, str]:
    """The runner's `name<<DELIMITER` file format."""
    found, lines = {}, iter(text.splitlines())
    for line in lines:
        name, _, delimiter = line.partition("<<")
        value = []
        for body in lines:
            if body == delimiter:
                break
            value.append(body)
        found[name] = "\n".join(value)
    return found


@pytest.fixture
def box(tmp_path):
    (tmp_path / "ws" / "node_modules" / "pkg").mkdir(parents=True)
    (tmp_path / "ws" / "node_modules" / "pkg" / "index.js").write_text("v1\n")
    (tmp_path / "event.json").write_text(json.dumps({"repository": {"default_branch": "main"}}))
    return tmp_path


def step(box: Path, module: str, env: dict[str, str] | None = None, **inputs: str) -> Step:
    inputs = {"path": "node_modules", "cache-dir": str(box / "store"), **inputs}
    return Step(box, module, inputs, {"GITHUB_WORKSPACE": str(box / "ws"),
                                      "GITHUB_EVENT_PATH": str(box / "event.json"), **(env or MAIN_REF)})


def test_outputs_on_a_miss_an_exact_hit_and_a_restore_key_hit(box):
    miss = step(box, "cache_local.restore", key="deps-A")
    assert miss.code == 0
    assert miss.outputs["cache-hit"] == "" and miss.outputs["exact-match"] == "false"
    assert miss.outputs["cache-primary-key"] == "deps-A" and miss.outputs["cache-matched-key"] == ""
    assert step(box, "cache_local.save", key="deps-A").outputs["saved"] == "true"
    exact = step(box, "cache_local.restore", key="deps-A")
    assert exact.outputs["cache-hit"] == "true" and exact.outputs["exact-match"] == "true"
    partial = step(box, "cache_local.restore", key="deps-B", **{"restore-keys": "deps-"})
    assert partial.outputs["cache-hit"] == "false" and partial.outputs["exact-match"] == "false"
    assert partial.outputs["cache-matched-key"] == "deps-A"


def test_the_main_step_gives_an_empty_cache_hit_on_a_miss_and_its_post_saves(box):
    main = step(box, "cache_local.main", key="deps-A")
    assert main.code == 0 and main.outputs["cache-hit"] == ""
    post = step(box, "cache_local.post", {**MAIN_REF, **{f"STATE_{k}": v for k, v in main.state.items()}})
    assert post.code == 0 and "Cache saved with key: deps-A" in post.stdout
    again = step(box, "cache_local.main", key="deps-A")
    assert again.outputs["cache-hit"] == "true"


def test_an_exact_match_ignores_case_and_the_post_step_then_does_not_save(box):
    assert step(box, "cache_local.save", key="Deps-Linux-A").outputs["saved"] == "true"
    main = step(box, "cache_local.main", key="deps-linux-a")
    assert main.outputs["cache-hit"] == "true" and main.outputs["cache-matched-key"] == "Deps-Linux-A"
    post = step(box, "cache_local.post", {**MAIN_REF, **{f"STATE_{k}": v for k, v in main.state.items()}})
    assert "Cache hit occurred on the primary key deps-linux-a, not saving cache." in post.stdout


def test_a_path_line_with_a_space_after_the_bang_excludes(box):
    cached = box / "ws" / "node_modules" / ".cache"
    cached.mkdir()
    (cached / "big").write_text("not for the cache")
    assert step(box, "cache_local.save", key="deps-A", path="node_modules\n!  node_modules/.cache").outputs[
        "saved-files"] == "1"
    (cached / "big").unlink()
    cached.rmdir()
    hit = step(box, "cache_local.restore", key="deps-A", path="node_modules\n!node_modules/.cache")
    assert hit.outputs["cache-hit"] == "true"  # `! x` and `!x` are one path set: the same version
    assert not cached.exists() and (box / "ws" / "node_modules" / "pkg" / "index.js").exists()


@pytest.mark.parametrize(("inputs", "warning"), [
    ({"key": "a,b"}, "Key Validation Error: 'a,b' contains a comma"),
    ({"key": "k" * 513}, "keys cannot be longer than 512 characters"),
    ({"key": ""}, "Input required and not supplied: key"),
    ({"key": "deps-A", "path": "missing-dir"}, "Path Validation Error: none of the paths exist"),
    ({"key": "deps-A", "path": ""}, "Input required and not supplied: path"),
])
def test_the_save_step_warns_and_goes_on_where_actions_cache_does(box, inputs, warning):
    saved = step(box, "cache_local.save", **inputs)
    assert saved.code == 0, saved.stdout
    assert saved.outputs["saved"] == "false"
    assert any(warning in line for line in saved.warnings), saved.stdout
    assert "::error" not in saved.stdout


def test_the_post_step_warns_about_a_path_that_is_gone_and_goes_on(box):
    post = step(box, "cache_local.post", {**MAIN_REF, "STATE_primary-key": "deps-A"}, path="gone")
    assert post.code == 0 and any("Path Validation Error" in line for line in post.warnings)


def test_a_boolean_that_is_not_one_still_fails_the_save_loudly(box):
    saved = step(box, "cache_local.save", key="deps-A", update="yes")
    assert saved.code == 2, saved.stdout
    assert "::error::Input 'update' is not a boolean: 'yes'; use one of: true | True | TRUE" in saved.stdout
    assert not (box / "store" / "entries").exists()


def test_scopes_follow_the_runs_ref_event_and_default_branch(box):
    feature = {"GITHUB_REF": "refs/heads/feature-a", "GITHUB_EVENT_NAME": "push"}
    sibling = {"GITHUB_REF": "refs/heads/feature-b", "GITHUB_EVENT_NAME": "push"}
    pull = {"GITHUB_REF": "refs/pull/3/merge", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_BASE_REF": "main"}
    assert step(box, "cache_local.save", pull, key="deps-pr").outputs["saved"] == "true"
    assert step(box, "cache_local.save", feature, key="deps-feature").outputs["saved"] == "true"
    assert step(box, "cache_local.save", MAIN_REF, key="deps-main").outputs["saved"] == "true"

    def matched(env: dict[str, str], key: str) -> str:
        return step(box, "cache_local.restore", env, key=key, **{"restore-keys": "deps-"}).outputs[
            "cache-matched-key"]

    assert matched(MAIN_REF, "deps-pr") == "deps-main"  # never the PR's, never the feature branch's
    assert matched(MAIN_REF, "deps-feature") == "deps-main"
    assert matched(sibling, "deps-feature") == "deps-main"
    assert matched(feature, "deps-feature") == "deps-feature"
    assert matched(pull, "deps-pr") == "deps-pr"
    assert matched(pull, "deps-x") == "deps-pr"  # its own ref first, then its base (main)


def test_without_a_ref_the_entry_has_no_scope_and_a_warning_says_so(box):
    saved = step(box, "cache_local.save", {"GITHUB_EVENT_NAME": "push"}, key="deps-A")
    assert saved.outputs["saved"] == "true" and cache.NO_SCOPE in saved.warnings
    assert step(box, "cache_local.restore", MAIN_REF, key="deps-A").outputs["cache-hit"] == ""
    unscoped = step(box, "cache_local.restore", {"GITHUB_EVENT_NAME": "push"}, key="deps-A")
    assert unscoped.outputs["cache-hit"] == "true" and cache.NO_SCOPE in unscoped.warnings
    assert cache.NO_SCOPE not in step(box, "cache_local.restore", key="deps-A").warnings


@pytest.mark.parametrize(("module", "inputs", "error"), [
    ("cache_local.restore", {"link-mode": "nope"}, "'link-mode' is 'nope'; use one of: auto, copy, hardlink"),
    ("cache_local.restore", {"lookup-only": "yes"}, "'lookup-only' is not a boolean: 'yes'; use one of"),
    ("cache_local.save", {"max-size": "10X"}, "'max-size' is not a size: '10X'; use a number with K"),
    # The main action reads every input before it restores, its post step's too.
    ("cache_local.main", {"max-age": "1y"}, "'max-age' is not a duration: '1y'; use a number with s, m, h"),
])
def test_a_bad_option_is_one_error_naming_the_input_exit_2_and_nothing_written(box, module, inputs, error):
    done = step(box, module, key="deps-A", **inputs)
    assert done.code == 2 and "Traceback" not in done.stdout, done.stdout
    errors = [line for line in done.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and errors[0].startswith(f"::error::Input {error}"), done.stdout
    assert done.outputs == {} and done.state == {} and not (box / "store").exists()


def cli(box: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ci_actions", "cache", *args, "--cache-dir",
                           str(box / "store")], cwd=box / "ws", capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "PYTHONPATH": CODE})


def test_a_bad_flag_value_is_exit_2_naming_the_flag_with_no_traceback(box):
    done = cli(box, "prune", "--max-size", "10X")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].endswith(
        "error: argument --max-size: is not a size: '10X'; use a number with K, M, G or T (e.g. 10G)")


def test_the_cli_and_the_steps_read_one_table_with_one_set_of_defaults(box):
    shown = " ".join(cli(box, "save", "--help").stdout.split())
    assert "--max-size MAX_SIZE Store size budget (K, M, G, T); least recently used entries are evicted " \
           "past it. (default: 10G)" in shown and "(default: 7d)" in shown
    assert "(default: auto)" in " ".join(cli(box, "restore", "--help").stdout.split())


def test_the_cli_save_keeps_the_budget_as_the_save_step_does(box):
    """Each entry holds 8 bytes: the second save takes the store past 10 and evicts the older."""
    for key in ("deps-old", "deps-new"):
        (box / "ws" / "node_modules" / "pkg" / "index.js").write_text(key)
        done = cli(box, "save", "--key", key, "--path", "node_modules", "--scope", "main", "--max-size", "10")
        assert done.returncode == 0 and json.loads(done.stdout)["saved"] is True, done.stderr
    assert "Pruned 1 cache entries" in done.stderr
    listing = cli(box, "list").stdout
    assert "deps-new" in listing and "deps-old" not in listing
