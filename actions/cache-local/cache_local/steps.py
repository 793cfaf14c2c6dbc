"""The GitHub side of cache-local: inputs in, cache operations, outputs, logs and summary out."""

from __future__ import annotations

from collections.abc import Callable

from cache_local import inputs
from ci_actions import cache, runner
from ci_actions.paths import PathError
from ci_actions.store.keys import InvalidKey, is_exact_match

SAVE_ON_FAILURE_ENV = "CI_ACTIONS_CACHE_SAVE_ON_FAILURE"  # read by the post-if of action.yml


def guarded(step: Callable[[], None]) -> None:
    """Bad input fails the step with one clear error; cache trouble was already a warning."""
    try:
        step()
    except (runner.InputError, InvalidKey, PathError) as exc:
        runner.fail(str(exc))


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def restore(*, for_post: bool) -> None:
    """Restore (or only look up) and set the outputs; `for_post` keeps what the post step needs."""
    spec = inputs.spec(with_restore_keys=True)
    lookup_only = runner.get_boolean_input("lookup-only")
    fail_on_miss = runner.get_boolean_input("fail-on-cache-miss")
    outcome = cache.restore(spec, link_mode=inputs.link_mode(), lookup_only=lookup_only)
    if not spec.scope.own:
        runner.warning(cache.NO_SCOPE)
    for warning in outcome.warnings:
        runner.warning(warning)
    # actions/cache's strings: `true` exact, `false` a restore-key match, empty on a miss (#1466).
    runner.set_output("cache-hit", "" if outcome.matched_key is None else str(outcome.hit).lower())
    runner.set_output("exact-match", str(outcome.hit).lower())
    runner.set_output("cache-primary-key", spec.key)
    runner.set_output("cache-matched-key", outcome.matched_key or "")
    runner.set_output("restored-files", outcome.files)
    runner.set_output("restored-bytes", outcome.bytes)
    runner.set_output("restore-seconds", f"{outcome.seconds:.3f}")
    if for_post:
        runner.save_state("primary-key", spec.key)
        runner.save_state("matched-key", outcome.matched_key or "")
        if runner.get_boolean_input("save-on-failure"):
            runner.export_variable(SAVE_ON_FAILURE_ENV, "true")
    if outcome.matched_key is None:
        tried = ", ".join([spec.key, *spec.restore_keys])
        if fail_on_miss:
            runner.fail(f"Failed to restore cache entry. Exiting as fail-on-cache-miss is set. "
                        f"Input key: {spec.key} (tried: {tried})")
        runner.info(f"Cache not found for input keys: {tried}")
        summary = f"miss for `{spec.key}`"
    elif lookup_only:
        runner.info(f"Cache found and can be restored from key: {outcome.matched_key}")
        summary = f"found `{outcome.matched_key}` (lookup only)"
    else:
        runner.info(f"Cache restored from key: {outcome.matched_key} ({outcome.files} files, "
                    f"{_megabytes(outcome.bytes)} in {outcome.seconds:.2f}s)")
        kind = "hit" if outcome.hit else "partial hit"
        summary = f"{kind} `{outcome.matched_key}`: {outcome.files} files, {_megabytes(outcome.bytes)}, " \
                  f"{outcome.seconds:.2f}s"
    runner.append_summary(f"- cache-local restore: {summary}\n")


def save(*, key: str | None = None) -> cache.SaveResult:
    """Save the paths under `key` (the main step's primary key, in post) and prune if over budget.

    As actions/cache's save, a missing or invalid key or path is a warning and the job goes on; only
    a malformed option (a boolean, a size) fails the step."""
    spec = inputs.spec(with_restore_keys=False, key=key, required=False)
    update = runner.get_boolean_input("update")
    budget = inputs.budget()
    try:
        if not spec.paths:
            raise runner.InputError("Input required and not supplied: path")
        outcome = cache.save(spec, update=update)
    except (runner.InputError, InvalidKey, PathError) as exc:
        outcome = cache.SaveResult(False, "Cache not saved.", warnings=[str(exc)])
    if not spec.scope.own:
        outcome.warnings.insert(0, cache.NO_SCOPE)
    for warning in outcome.warnings:
        runner.warning(warning)
    runner.info(outcome.message)
    if outcome.saved:
        runner.append_summary(f"- cache-local save `{spec.key}`: {outcome.files} files, "
                              f"{_megabytes(outcome.bytes)} ({_megabytes(outcome.new_bytes)} new), "
                              f"{outcome.seconds:.2f}s\n")
    report, warnings = cache.enforce_budget(spec.cache_dir, max_bytes=budget.max_bytes,
                                            max_age=budget.max_age, shared=spec.shared)
    for warning in warnings:
        runner.warning(warning)
    if report and (report.evicted or report.bytes_freed):
        runner.info(f"Pruned {len(report.evicted)} cache entries, freed {_megabytes(report.bytes_freed)} "
                    f"({_megabytes(report.orphan_bytes)} left by saves that died or failed)")
    return outcome


def set_save_outputs(outcome: cache.SaveResult) -> None:
    """The save action's outputs (a post step has no one to read them, so it sets none)."""
    runner.set_output("saved", "true" if outcome.saved else "false")
    runner.set_output("saved-files", outcome.files)
    runner.set_output("saved-bytes", outcome.bytes)
    runner.set_output("new-bytes", outcome.new_bytes)
    runner.set_output("save-seconds", f"{outcome.seconds:.3f}")


def post() -> None:
    """The main action's post step: save unless the primary key was restored exactly."""
    primary = runner.get_state("primary-key")
    if not primary:
        runner.info("The restore step did not run to the end; nothing to save.")
        return
    if is_exact_match(primary, runner.get_state("matched-key")):
        runner.info(f"Cache hit occurred on the primary key {primary}, not saving cache.")
        return
    save(key=primary)
