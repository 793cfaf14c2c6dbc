"""cache-local/save: save only."""

from cache_local import steps

steps.guarded(steps.save)
