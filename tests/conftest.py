"""Fixtures shared by every test folder (each lives in tests/support/ and is registered here)."""

pytest_plugins = ["tests.support.nginx"]
