"""House rules every action.yml must keep, as pure checks that return the problems they find."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPRESSION = re.compile(r"\$\{\{")
INPUT_REF = re.compile(r"^\$\{\{\s*inputs\.([\w-]+)\s*\}\}$")
STEP_OUTPUT_REF = re.compile(r"^\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}$")
SET_OUTPUT_CALL = re.compile(r"""set_output\(\s*["']([\w-]+)["']""")
LAUNCH_RUN = re.compile(r'shared/launch" "\$GITHUB_ACTION_PATH(?P<up>(?:/\.\.)*)"(?: (?P<module>[\w.]+))?')
LAUNCH_JS = re.compile(
    r"""require\("\.\./\.\./shared/launch/launch\.js"\)\(__dirname, "(?P<module>[\w.]+)"\)""")


def action_files() -> list[Path]:
    """Every product action, plus the test-only ones that workflows use."""
    roots = [REPO_ROOT / "actions", REPO_ROOT / "tests" / "workflows" / "actions"]
    return sorted(p for root in roots if root.exists() for p in root.rglob("action.yml"))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def env_name(input_name: str) -> str:
    return "INPUT_" + input_name.upper().replace("-", "_")


def is_composite(doc: dict) -> bool:
    return (doc.get("runs") or {}).get("using") == "composite"


def package_of(path: Path) -> Path:
    """The Python package an action runs, found from its launcher call (run: line or node shim)."""
    doc = load(path)
    if is_composite(doc):
        for step in _steps(doc):
            match = LAUNCH_RUN.search(str(step.get("run", "")))
            if match:
                base = path.parent
                for _ in range(match["up"].count("..")):
                    base = base.parent
                module = match["module"] or base.name.replace("-", "_")
                return base / module.split(".")[0]
        raise AssertionError(f"{path}: no step runs shared/launch")
    main = path.parent / doc["runs"]["main"]
    match = LAUNCH_JS.search(main.read_text())
    assert match, f"{main}: does not call launch.js"
    return path.parent / match["module"].split(".")[0]


def _steps(doc: dict) -> list[dict]:
    return (doc.get("runs") or {}).get("steps") or []


def injection_problems(doc: dict) -> list[str]:
    """An expression inside `run:` is pasted into the script before it runs: script injection."""
    return [f"step {i}: `${{{{ }}}}` inside run:; pass the value through env:"
            for i, step in enumerate(_steps(doc)) if EXPRESSION.search(str(step.get("run", "")))]


def expression_problems(doc: dict) -> list[str]:
    """Expressions belong in an input's default, an output's value and the steps; act refuses the
    whole action for one anywhere else ("expressions are not allowed here"), a description included."""
    texts = [("name", doc.get("name")), ("description", doc.get("description"))]
    for kind in ("inputs", "outputs"):
        texts += [(f"{kind[:-1]} {name!r} description", (spec or {}).get("description"))
                  for name, spec in (doc.get(kind) or {}).items()]
    return [f"{where}: `${{{{ }}}}` is not allowed here" for where, text in texts
            if EXPRESSION.search(str(text or ""))]


def input_mapping_problems(doc: dict) -> list[str]:
    """Every declared input reaches Python as INPUT_<NAME> through env:, and nothing else does.

    (A node action's inputs reach the process from the runner itself.)
    """
    if not is_composite(doc):
        return []
    declared = set(doc.get("inputs") or {})
    mapped: dict[str, str] = {}
    for step in _steps(doc):
        for key, value in (step.get("env") or {}).items():
            match = INPUT_REF.match(str(value).strip())
            if match:
                mapped[key] = match.group(1)
    problems = [f"input {name!r} is not passed as {env_name(name)}: ${{{{ inputs.{name} }}}}"
                for name in sorted(declared) if mapped.get(env_name(name)) != name]
    problems += [f"env {key} names undeclared input {name!r}"
                 for key, name in sorted(mapped.items()) if name not in declared]
    return problems


def outputs_set_by_code(package: Path) -> set[str]:
    return {name for py in package.rglob("*.py") for name in SET_OUTPUT_CALL.findall(py.read_text())}


def output_problems(doc: dict, set_by_code: set[str]) -> list[str]:
    """Every output the code sets is declared, and every declared output is set and wired to a step.

    `set_by_code` is what the action's package sets; when several actions share a package, pass it the
    package's outputs minus those declared by its sibling actions.
    """
    declared = doc.get("outputs") or {}
    problems = [f"the code sets output {name!r}, which action.yml does not declare"
                for name in sorted(set_by_code - set(declared))]
    step_ids = {step.get("id") for step in _steps(doc)}
    for name, spec in declared.items():
        if name not in set_by_code:
            problems.append(f"output {name!r} is declared but the code never sets it")
        if not is_composite(doc):
            continue
        match = STEP_OUTPUT_REF.match(str((spec or {}).get("value", "")).strip())
        if not match or match.group(1) not in step_ids or match.group(2) != name:
            problems.append(f"output {name!r} must be `${{{{ steps.<id>.outputs.{name} }}}}` of a step")
    return problems
