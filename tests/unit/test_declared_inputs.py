"""Every action's inputs are declared once: its action.yml, its step and its CLI flags read one table,
and a bad value is exit 2 naming the flag, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ci_actions import cli, declared
from ci_actions.declared import Input, InputError
from tests.action_conformance import REPO_ROOT, load, package_of

PRODUCT_ACTIONS = sorted((REPO_ROOT / "actions").rglob("action.yml"))
# Values some input somewhere rejects; an input that takes all of them (a name, a path) takes anything.
HOSTILE = ["nope", "-1", "1.5", "'unclosed", "10X", "{}", "[1]", "x" * 600, "no separator", "a/b c",
           "http://", "../x", "x:"]


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.parent.relative_to(REPO_ROOT)) for p in paths]


def table_of(action: Path) -> dict[str, Input]:
    return importlib.import_module(f"{package_of(action).name}.inputs").INPUTS


def _words(text: str) -> str:
    return " ".join(str(text).split())


@pytest.mark.parametrize("action", PRODUCT_ACTIONS, ids=_ids(PRODUCT_ACTIONS))
def test_action_yml_says_what_the_table_declares(action):
    table = table_of(action)
    for name, entry in (load(action).get("inputs") or {}).items():
        assert name in table, f"{name} is in {action} but not declared in the package's INPUTS"
        spec = table[name]
        assert str(entry.get("default", "")) == spec.default, name
        assert bool(entry.get("required", False)) == spec.required, name
        assert _words(entry["description"]) == _words(spec.help), name


@pytest.mark.parametrize("package", sorted({package_of(a) for a in PRODUCT_ACTIONS}), ids=lambda p: p.name)
def test_every_declared_input_is_some_action_yml_input(package):
    names = {n for a in PRODUCT_ACTIONS if package_of(a) == package for n in load(a).get("inputs") or {}}
    table = importlib.import_module(f"{package.name}.inputs").INPUTS
    assert set(table) - names == set()


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every runnable subcommand, as its argv prefix and parser."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaves(sub, (*path, name))


def _rejected(spec: Input) -> str | None:
    for text in HOSTILE:
        try:
            spec.parse_one(text)
        except ValueError:
            return text
    return None


LEAVES = list(_leaves(cli.build_parser()))
DECLARED = [(path, spec) for path, parser in LEAVES for spec in parser.get_default("declared_inputs") or ()]
CHECKED = [(path, spec, bad) for path, spec in DECLARED
           if spec.parse is not declared.boolean and (bad := _rejected(spec)) is not None]


def test_the_commands_declare_their_flags_and_most_can_be_fed_a_bad_value():
    assert len({path for path, _ in DECLARED}) >= 8
    assert len(CHECKED) >= 25 and len(CHECKED) >= len(DECLARED) // 3


@pytest.mark.parametrize(("path", "spec", "bad"), CHECKED,
                         ids=[f"{' '.join(p)} {s.option}" for p, s, _ in CHECKED])
def test_a_bad_flag_value_is_exit_2_naming_the_flag(path, spec, bad, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main([*path, spec.option, bad])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {spec.option}: " in err, err


def test_no_traceback_reaches_the_shell():
    result = subprocess.run([sys.executable, "-m", "ci_actions", "images", "build", "--keep", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --keep: must be a whole number, at least 1 (got '0')" in result.stderr


def test_the_step_reads_the_same_table_with_the_same_messages():
    keep = Input("keep", "k", default="5", parse=declared.number(1, whole=True))
    table = declared.table(keep, Input("files", "f", default="a\nb", many=True))
    assert declared.read(table, lambda _: "") == {"keep": 5, "files": ["a", "b"]}
    with pytest.raises(InputError, match=r"^Input 'keep' must be a whole number, at least 1 \(got '0'\)$"):
        declared.read(table, lambda name: "0" if name == "keep" else "")
    with pytest.raises(InputError, match=r"^Input required and not supplied: key$"):
        declared.read(declared.table(Input("key", "k", required=True)), lambda _: " ")


def test_a_bad_line_of_a_many_input_is_named_by_its_number_not_its_content():
    table = declared.table(Input("args", "a", many=True, parse=declared.pair("=")))
    with pytest.raises(InputError, match=r"^Input 'args' line 2 is not KEY=VALUE$") as caught:
        declared.read(table, lambda _: "A=1\n\ns3cr3t\n")
    assert "s3cr3t" not in str(caught.value)


def test_flags_carry_the_inputs_help_and_default():
    result = subprocess.run([sys.executable, "-m", "ci_actions", "images", "prune", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    text = _words(result.stdout)
    assert "--keep KEEP How many releases (commits) of images to retain" in text
    assert "(default: 5)" in text


GITHUB_READ = re.compile(r"""(environ|getenv)\b[^\n]*["'](GITHUB_|INPUT_)|GITHUB_EVENT_PATH""")


def test_only_the_runner_module_reads_githubs_variables():
    sources = [py for root in ("actions", "shared") for py in (REPO_ROOT / root).rglob("*.py")]
    readers = [str(py.relative_to(REPO_ROOT)) for py in sources
               if py.name != "runner.py" and GITHUB_READ.search(py.read_text())]
    assert readers == []
