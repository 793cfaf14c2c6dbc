"""Fixtures shared by every test folder (each lives in tests/support/ and is registered here)."""

import os
import tempfile

pytest_plugins = ["tests.support.nginx"]

# Actions write timing records (and a deploy its ledger) under the state dir: a test run keeps them in
# a folder of its own, never in the user's ~/.local/state. A test that wants its own sets it again.
os.environ.setdefault("CI_ACTIONS_STATE_DIR", tempfile.mkdtemp(prefix="ci-actions-test-state-"))
