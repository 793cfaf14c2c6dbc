"""build-images: build once with docker compose, tag with the commit, verify, prune what no rollback needs."""
