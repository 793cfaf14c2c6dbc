#!/usr/bin/env bash
# The no-hang figure: 200 concurrent prepare+restore pairs (400 runs, 2-4 package dirs each) sharing one
# store, each command under a deadline. CI runs a shorter version of the same test.
set -euo pipefail
cd "$(dirname "$0")/.."
STRESS_ROUNDS="${STRESS_ROUNDS:-200}" exec .venv/bin/python -m pytest -p no:cacheprovider -q -s \
    tests/integration/test_workspace_stress.py
