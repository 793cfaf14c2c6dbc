"""cache-local against actions/cache's own behaviour: each test is named after what upstream asserts.

Sources (actions/cache): `.github/workflows/workflow.yml` with `__tests__/create-cache-files.sh` and
`verify-cache-files.sh` (the end-to-end test-save/test-restore jobs); README.md, restore/README.md,
save/README.md; `__tests__/restoreImpl.test.ts`, `restore.test.ts`, `restoreOnly.test.ts`,
`saveImpl.test.ts`, `saveOnly.test.ts`; `src/utils/actionUtils.ts` (exact match, `! x`); the toolkit's
`@actions/cache` (key limits, messages); GitHub's "Dependency caching reference" (matching order,
scopes). What only a runner shows (outputs, post steps, messages, step outcomes) runs the real action
under act, as a consumer's `uses:` line; the many small matching cases use the `ci-actions cache` CLI.

Every test checks upstream's behaviour, not ours: where cache-local differs on purpose, the test checks
the part the two share and docs/cache-local.md ("Conformance") says what differs.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflows.act_runner import REPO_ROOT, make_consumer_repo, run_workflow

HERE = Path(__file__).parent
E2E_SAVE = HERE / "cache-conformance-save.yml"
E2E_RESTORE = HERE / "cache-conformance-restore.yml"
BEHAVIOUR = HERE / "cache-conformance.yml"
SCOPES = HERE / "cache-conformance-scopes.yml"
CACHE_FILES = HERE / "cache-conformance" / "cache-files.sh"
KEY_512 = "conf-512-" + "k" * (512 - len("conf-512-"))
KEY_513 = KEY_512 + "k"
FAIL_ON_MISS = "Failed to restore cache entry. Exiting as fail-on-cache-miss is set."

workflow = pytest.mark.workflow


# --- helpers -------------------------------------------------------------------------------------------

def consumer(tmp: Path, workflow_file: Path, *others: Path) -> Path:
    """A consumer repository holding the workflow(s) and our cache-files.sh (as tests/cache-files.sh)."""
    files = {"tests/cache-files.sh": CACHE_FILES.read_text()}
    files.update({f".github/workflows/{other.name}": other.read_text() for other in others})
    return make_consumer_repo(tmp, workflow_file, files=files)


def cli(*args: str, cwd: Path | None = None, home: Path | None = None) -> subprocess.CompletedProcess:
    """`ci-actions cache ...` from this checkout, outside any GitHub run (no GITHUB_* variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "RUNNER_"))}
    env["PYTHONPATH"] = os.pathsep.join(str(REPO_ROOT / part) for part in ("shared", "actions/cache-local"))
    if home:
        env["HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "ci_actions", "cache", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def keys_in(store: Path) -> set[str]:
    """Every key in the store, whatever its scope (`cache list` prints one entry a line)."""
    listing = cli("list", "--cache-dir", str(store))
    assert listing.returncode == 0, listing.stderr
    return {token for line in listing.stdout.splitlines()[1:] for token in line.split()}


def outputs(run, job: str, step: str) -> dict[str, str]:
    return run.job(job).step_outputs.get(step, {})


def cache_hit(run, job: str, step: str) -> str:
    """`cache-hit` as an expression sees it: an output never set reads as ''."""
    return outputs(run, job, step).get("cache-hit", "")


def outcome(run, job: str, step: str) -> str:
    """A case step's outcome (success/failure; '' if it never ran), from the job's `outcomes` step."""
    return outputs(run, job, "outcomes").get(step.replace("-", "_"), "")


def seen(run, job: str, step: str, name: str = "v") -> str:
    return outputs(run, job, f"{step}-seen").get(name, "")


def has_line(text: str, message: str) -> bool:
    """Upstream's message, ending a line or followed by a space (ours may add detail after it).
    act's log runs its own notes and the step's output together, so the start is not a boundary."""
    return re.search(re.escape(message) + r"(?:$| )", text, re.MULTILINE) is not None


# --- the end-to-end jobs of actions/cache's workflow.yml -----------------------------------------------

@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """test-save, then HOME emptied (a hosted runner's HOME is new every job), then test-restore."""
    tmp = tmp_path_factory.mktemp("e2e")
    home, store = tmp / "home", tmp / "store"
    home.mkdir()
    repo = consumer(tmp / "consumer", E2E_SAVE, E2E_RESTORE)
    env = {"CACHE_DIR": str(store), "HOME": str(home), "GITHUB_RUN_ID": str(secrets.randbelow(10**9))}
    saved = run_workflow(repo, repo / ".github" / "workflows" / E2E_SAVE.name, env=env)
    left_in_home = sorted(p.relative_to(home).as_posix() for p in home.rglob("*"))
    shutil.rmtree(home)
    home.mkdir()
    restored = run_workflow(repo, repo / ".github" / "workflows" / E2E_RESTORE.name, env=env)
    return saved, restored, left_in_home, env["GITHUB_RUN_ID"]


@workflow
def test_workflow_test_save_caches_workspace_and_home_paths(e2e):
    saved, _, left_in_home, run_id = e2e
    job = saved.job("test-save")
    assert job.result == "success", job.text
    assert "test-cache/test-file.txt" in left_in_home  # the job really wrote ~/test-cache
    assert has_line(job.text, f"Cache saved with key: test-Linux-{run_id}"), job.text


@workflow
def test_workflow_test_restore_restores_both_paths_after_home_is_emptied(e2e):
    _, restored, _, run_id = e2e
    job = restored.job("test-restore")
    assert job.result == "success", job.text
    assert job.step_outputs["cache"].get("cache-hit") == "true"
    assert has_line(job.text, f"Cache restored from key: test-Linux-{run_id}")
    assert "verified test-cache" in job.text and "/test-cache" in job.text
    assert has_line(job.text, f"Cache hit occurred on the primary key test-Linux-{run_id}, not saving cache.")


# --- README, restore/ and save/, *Impl.test.ts: one workflow, many cases -------------------------------

@pytest.fixture(scope="module")
def behaviour(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("behaviour")
    home, store, absolute = tmp / "home", tmp / "store", tmp / "elsewhere" / "conf-abs"
    home.mkdir()
    repo = consumer(tmp / "consumer", BEHAVIOUR)
    run = run_workflow(repo, repo / ".github" / "workflows" / BEHAVIOUR.name,
                       payload={"ref": "refs/heads/main", "repository": {"default_branch": "main"}},
                       env={"CACHE_DIR": str(store), "HOME": str(home), "ABS_DIR": str(absolute),
                            "KEY_512": KEY_512, "KEY_513": KEY_513})
    return run, store


@workflow
def test_no_step_sets_an_undeclared_output(behaviour):
    run, _ = behaviour
    assert run.undeclared_outputs == []


@workflow
def test_save_impl_save_with_valid_inputs_saves_a_cache(behaviour):
    run, _ = behaviour
    assert outcome(run, "seed", "save-exact") == "success"
    assert has_line(run.job("seed").text, "Cache saved with key: conf-exact")


@workflow
def test_save_impl_an_existing_key_is_never_overwritten(behaviour):
    """Upstream's reserve fails ("Unable to reserve cache with key ..."): a warning, not a failure, and
    the entry keeps its first content (docs: "You cannot change the contents of an existing cache")."""
    run, _ = behaviour
    assert outcome(run, "seed", "save-exact-again") == "success"
    assert seen(run, "restore", "exact") == "exact"
    assert seen(run, "after-post", "conf-exact") == "exact"


@workflow
def test_save_only_missing_path_warns_and_does_not_fail(behaviour):
    """saveImpl: "Path Validation Error: Path(s) specified ... do(es) not exist", then saveOnly's
    "Cache save failed." warning; the step passes."""
    run, store = behaviour
    assert outcome(run, "seed", "save-missing-path") == "success"
    assert "Path Validation Error" in run.job("seed").text
    assert "conf-missing-path" not in keys_in(store)


@workflow
def test_save_impl_invalid_key_warns_and_does_not_fail(behaviour):
    """saveCache's ValidationError is caught by saveImpl and logged as a warning."""
    run, store = behaviour
    assert outcome(run, "seed", "save-comma-key") == "success"
    assert "Key Validation Error" in run.job("seed").text
    assert not any("comma-save" in key for key in keys_in(store))


@workflow
def test_save_impl_no_key_warns_and_does_not_fail(behaviour):
    """saveImpl: `Key is not specified.` as a warning; nothing saved, the step passes."""
    run, _ = behaviour
    assert outcome(run, "seed", "save-no-key") == "success"


def restored(run, case: str) -> tuple[str, str, str, str]:
    """A restore job case: (step outcome, cache-hit, cache-matched-key, what its -seen step found)."""
    out = outputs(run, "restore", case)
    return (outcome(run, "restore", case), out.get("cache-hit", ""), out.get("cache-matched-key", ""),
            seen(run, "restore", case))


@workflow
def test_restore_impl_restore_with_cache_found_for_key(behaviour):
    run, _ = behaviour
    assert restored(run, "exact") == ("success", "true", "conf-exact", "exact")
    assert outputs(run, "restore", "exact").get("cache-primary-key") == "conf-exact"
    assert has_line(run.job("restore").text, "Cache restored from key: conf-exact")


@workflow
def test_restore_impl_restore_with_cache_found_for_restore_key_outputs_cache_hit_false(behaviour):
    run, _ = behaviour
    assert restored(run, "restore-key") == ("success", "false", "conf-partial-aaa", "partial")
    assert outputs(run, "restore", "restore-key").get("cache-primary-key") == "conf-partial-zzz"
    assert has_line(run.job("restore").text, "Cache restored from key: conf-partial-aaa")


@workflow
def test_restore_impl_restore_with_no_cache_found_leaves_cache_hit_empty(behaviour):
    """README: "If there's a cache miss, this will be an empty string" (restoreImpl sets no cache-hit,
    actions/cache#1466); restoreOnly still outputs cache-primary-key."""
    run, _ = behaviour
    assert restored(run, "miss") == ("success", "", "", "none")
    assert outputs(run, "restore", "miss").get("cache-primary-key") == "conf-nothing"
    assert has_line(run.job("restore").text, "Cache not found for input keys: conf-nothing")


@workflow
def test_restore_impl_restore_with_restore_keys_and_no_cache_found(behaviour):
    run, _ = behaviour
    assert restored(run, "miss-restore-keys")[:3] == ("success", "", "")
    assert has_line(run.job("restore").text,
                    "Cache not found for input keys: conf-nothing-2, conf-nope-a, conf-nope-b")


@workflow
def test_restore_impl_restore_with_lookup_only_set(behaviour):
    run, _ = behaviour
    log = run.job("restore").text
    assert restored(run, "lookup") == ("success", "true", "conf-exact", "none")
    assert has_line(log, "Cache found and can be restored from key: conf-exact")
    assert restored(run, "lookup-restore-key") == ("success", "false", "conf-partial-aaa", "none")
    assert has_line(log, "Cache found and can be restored from key: conf-partial-aaa")


@workflow
def test_restore_fail_on_cache_miss_fails_when_primary_and_restore_keys_not_found(behaviour):
    run, _ = behaviour
    assert restored(run, "fail-on-miss")[:3] == ("failure", "", "")
    assert f"{FAIL_ON_MISS} Input key: conf-fail-miss" in run.job("restore").text


@workflow
def test_restore_fail_on_cache_miss_passes_when_a_restore_key_matches(behaviour):
    run, _ = behaviour
    assert restored(run, "fail-on-miss-restore-key") == ("success", "false", "conf-partial-aaa", "partial")


@workflow
def test_action_utils_is_exact_key_match_ignores_case(behaviour):
    """isExactKeyMatch compares with sensitivity 'accent': `CONF-EXACT` is a hit on `conf-exact`."""
    run, _ = behaviour
    assert restored(run, "case") == ("success", "true", "conf-exact", "exact")


@workflow
def test_readme_cache_version_a_different_path_set_is_another_cache(behaviour):
    run, _ = behaviour
    assert restored(run, "other-path")[:3] == ("success", "", "")


def round_trip(run, case: str, name: str = "v") -> str:
    """Seed's `save-<case>` and restore's `<case>` passed, the restore was a hit: what it placed."""
    assert (outcome(run, "seed", f"save-{case}"), outcome(run, "restore", case)) == ("success", "success")
    assert cache_hit(run, "restore", case) == "true"
    return seen(run, "restore", case, name)


@workflow
def test_readme_path_lists_several_lines(behaviour):
    run, _ = behaviour
    assert round_trip(run, "multi").split() == ["a", "b"]


@workflow
def test_readme_path_with_tilde_is_the_home_directory(behaviour):
    run, _ = behaviour
    assert round_trip(run, "home") == "home"


@workflow
def test_readme_path_absolute_outside_the_workspace(behaviour):
    run, _ = behaviour
    assert round_trip(run, "abs") == "abs"


@workflow
def test_readme_path_globs_and_exclusions(behaviour):
    """@actions/glob patterns: `*`, `**`, `!` (and actionUtils' `! x` read as `!x`)."""
    run, _ = behaviour
    assert round_trip(run, "glob", "files").split() == ["globbed/keep.txt", "globbed/sub/deep/x.js"]


@workflow
@pytest.mark.parametrize(("allowed", "case", "message"), [
    pytest.param("key-512", "key-513", "Key Validation Error: conf-512-kkk",
                 id="restore with large key should fail"),  # 512 characters pass, 513 do not
    pytest.param(None, "key-comma", "conf,comma", id="restore with invalid key should fail"),
    pytest.param("keys-10", "keys-11", "Key Validation Error", id="restore with too many keys should fail"),
    pytest.param(None, "no-key", "Input required and not supplied: key", id="restore with no key"),
    pytest.param(None, "no-path", "Input required and not supplied: path", id="restore with no path"),
])
def test_restore_impl_bad_input_fails_the_step(behaviour, allowed, case, message):
    """restoreImpl.test.ts: setFailed with the validation message (the job log says it)."""
    run, _ = behaviour
    if allowed:
        assert outcome(run, "restore", allowed) == "success"
    assert outcome(run, "restore", case) == "failure"
    assert message in run.job("restore").text


@workflow
def test_restore_readme_only_restore_has_no_post_step(behaviour):
    run, store = behaviour
    assert run.job("restore").result == "success"
    assert not keys_in(store) & {"conf-nothing", "conf-nothing-2", "conf-partial-zzz",
                              "conf-partial-lookup", "conf-partial-must"}


@workflow
def test_save_readme_always_save_under_the_restore_cache_primary_key(behaviour):
    run, _ = behaviour
    assert outcome(run, "restore", "pattern-restore") == "success"
    assert cache_hit(run, "restore", "pattern-restore") == ""
    assert outcome(run, "restore", "pattern-save") == "success"
    assert outputs(run, "restore", "pattern-save").get("saved") == "true"
    assert cache_hit(run, "restore", "pattern-again") == "true"


def main_action_job(run, job: str, *, hit: str) -> str:
    """A job of one main-action step: it passed, `cache-hit` was `hit`, and its install step (README's
    `if: steps.cache.outputs.cache-hit != 'true'`) ran exactly when that was not 'true'. Its log."""
    done = run.job(job)
    assert done.result == "success", done.text
    assert cache_hit(run, job, "cache") == hit
    assert done.step_outputs.get("install", {}).get("ran", "") == ("" if hit == "true" else "true")
    return done.text


def saved_in_post(run, job: str) -> bool:
    """The post step saved the job's key (named after the job), holding what the install step wrote."""
    return (has_line(run.job(job).text, f"Cache saved with key: {job}")
            and seen(run, "after-post", job) == "installed")


@workflow
def test_readme_cache_miss_runs_the_install_step_and_the_post_step_saves(behaviour):
    run, _ = behaviour
    main_action_job(run, "post-miss", hit="")
    assert saved_in_post(run, "post-miss")


@workflow
def test_save_impl_save_with_exact_match_returns_early(behaviour):
    run, _ = behaviour
    log = main_action_job(run, "post-exact", hit="true")
    assert has_line(log, "Cache hit occurred on the primary key conf-exact, not saving cache.")


@workflow
def test_save_impl_exact_match_ignores_case(behaviour):
    run, store = behaviour
    log = main_action_job(run, "post-case", hit="true")
    assert has_line(log, "Cache hit occurred on the primary key CONF-EXACT, not saving cache.")
    assert "CONF-EXACT" not in keys_in(store)


@workflow
def test_save_impl_saves_the_primary_key_after_a_restore_key_match(behaviour):
    run, _ = behaviour
    main_action_job(run, "post-restore-key", hit="false")
    assert saved_in_post(run, "post-restore-key")


@workflow
def test_readme_lookup_only_does_not_change_save_cache_behavior(behaviour):
    run, _ = behaviour
    main_action_job(run, "post-lookup-only", hit="")
    assert saved_in_post(run, "post-lookup-only")


@workflow
def test_action_post_if_success_a_failed_job_saves_nothing(behaviour):
    run, _ = behaviour
    assert run.job("post-failed-job").result == "failure"
    assert outputs(run, "after-post", "post-failed-job").get("cache-matched-key", "") == ""


@workflow
def test_restore_fail_on_cache_miss_fails_the_job_and_nothing_is_saved(behaviour):
    run, _ = behaviour
    job = run.job("post-fail-on-miss")
    assert job.result == "failure"
    assert f"{FAIL_ON_MISS} Input key: post-fail-on-miss" in job.text
    assert outputs(run, "after-post", "post-fail-on-miss").get("cache-matched-key", "") == ""


# --- scopes: one job run as main, two feature branches and a pull request ------------------------------

SCOPE_RUNS = [  # (role, event, payload), in order, against one store
    ("main-first", "push", {"ref": "refs/heads/main"}),
    ("feature-a", "push", {"ref": "refs/heads/feature-a"}),
    ("feature-b", "push", {"ref": "refs/heads/feature-b"}),
    ("pr", "pull_request", {"number": 7, "pull_request": {"number": 7, "head": {"ref": "feature-c"},
                                                          "base": {"ref": "feature-a"}}}),
    ("main-again", "push", {"ref": "refs/heads/main"}),
]


@pytest.fixture(scope="module")
def scopes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scopes")
    store, home = tmp / "store", tmp / "home"
    home.mkdir()
    repo = consumer(tmp / "consumer", SCOPES)
    runs = {}
    for role, event, payload in SCOPE_RUNS:
        run = run_workflow(repo, repo / ".github" / "workflows" / SCOPES.name, event=event,
                           payload={**payload, "repository": {"default_branch": "main"}},
                           env={"CACHE_DIR": str(store), "HOME": str(home), "ROLE": role})
        assert run.job("scoped").result == "success", run.job("scoped").text
        runs[role] = run
    return runs


def found(scopes, role: str, probe: str) -> tuple[str, str]:
    """(matched key, who saved it) for a probe restore in one role's run; ('', 'none') on a miss."""
    run = scopes[role]
    return (outputs(run, "scoped", probe).get("cache-matched-key", ""),
            outputs(run, "scoped", f"{probe}-seen").get("who", ""))


@workflow
def test_scope_default_branch_entries_are_restored_on_other_branches(scopes):
    for role in ("feature-a", "feature-b", "pr"):
        assert found(scopes, role, "p-main") == ("scope-main", "main-first"), role


@workflow
def test_scope_a_branch_restores_its_own_entries(scopes):
    assert found(scopes, "feature-a", "p-feature-a") == ("scope-feature-a", "feature-a")
    assert found(scopes, "feature-b", "p-feature-b") == ("scope-feature-b", "feature-b")
    assert found(scopes, "pr", "p-pr") == ("scope-pull-request", "pr")


@workflow
def test_scope_a_sibling_branch_entry_is_never_restored(scopes):
    assert found(scopes, "feature-b", "p-feature-a") == ("", "none")
    assert found(scopes, "feature-b", "p-poison") == ("", "none")
    assert found(scopes, "feature-b", "p-feature-prefix") == ("scope-feature-b", "feature-b")
    assert found(scopes, "feature-a", "p-feature-b") == ("", "none")


@workflow
def test_scope_the_default_branch_never_restores_a_branch_or_pull_request_entry(scopes):
    for probe in ("p-feature-a", "p-feature-b", "p-pr", "p-feature-prefix"):
        assert found(scopes, "main-again", probe) == ("", "none"), probe
    assert cache_hit(scopes["main-again"], "scoped", "p-feature-prefix") == ""


@workflow
def test_scope_a_pull_request_restores_its_base_branch_entries(scopes):
    assert found(scopes, "pr", "p-feature-a") == ("scope-feature-a", "feature-a")
    assert found(scopes, "pr", "p-feature-prefix") == ("scope-feature-a", "feature-a")
    assert found(scopes, "pr", "p-feature-b") == ("", "none")


@workflow
def test_scope_search_priority_current_branch_before_the_default_branch(scopes):
    """The docs' "Example of search priority": every key in the feature branch (a restore-key prefix
    match too) before any key in the default branch, where the primary key matches exactly."""
    assert found(scopes, "main-first", "p-priority") == ("scope-prio-exact", "main-first")
    assert found(scopes, "feature-a", "p-priority") == ("scope-prio-feature", "feature-a")
    assert cache_hit(scopes["feature-a"], "scoped", "p-priority") == "false"
    assert found(scopes, "feature-b", "p-priority") == ("scope-prio-exact", "main-first")


@workflow
def test_scope_a_branch_saving_the_default_branch_key_first_cannot_poison_it(scopes):
    run = scopes["main-again"]
    assert outputs(run, "scoped", "save-scope-poison-again").get("saved") == "true"
    assert found(scopes, "main-again", "p-poison") == ("scope-poison", "main-again")
    assert found(scopes, "feature-a", "p-poison") == ("scope-poison", "feature-a")


# --- matching, key limits and globs through the CLI (no runner needed) ---------------------------------

@pytest.fixture
def cache(tmp_path):
    """save(key, files, *paths) and restore(key, *restore_keys, path=...) against one fresh store."""
    store, work = tmp_path / "store", tmp_path / "work"
    work.mkdir()

    class Cache:
        def run_restore(self, key: str, *restore_keys: str, paths=("deps",)) -> subprocess.CompletedProcess:
            shutil.rmtree(work)
            work.mkdir()
            argv = ["restore", "--key", key, "--cache-dir", str(store), "--workspace", str(work)]
            argv += [arg for path in paths for arg in ("--path", path)]
            return cli(*argv, *[arg for rk in restore_keys for arg in ("--restore-key", rk)])

        def save(self, key: str, files: dict[str, str], *paths: str) -> subprocess.CompletedProcess:
            shutil.rmtree(work)
            for name, text in files.items():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                (work / name).write_text(text)
            argv = ["save", "--key", key, "--cache-dir", str(store), "--workspace", str(work)]
            return cli(*argv, *[arg for path in paths or ("deps",) for arg in ("--path", path)])

        def restore(self, key: str, *restore_keys: str, paths=("deps",)) -> dict:
            done = self.run_restore(key, *restore_keys, paths=paths)
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout.splitlines()[-1])

        def files(self) -> list[str]:
            return sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if not p.is_dir())

    return Cache()


def test_matching_an_exact_key_beats_a_newer_prefix_match(cache):
    cache.save("node-a", {"deps/v": "exact"})
    cache.save("node-ab", {"deps/v": "newer"})
    found = cache.restore("node-a")
    assert (found["cache-matched-key"], found["cache-hit"]) == ("node-a", True)


def test_matching_the_primary_key_is_also_prefix_matched(cache):
    """Docs: "If no exact match is found, it will search for partial matches of the key"."""
    cache.save("deps-linux-1234", {"deps/v": "x"})
    found = cache.restore("deps-linux-")
    assert (found["cache-matched-key"], found["cache-hit"]) == ("deps-linux-1234", False)


def test_matching_the_newest_of_several_prefix_matches_wins(cache):
    for key in ("npm-feature-c", "npm-feature-a", "npm-feature-b"):  # b is the newest, not the last name
        cache.save(key, {"deps/v": key})
    found = cache.restore("npm-feature-zzz", "npm-feature-")
    assert found["cache-matched-key"] == "npm-feature-b"


def test_matching_restore_keys_are_tried_in_order(cache):
    cache.save("npm-feature-old", {"deps/v": "old"})
    cache.save("npm-other-new", {"deps/v": "new"})
    assert cache.restore("npm-feature-x1", "npm-feature-", "npm-")["cache-matched-key"] == "npm-feature-old"
    assert cache.restore("npm-x", "npm-")["cache-matched-key"] == "npm-other-new"


def test_matching_an_exact_match_ignores_case(cache):
    cache.save("Linux-Node-ABC", {"deps/v": "x"})
    found = cache.restore("linux-node-abc")
    assert (found["cache-matched-key"], found["cache-hit"]) == ("Linux-Node-ABC", True)


def test_cache_version_the_same_key_with_other_paths_is_another_entry(cache):
    assert cache.save("primes", {"prime-numbers/p": "2 3 5"}, "prime-numbers").returncode == 0
    assert cache.restore("primes", paths=("numbers",))["cache-matched-key"] == ""
    saved = cache.save("primes", {"numbers/n": "1 2 3"}, "numbers")
    assert saved.returncode == 0 and json.loads(saved.stdout.splitlines()[-1])["saved"] is True
    assert cache.restore("primes", paths=("prime-numbers",))["cache-matched-key"] == "primes"
    assert cache.files() == ["prime-numbers/p"]


def test_key_validation_keys_are_at_most_512_characters(cache):
    assert cache.save(KEY_512, {"deps/v": "x"}).returncode == 0
    assert cache.restore(KEY_512)["cache-hit"] is True
    refused = cache.save(KEY_513, {"deps/v": "x"})
    assert "Key Validation Error" in refused.stderr


def test_key_validation_keys_cannot_contain_commas(cache):
    refused = cache.save("a,b", {"deps/v": "x"})
    assert "Key Validation Error" in refused.stderr and "a,b" in refused.stderr


def test_key_validation_keys_are_limited_to_a_maximum_of_10(cache):
    cache.save("k-0", {"deps/v": "x"})
    assert cache.restore("k-x", *[f"k-{i}" for i in range(9)])["cache-matched-key"] == "k-0"
    refused = cache.run_restore("k-x", *[f"k-{i}" for i in range(10)])
    assert refused.returncode != 0 and "Key Validation Error" in refused.stderr


def test_glob_patterns_question_mark_brackets_and_whole_directories(cache):
    files = {"deps/q1.md": "1", "deps/q22.md": "2", "deps/a.cfg": "a", "deps/c.cfg": "c",
             "deps/tree/.hidden": "h", "deps/tree/sub/x": "x", "deps/other": "o"}
    assert cache.save("globs", files, "deps/q?.md", "deps/[ab].cfg", "deps/tree").returncode == 0
    cache.restore("globs", paths=("deps/q?.md", "deps/[ab].cfg", "deps/tree"))
    assert cache.files() == ["deps/a.cfg", "deps/q1.md", "deps/tree/.hidden", "deps/tree/sub/x"]
