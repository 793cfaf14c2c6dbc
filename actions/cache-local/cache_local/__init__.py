"""cache-local: actions/cache on the runner's own disk (main + post, restore/, save/, `ci-actions cache`)."""
