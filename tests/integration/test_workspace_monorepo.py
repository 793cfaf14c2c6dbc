"""A real-monorepo-shaped workspace (tests/fixtures/monorepo-prisma6) through prepare and restore with the
real npm and the real Prisma 6 CLI: `api` (Prisma 6, prisma-client-js, an .npmrc) and `web` (an npm
workspaces root with one member). The tree is prepared in one directory, that directory is deleted, and
the tree is restored into another, where each package's own `npm test` must pass.

The generated Prisma 6 client embeds the prepare job's absolute paths (`generator.output.value`,
`sourceFilePath`), and its store key does not. These tests settle that this does not matter: the
client finds its schema, its query compiler, its engine and its .env paths from its own directory
(`config.dirname = __dirname`) wherever it is restored.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ci_actions.artifact import RunId
from ci_actions.workspace import Commands
from prepare_workspace.prepare import PrepareReport, PrepareRequest, prepare
from restore_workspace.restore import RestoreReport, RestoreRequest, restore_workspace

FIXTURE = Path(__file__).parents[1] / "fixtures" / "monorepo-prisma6"
PACKAGES = ["api", "web"]
SCHEMA = "api/prisma/schema.prisma"
CLIENT = Path("api/node_modules/.prisma/client")
# Offline Prisma 6: the CLI checks that its schema and query engines exist before any command, and
# downloads them from binaries.prisma.sh when they do not. Any existing file passes that check;
# `generate` runs neither (the schema is read by Prisma's own wasm, and engineType "client" copies no
# engine). Skipping @prisma/client's postinstall generate leaves the client to prepare's own step.
OFFLINE_PRISMA = {"PRISMA_SCHEMA_ENGINE_BINARY": "/bin/true", "PRISMA_QUERY_ENGINE_LIBRARY": "/bin/true",
                  "PRISMA_SKIP_POSTINSTALL_GENERATE": "1", "CHECKPOINT_DISABLE": "1",
                  "NO_UPDATE_NOTIFIER": "1", "NPM_CONFIG_UPDATE_NOTIFIER": "false"}


@dataclass
class Runner:
    """One runner's store and artifacts, shared by every job of these tests."""

    root: Path
    install: list[str]
    log: Path

    def checkout(self, name: str, schema_edit=None) -> Path:
        workspace = self.root / name / "ws"
        shutil.copytree(FIXTURE, workspace)
        if schema_edit is not None:
            schema = workspace / SCHEMA
            schema.write_text(schema_edit(schema.read_text()))
        return workspace

    def prepare(self, workspace: Path, run_id: str) -> PrepareReport:
        return prepare(PrepareRequest(workspace, PACKAGES, self.install, False, [SCHEMA], None,
                                      self.root / "store", self.root / "runs", ["node_modules"], 86400.0,
                                      "auto", RunId("acme/monorepo", run_id, 1)))

    def restore(self, name: str, run_id: str) -> tuple[Path, RestoreReport]:
        workspace = self.root / name / "ws"
        workspace.mkdir(parents=True)
        report = restore_workspace(RestoreRequest(workspace, self.root / "runs", self.root / "store", "all",
                                                  "auto", RunId("acme/monorepo", run_id, 1),
                                                  Commands(tuple(self.install))))
        return workspace, report

    def installs(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def npm_test(package: Path) -> str:
    result = subprocess.run(["npm", "test"], cwd=package, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, f"npm test failed in {package}:\n{result.stdout}\n{result.stderr}"
    assert "# fail 0" in result.stdout
    return result.stdout


def node(package: Path, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", "-e", script], cwd=package, capture_output=True, text=True, timeout=60,
                          check=False)


@dataclass
class Cold:
    runner: Runner
    prepared: Path  # the prepare job's workspace, deleted once prepared
    report: PrepareReport
    embedded: str  # the prepared client's index.js
    binary_target: str  # Prisma's name for this platform


@pytest.fixture(scope="module")
def cold(tmp_path_factory) -> Cold:
    """The first run on an empty store: a real `npm ci` per package dir and a real `prisma generate`;
    then the prepare job's directory is deleted, as another job on another runner would never see it."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in OFFLINE_PRISMA.items():
            patch.setenv(name, value)
        root = tmp_path_factory.mktemp("monorepo")
        log = root / "installs.log"
        # The real npm ci, wrapped only to count how often it runs.
        install = ["sh", "-c", f'echo "$PWD" >> {log} && exec npm ci "$@"', "npm-ci"]
        runner = Runner(root, install, log)
        workspace = runner.checkout("prepare-job")
        report = runner.prepare(workspace, "1")
        embedded = (workspace / CLIENT / "index.js").read_text()
        target = node(workspace / "api", "require('@prisma/get-platform').getBinaryTargetForCurrentPlatform()"
                                         ".then((target) => process.stdout.write(target))")
        assert target.returncode == 0, target.stderr
        shutil.rmtree(workspace.parent)
        yield Cold(runner, workspace, report, embedded, target.stdout)


@pytest.fixture(autouse=True)
def offline_prisma(monkeypatch):
    for name, value in OFFLINE_PRISMA.items():
        monkeypatch.setenv(name, value)


def test_prepared_in_one_directory_restored_into_another_passes_each_packages_own_tests(cold):
    runner = cold.runner
    assert not cold.report.all_hit and sorted(Path(p).name for p in runner.installs()) == PACKAGES
    # The generated client names the prepare job's workspace, which no longer exists.
    assert f'"sourceFilePath": "{cold.prepared / SCHEMA}"' in cold.embedded
    assert f'"value": "{cold.prepared}/api/node_modules/@prisma/client"' in cold.embedded
    assert not cold.prepared.exists()

    restored, report = runner.restore("test-job", "1")
    assert report.all_hit and len(runner.installs()) == 2
    assert restored != cold.prepared
    assert (restored / CLIENT / "index.js").read_text() == cold.embedded  # byte for byte, paths and all
    assert (restored / "web" / "node_modules" / "@monorepo" / "format").is_symlink()
    assert "# pass 2" in npm_test(restored / "api")  # a query compiled by the restored client, P1001
    assert "# pass 3" in npm_test(restored / "web")


def test_a_warm_run_installs_and_generates_nothing_and_its_tree_passes_too(cold):
    runner = cold.runner
    before = runner.installs()
    warm = runner.prepare(runner.checkout("prepare-job-2"), "2")
    assert warm.all_hit, [(r.entry.role, r.entry.directory) for r in warm.entries if not r.hit]
    assert sorted(r.entry.role for r in warm.entries) == ["deps-all", "deps-all", "prisma"]
    shutil.rmtree(runner.root / "prepare-job-2")

    restored, report = runner.restore("test-job-2", "2")
    assert report.all_hit and runner.installs() == before
    # The warm run restored the client the cold run generated, paths of the first workspace included.
    assert (restored / CLIENT / "index.js").read_text() == cold.embedded
    npm_test(restored / "api")
    npm_test(restored / "web")


def test_the_default_library_engine_is_loaded_from_the_restored_tree(cold, monkeypatch):
    """Most Prisma 6 apps keep the default engineType "library": the client loads a query engine library
    copied next to it. Offline there is no real engine, so a stand-in with the real name is generated
    in; the client's attempt to load it shows which path it resolved."""
    runner = cold.runner
    engine_name = f"libquery_engine-{cold.binary_target}.so.node"
    stand_in = runner.root / "engine" / engine_name
    stand_in.parent.mkdir()
    stand_in.write_bytes(b"")
    monkeypatch.setenv("PRISMA_QUERY_ENGINE_LIBRARY", str(stand_in))
    library = runner.checkout("prepare-job-3", lambda text: text.replace('  engineType = "client"\n', ""))
    (library / "api" / ".env").write_text("DATABASE_URL=postgresql://nobody:secret@127.0.0.1:1/none\n")
    report = runner.prepare(library, "3")
    assert {r.entry.role: r.hit for r in report.entries if r.entry.directory == "api"} == {
        "deps-all": True, "prisma": False}  # another schema, another client; the same dependencies
    assert (library / CLIENT / engine_name).exists()
    shutil.rmtree(library.parent)
    monkeypatch.delenv("PRISMA_QUERY_ENGINE_LIBRARY")  # at run time the client finds its own engine

    restored, _ = runner.restore("test-job-3", "3")
    probe = node(restored / "api", """
        delete process.env.DATABASE_URL;
        const { PrismaClient } = require("@prisma/client");
        const prisma = new PrismaClient();
        console.log("env " + process.env.DATABASE_URL);
        prisma.user.findMany().catch((error) => { console.log(error.message); });
    """)
    assert probe.returncode == 0, probe.stderr
    # The .env beside the schema is found relative to the restored client, not the prepared one.
    assert "env postgresql://nobody:secret@127.0.0.1:1/none" in probe.stdout
    assert f"Unable to require(`{restored / CLIENT / engine_name}`)" in probe.stdout
    assert str(library) not in probe.stdout

