"""Every action.yml validates against GitHub's schema and keeps the house rules; the checks catch breakage."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.action_conformance import (
    REPO_ROOT,
    action_files,
    expression_problems,
    injection_problems,
    input_mapping_problems,
    load,
    output_problems,
    outputs_set_by_code,
    package_of,
)

ACTIONS = action_files()
WORKFLOWS = sorted(
    p for pattern in (".github/workflows/*.yml", "examples/workflows/*.yml", "tests/workflows/*.yml")
    for p in REPO_ROOT.glob(pattern)
)
CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")


def _ids(paths):
    return [str(p.relative_to(REPO_ROOT)) for p in paths]


def _schema_check(schema: str, *paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHECK_JSONSCHEMA, "--builtin-schema", schema, *map(str, paths)],
                          capture_output=True, text=True, check=False)


def test_there_are_actions_to_check():
    assert ACTIONS, "no action.yml found"
    assert WORKFLOWS, "no workflow files found"


def _declared_elsewhere(path: Path, package: Path) -> set[str]:
    """Outputs that sibling actions sharing this package declare (and so may be set by its code)."""
    return {name for other in ACTIONS if other != path and package_of(other) == package
            for name in (load(other).get("outputs") or {})} - set(load(path).get("outputs") or {})


@pytest.mark.parametrize("path", ACTIONS, ids=_ids(ACTIONS))
def test_action_keeps_house_rules(path):
    doc = load(path)
    package = package_of(path)
    assert (package / "__init__.py").exists() or (package / "__main__.py").exists(), package
    result = _schema_check("vendor.github-actions", path)
    assert result.returncode == 0, result.stdout
    assert injection_problems(doc) == []
    assert expression_problems(doc) == []
    assert input_mapping_problems(doc) == []
    assert output_problems(doc, outputs_set_by_code(package) - _declared_elsewhere(path, package)) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=_ids(WORKFLOWS))
def test_workflow_validates(path):
    result = _schema_check("vendor.github-workflows", path)
    assert result.returncode == 0, result.stdout


BROKEN = {
    "name": "broken",
    "description": "every rule broken once",
    "inputs": {"key": {"description": "k"}, "fail-on-cache-miss": {"description": "f"},
               "needs": {"description": "pass ${{ toJSON(needs) }}"}},
    "outputs": {
        "cache-hit": {"description": "h", "value": "${{ steps.main.outputs.cache-hit }}"},
        "stale": {"description": "s", "value": "${{ steps.gone.outputs.stale }}"},
    },
    "runs": {"using": "composite", "steps": [{
        "id": "main", "shell": "bash",
        "env": {"INPUT_KEY": "${{ inputs.key }}", "INPUT_OTHER": "${{ inputs.other }}"},
        "run": "python3 launch --key '${{ inputs.key }}'",
    }]},
}


def test_checks_catch_a_broken_action(tmp_path):
    assert injection_problems(BROKEN) == ["step 0: `${{ }}` inside run:; pass the value through env:"]
    assert expression_problems(BROKEN) == ["input 'needs' description: `${{ }}` is not allowed here"]
    assert input_mapping_problems(BROKEN) == [
        "input 'fail-on-cache-miss' is not passed as "
        "INPUT_FAIL_ON_CACHE_MISS: ${{ inputs.fail-on-cache-miss }}",
        "input 'needs' is not passed as INPUT_NEEDS: ${{ inputs.needs }}",
        "env INPUT_OTHER names undeclared input 'other'",
    ]
    assert output_problems(BROKEN, {"cache-hit", "bytes"}) == [
        "the code sets output 'bytes', which action.yml does not declare",
        "output 'stale' is declared but the code never sets it",
        "output 'stale' must be `${{ steps.<id>.outputs.stale }}` of a step",
    ]
    first = output_problems(BROKEN, {"stale"})[0]
    assert first == "output 'cache-hit' is declared but the code never sets it"
    bad = tmp_path / "action.yml"
    bad.write_text("name: x\nruns:\n  using: composite\n  steps: 3\n")
    result = _schema_check("vendor.github-actions", bad)
    assert result.returncode == 1
    assert "'description' is a required property" in result.stdout
