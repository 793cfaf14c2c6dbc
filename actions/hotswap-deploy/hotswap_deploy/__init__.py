"""hotswap-deploy: blue-green swaps behind a host proxy, with migrations, health, watch and rollback."""
