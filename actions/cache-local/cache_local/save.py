"""cache-local/save: save only."""

from cache_local import steps

steps.guarded(lambda: steps.set_save_outputs(steps.save()))
