"""cache-local/restore: restore only."""

from cache_local import steps

steps.guarded(lambda: steps.restore(for_post=False))
