"""cache-local (main): restore now; the post step saves."""

from cache_local import steps

steps.guarded(lambda: steps.restore(for_post=True))
