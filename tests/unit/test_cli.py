"""The `ci-actions` command loads only the action it runs, and still lists every one in --help."""

import subprocess
import sys

PROBE = """
import sys
from ci_actions.cli import main
main(sys.argv[1:])
print(sorted(m for m in ("docker", "hotswap_deploy", "build_images", "cache_local") if m in sys.modules))
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True)


def test_a_cache_command_does_not_import_the_other_actions(tmp_path):
    result = run("cache", "list", "--cache-dir", str(tmp_path / "store"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "['cache_local']"


def test_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "ci_actions", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("cache", "deploy", "hash-files", "images", "workspace"):
        assert f"    {command}" in result.stdout


def test_an_unknown_command_names_the_choices():
    result = run("nope")
    assert result.returncode == 2
    assert "invalid choice: 'nope'" in result.stderr and "'cache'" in result.stderr
