"""The GitHub side of cache-local: inputs in, cache operations, outputs, logs and summary out."""

from __future__ import annotations

from collections.abc import Callable

from cache_local import inputs
from cache_local.inputs import INPUTS, RESTORE, SAVE_OPTIONS, megabytes
from ci_actions import cache, runner, timing
from ci_actions.paths import PathError
from ci_actions.store.keys import InvalidKey, is_exact_match

SAVE_ON_FAILURE_ENV = "CI_ACTIONS_CACHE_SAVE_ON_FAILURE"  # read by the post-if of action.yml
BAD_INPUT = (runner.InputError, InvalidKey, PathError)


def guarded(step: Callable[[], None]) -> None:
    """Bad input fails the step with one `::error::` naming it (exit 2); cache trouble was already a
    warning. The step's phases go to the run's timing records."""
    runner.start_timing("cache-local")
    try:
        step()
    except BAD_INPUT as exc:
        runner.fail(str(exc), status=2)


def restore(*, for_post: bool) -> None:
    """Restore (or only look up) and set the outputs; `for_post` (the main action, whose inputs are
    all read now, its save's too) keeps what the post step needs."""
    values = runner.read_inputs(INPUTS, None if for_post else RESTORE)
    spec = inputs.spec(values, runner.workspace(), runner.run_context().cache_scope())
    with timing.phase("lookup" if values["lookup-only"] else "restore") as record:
        outcome = cache.restore(spec, link_mode=values["link-mode"], lookup_only=values["lookup-only"])
        record.update(hit=outcome.hit, bytes_restored=0 if values["lookup-only"] else outcome.bytes)
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
        if values["save-on-failure"]:
            runner.export_variable(SAVE_ON_FAILURE_ENV, "true")
    if outcome.matched_key is None:
        tried = ", ".join([spec.key, *spec.restore_keys])
        if values["fail-on-cache-miss"]:
            runner.fail(f"Failed to restore cache entry. Exiting as fail-on-cache-miss is set. "
                        f"Input key: {spec.key} (tried: {tried})")
        runner.info(f"Cache not found for input keys: {tried}")
        summary = f"miss for `{spec.key}`"
    elif values["lookup-only"]:
        runner.info(f"Cache found and can be restored from key: {outcome.matched_key}")
        summary = f"found `{outcome.matched_key}` (lookup only)"
    else:
        runner.info(f"Cache restored from key: {outcome.matched_key} ({outcome.files} files, "
                    f"{megabytes(outcome.bytes)} in {outcome.seconds:.2f}s)")
        kind = "hit" if outcome.hit else "partial hit"
        summary = f"{kind} `{outcome.matched_key}`: {outcome.files} files, {megabytes(outcome.bytes)}, " \
                  f"{outcome.seconds:.2f}s"
    runner.append_summary(f"- cache-local restore: {summary}\n")


def save(*, key: str = "") -> cache.SaveResult:
    """Save the paths under `key` (the main step's primary key, in post) and prune if over budget.

    As actions/cache's save, a missing or invalid key or path is a warning and the job goes on; only
    a malformed option (a boolean, a size) fails the step."""
    values = runner.read_inputs(INPUTS, SAVE_OPTIONS)
    scope = runner.run_context().cache_scope()
    try:
        values = {**values, "key": key, **runner.read_inputs(INPUTS, ("path",) if key else ("key", "path"))}
        with timing.phase("save") as record:
            outcome = cache.save(inputs.spec(values, runner.workspace(), scope), update=values["update"])
            record.update(bytes_saved=outcome.bytes if outcome.saved else 0, saved=outcome.saved)
    except BAD_INPUT as exc:
        outcome = cache.SaveResult(False, "Cache not saved.", warnings=[str(exc)])
    if not scope.own:
        outcome.warnings.insert(0, cache.NO_SCOPE)
    for warning in outcome.warnings:
        runner.warning(warning)
    runner.info(outcome.message)
    if outcome.saved:
        runner.append_summary(f"- cache-local save `{values['key']}`: {outcome.files} files, "
                              f"{megabytes(outcome.bytes)} ({megabytes(outcome.new_bytes)} new), "
                              f"{outcome.seconds:.2f}s\n")
    pruned, warnings = inputs.keep_budget(values)
    for warning in warnings:
        runner.warning(warning)
    if pruned:
        runner.info(pruned)
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
