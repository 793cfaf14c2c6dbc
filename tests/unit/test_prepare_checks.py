"""Every prepare input is checked before any install: one message per mistake, naming the input."""

import json
import subprocess
import sys
import time

import pytest

from ci_actions.artifact import RunId
from ci_actions.store.keys import Scope
from ci_actions.workspace import Job, StoreEntry, WorkspaceError, complete
from prepare_workspace.prepare import PrepareRequest, prepare

SCHEMA = 'generator client {\n  provider = "prisma-client-js"\n}\ndatasource db { provider = "postgresql" }\n'


@pytest.fixture
def ws(tmp_path):
    """backend (with prisma in its lock) and frontend; an install that leaves a trace if it ever runs."""
    root = tmp_path / "ws"
    for name, lock_packages in (("backend", {"node_modules/prisma": {"version": "6.19.0"}}),
                                ("frontend", {})):
        package = root / name
        package.mkdir(parents=True)
        (package / "package.json").write_text(json.dumps({"name": name}))
        (package / "package-lock.json").write_text(json.dumps(
            {"lockfileVersion": 3, "packages": {"": {"name": name}, **lock_packages}}))
    (root / "backend" / "prisma").mkdir()
    (root / "backend" / "prisma" / "schema.prisma").write_text(SCHEMA)
    return root


def attempt(ws, package_dirs, schemas=(), run_id="1"):
    trace = ws.parent / "installed"
    install = [sys.executable, "-c", f"open({str(trace)!r}, 'a').write('x')"]
    request = PrepareRequest(ws, list(package_dirs), install, False, list(schemas), None, ws.parent / "store",
                             ws.parent / "runs", ["node_modules"], 3600.0, "copy", RunId("a/b", run_id, 1))
    return prepare(request), trace


@pytest.mark.parametrize("dirs, schemas, message", [
    (["fronted"], [], r"package-dirs: 'fronted' is not a directory in .*did you mean 'frontend'\?"),
    (["../frontend"], [], r"package-dirs: '\.\./frontend' must be a directory inside the workspace"),
    (["/etc"], [], r"package-dirs: '/etc' must be a directory inside the workspace"),
    (["backend/prisma"], [], r"package-dirs: backend/prisma has no package.json"),
    (["backend", "backend/"], [], r"package-dirs: backend is listed twice"),
    ([], [], r"package-dirs: list at least one package directory"),
    (["backend"], ["prisma/schema.prisma"],
     r"prisma-schema: prisma/schema\.prisma does not exist .*did you mean backend/prisma/schema\.prisma\?"),
    (["backend"], ["backend/prisma"], r"prisma-schema: backend/prisma is a directory; name the schema file"),
    (["frontend"], ["backend/prisma/schema.prisma"],
     r"prisma-schema: backend/prisma/schema\.prisma is not inside any of package-dirs \(frontend\)"),
    (["backend"], ["../x/schema.prisma"], r"prisma-schema: '\.\./x/schema\.prisma' must be a path inside"),
])
def test_a_bad_input_is_named_before_anything_is_installed(ws, dirs, schemas, message):
    with pytest.raises(WorkspaceError, match=message):
        attempt(ws, dirs, schemas)
    assert not (ws.parent / "installed").exists() and not (ws.parent / "store").exists()


def test_a_package_dir_reached_through_a_link_is_refused_before_installing(ws):
    outside = ws.parent / "outside" / "app"
    outside.mkdir(parents=True)
    (outside / "package.json").write_text("{}")
    (outside / "package-lock.json").write_text('{"lockfileVersion": 3}')
    (ws / "pkgs").symlink_to(ws.parent / "outside")
    with pytest.raises(WorkspaceError, match="package-dirs: 'pkgs/app' is reached through a symbolic link"):
        attempt(ws, ["pkgs/app"])
    assert not (ws.parent / "installed").exists()


def test_prisma_missing_from_the_lock_is_named_before_installing(ws):
    (ws / "frontend" / "schema.prisma").write_text(SCHEMA)
    with pytest.raises(WorkspaceError, match="the `prisma` package is not in frontend's lock file"):
        attempt(ws, ["frontend"], ["frontend/schema.prisma"])
    assert not (ws.parent / "installed").exists()


def test_a_missing_lock_is_named(ws):
    (ws / "frontend" / "package-lock.json").unlink()
    with pytest.raises(WorkspaceError, match=r"frontend: no package-lock\.json"):
        attempt(ws, ["backend", "frontend"])
    assert not (ws.parent / "installed").exists()


def test_a_reused_run_id_is_refused_before_the_deps_step(ws):
    attempt(ws, ["frontend"])
    installs = (ws.parent / "installed").read_text()
    (ws / "frontend" / "package.json").write_text('{"name": "frontend", "version": "2"}')  # would miss
    with pytest.raises(WorkspaceError, match="an artifact for a/b run 1 attempt 1 already exists"):
        attempt(ws, ["frontend"])
    assert (ws.parent / "installed").read_text() == installs


def test_checking_costs_milliseconds(ws):
    """Reported, not asserted as a timing: the issue's figure is under 50 ms."""
    from prepare_workspace import checks
    started = time.perf_counter()
    checks.check(ws, ["backend", "frontend"], ["backend/prisma/schema.prisma"], ws.parent / "runs" / "x",
                 RunId("a/b", "1", 1))
    print(f"input checks: {(time.perf_counter() - started) * 1000:.1f} ms")


def test_a_lock_that_is_not_an_object_and_a_schema_that_is_not_text_are_named(ws):
    (ws / "frontend" / "package-lock.json").write_text("[]")
    with pytest.raises(WorkspaceError, match=r"frontend/package-lock\.json is not a lock file"):
        attempt(ws, ["frontend"])
    (ws / "backend" / "prisma" / "schema.prisma").write_bytes(b"generator \xff\xfe {}")
    with pytest.raises(WorkspaceError, match=r"prisma-schema: backend/prisma/schema\.prisma cannot be read"):
        attempt(ws, ["backend"], ["backend/prisma/schema.prisma"])
    assert not (ws.parent / "installed").exists()


def test_a_malformed_cli_flag_is_exit_2_naming_it_not_a_traceback(ws):
    for flag, value, said in (("--install-command", "npm 'ci", "is not a valid command line"),
                              ("--retention", "1x", "is not a duration: '1x'"),
                              ("--link-mode", "fast", "is 'fast'; use one of: auto, copy, hardlink")):
        done = subprocess.run([sys.executable, "-m", "ci_actions", "workspace", "prepare", "--workspace",
                               str(ws), "--package-dir", "frontend", "--run-id", "5", "--workspace-root",
                               str(ws.parent / "runs"), "--cache-dir", str(ws.parent / "store"), flag, value],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 2 and f"error: argument {flag}: {said}" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (ws.parent / "runs").exists() and not (ws.parent / "store").exists()


def test_a_prisma_miss_never_deletes_what_the_generator_output_already_holds(ws, tmp_path):
    """`output = "../src"` passed the checks; a miss deleted backend/src before generating."""
    (ws / "backend" / "src").mkdir()
    (ws / "backend" / "src" / "app.ts").write_text("the user's code\n")
    entry = StoreEntry("prisma", "backend", "k-src", ("backend/src",), ("true",),
                       "backend/prisma/schema.prisma")
    complete([Job(entry, ws, entry.command)], tmp_path / "store", "copy", scope=Scope("refs/heads/main"))
    assert (ws / "backend" / "src" / "app.ts").read_text() == "the user's code\n"
