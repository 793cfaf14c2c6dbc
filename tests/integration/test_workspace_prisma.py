"""Prisma through prepare-workspace on the example app's real schema and Prisma 7 CLI (offline)."""

import shutil
from pathlib import Path

import pytest

from ci_actions.artifact import RunId
from ci_actions.store.store import Store
from ci_actions.workspace import Commands, WorkspaceError
from prepare_workspace.prepare import PrepareRequest, prepare
from restore_workspace.restore import RestoreRequest, restore_workspace

BACKEND = Path(__file__).parents[2] / "examples" / "loyalty-app" / "backend"
SCHEMA = "backend/prisma/schema.prisma"
CLIENT = "backend/src/generated/prisma"


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    return tmp_path_factory.mktemp("store")


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("PRISMA_SCHEMA_ENGINE_BINARY", "/bin/true")  # offline Prisma 7 generate
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    workspace = tmp_path / "ws"
    shutil.copytree(BACKEND, workspace / "backend",
                    ignore=shutil.ignore_patterns("node_modules", "dist", "build-test", "generated"))
    return workspace


def run(ws, store, run_id):
    return prepare(PrepareRequest(ws, ["backend"], ["npm", "ci", "--no-audit", "--no-fund"], False, [SCHEMA],
                                  None, store, ws.parent / "runs", ["node_modules"], 86400.0, "auto",
                                  RunId("acme/app", run_id, 1)))


def prisma_result(report):
    (result,) = [r for r in report.entries if r.entry.role == "prisma"]
    return result


def test_generated_once_then_restored_and_regenerated_when_the_schema_changes(ws, shared_store):
    first = run(ws, shared_store, "1")
    assert not prisma_result(first).hit and (ws / CLIENT / "client.ts").exists()
    generated = (ws / CLIENT / "models" / "User.ts").read_text()

    shutil.rmtree(ws / CLIENT)
    second = run(ws, shared_store, "2")
    assert prisma_result(second).hit and not (ws / CLIENT).exists()  # checked in the store, left there
    job = ws.parent / "job"
    job.mkdir()
    restore_workspace(RestoreRequest(job, ws.parent / "runs", shared_store, "all", "auto",
                                     RunId("acme/app", "2", 1), Commands(("npm", "ci"))))
    assert (job / CLIENT / "models" / "User.ts").read_text() == generated  # what a later job gets

    schema = ws / SCHEMA
    schema.write_text(schema.read_text().replace("model User {", "model User {\n  nickname String?"))
    third = run(ws, shared_store, "3")
    assert not prisma_result(third).hit  # another schema never gets the cached client
    assert "nickname" in (ws / CLIENT / "models" / "User.ts").read_text()


def test_invalid_schema_fails_with_prismas_message_and_saves_nothing(ws, shared_store):
    schema = ws / SCHEMA
    schema.write_text(schema.read_text() + "\nmodel Broken {\n  id Int @id\n  owner NoSuchModel\n}\n")
    before = {h.key for _, h in Store(shared_store).headers()}
    with pytest.raises(WorkspaceError) as caught:
        run(ws, shared_store, "4")
    message = str(caught.value)
    assert message.startswith("backend: prisma: `npx --no-install prisma generate")
    assert "NoSuchModel" in message
    after = {h.key for _, h in Store(shared_store).headers()}
    assert not any(k.startswith("ci-actions-prisma-") for k in after - before)
