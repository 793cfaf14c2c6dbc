"""prepare-workspace and restore-workspace read one table each: the step and the CLI make the same
request from the same values, with the same defaults, and a bad value is exit 2 naming it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ci_actions import artifact, cache, cli, declared
from ci_actions.artifact import RunId
from ci_actions.store.keys import Scope
from ci_actions.workspace import Where
from prepare_workspace import inputs as prepare_inputs
from restore_workspace import inputs as restore_inputs

ROOT = Path(__file__).parents[2]
WHERE = Where(Path("/ws"), RunId("acme/app", "7", 1), Scope("refs/heads/main"))
REQUIRED = {"workspace prepare": {"package-dirs": "backend\nfrontend"}, "workspace restore": {}}
TABLES = {"workspace prepare": prepare_inputs, "workspace restore": restore_inputs}


def from_step(command: str, given: dict[str, str]):
    module = TABLES[command]
    values = declared.read(module.INPUTS, lambda name: {**REQUIRED[command], **given}.get(name, ""))
    return module.request(values, WHERE)


def from_cli(command: str, *flags: str):
    required = [a for name, text in REQUIRED[command].items() for line in text.splitlines()
                for a in (TABLES[command].INPUTS[name].option, line)]
    args = cli.build_parser("workspace").parse_args([*command.split(), "--workspace", "/ws", "--run-id", "7",
                                                     *required, *flags])
    return TABLES[command].request(declared.from_args(args), WHERE)


@pytest.mark.parametrize("command", list(TABLES))
def test_the_step_and_the_cli_make_the_same_request_by_default(command):
    assert from_step(command, {}) == from_cli(command)


def test_the_defaults_are_the_ones_action_yml_states():
    prepared = from_step("workspace prepare", {})
    assert prepared.package_dirs == ["backend", "frontend"] and prepared.install_command == ["npm", "ci"]
    assert (prepared.exclude, prepared.retention, prepared.link_mode) == (["node_modules"], 86400, "auto")
    assert prepared.generate_command is None and prepared.prod_layer is False
    assert prepared.cache_dir == cache.default_cache_dir()
    assert prepared.workspace_root == artifact.default_root()
    restored = from_step("workspace restore", {})
    assert (restored.layer, restored.clean, restored.shared_store) == ("all", True, False)
    assert restored.commands.install == ("npm", "ci") and restored.commands.generate is None


def test_clean_is_on_in_both_and_off_by_the_same_choice():
    assert from_cli("workspace restore").clean is True
    assert from_cli("workspace restore", "--no-clean").clean is False
    assert from_step("workspace restore", {"clean": "false"}).clean is False


def test_given_values_mean_the_same_in_the_step_and_the_cli(tmp_path):
    given = {"cache-dir": "~/store", "workspace-root": str(tmp_path), "retention": "2h", "link-mode": "copy",
             "install-command": "npm ci --no-audit", "prisma-generate-command": "npx prisma generate",
             "exclude": "node_modules\ndist", "prisma-schema": "backend/prisma/schema.prisma",
             "prod-layer": "true", "shared-store": "true"}
    flags = [a for name, text in given.items() if name not in ("prod-layer", "shared-store")
             for line in text.splitlines() for a in (prepare_inputs.INPUTS[name].option, line)]
    step = from_step("workspace prepare", given)
    assert step == from_cli("workspace prepare", *flags, "--prod-layer", "--shared-store")
    assert step.cache_dir == Path.home() / "store" and step.exclude == ["node_modules", "dist"]


@pytest.mark.parametrize(("module", "name", "value", "said"), [
    ("prepare_workspace", "retention", "1x", "Input 'retention' is not a duration: '1x'"),
    ("prepare_workspace", "package-dirs", "", "Input required and not supplied: package-dirs"),
    ("restore_workspace", "clean", "yes", "Input 'clean' is not a boolean: 'yes'"),
    ("restore_workspace", "layer", "dev", "Input 'layer' is 'dev'; use one of: all, prod"),
])
def test_a_bad_input_fails_the_step_with_exit_2_and_one_error_naming_it(tmp_path, module, name, value, said):
    action = ROOT / "actions" / module.replace("_", "-")
    output = tmp_path / "output"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))},
           "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(action)]), "GITHUB_OUTPUT": str(output),
           "GITHUB_WORKSPACE": str(tmp_path), "INPUT_PACKAGE_DIRS": "app",
           "INPUT_CACHE_DIR": str(tmp_path / "store"), "INPUT_WORKSPACE_ROOT": str(tmp_path / "runs"),
           f"INPUT_{name.upper().replace('-', '_')}": value}
    done = subprocess.run([sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    errors = [line for line in done.stdout.splitlines() if line.startswith("::error")]
    assert done.returncode == 2 and len(errors) == 1 and said in errors[0], done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "workspace-ready<<" in output.read_text()
    assert not (tmp_path / "store").exists() and not (tmp_path / "runs").exists()
