"""Keys change with everything that changes the installed bytes, and nothing else."""

from pathlib import PurePosixPath

import pytest

from ci_actions.store.keys import Scope
from ci_actions.workspace import Job, StoreEntry, WorkspaceError, complete
from prepare_workspace import plan
from prepare_workspace.plan import Toolchain

TOOLS = Toolchain("v20.20.2", "11.19.1", "linux-x86_64")
LOCK = b'{"lockfileVersion": 3}'
READS = (("package-lock.json", LOCK), ("package.json", b'{"name": "backend"}'))


def keys(reads=READS, tools=TOOLS, install=("npm", "ci"), prod=True):
    return [e.key for e in plan.dependency_entries("backend", reads, tools, list(install), prod_layer=prod)]


def test_layers_have_distinct_keys_and_paths():
    entries = plan.dependency_entries("backend", READS, TOOLS, ["npm", "ci"], prod_layer=True)
    assert [e.role for e in entries] == ["deps-all", "deps-prod"]
    assert entries[0].key.startswith("ci-actions-deps-backend-all-")
    assert entries[1].command == ("npm", "ci", "--omit=dev")
    assert entries[0].paths == entries[1].paths == ("backend/node_modules",)


def test_key_depends_on_what_npm_reads_node_npm_platform_and_command():
    base = keys()
    assert keys() == base
    for changed in (keys(reads=(("package-lock.json", LOCK + b" "), READS[1])),
                    keys(reads=(READS[0], ("package.json", b'{"name": "b", "dependencies": {"a": "1"}}'))),
                    keys(reads=(*READS, (".npmrc", b"legacy-peer-deps=true\n"))),
                    keys(tools=Toolchain("v22.0.0", "11.19.1", "linux-x86_64")),
                    keys(tools=Toolchain("v20.20.2", "10.0.0", "linux-x86_64")),
                    keys(tools=Toolchain("v20.20.2", "11.19.1", "linux-aarch64")),
                    keys(install=("npm", "ci", "--legacy-peer-deps"))):
        assert changed[0] != base[0] and changed[1] != base[1]


def test_no_prod_layer_unless_asked():
    assert len(keys(prod=False)) == 1


SCHEMA = """
generator client {
  provider = "prisma-client"
  output   = "../src/generated/prisma"
}
datasource db { provider = "postgresql" }
"""


def test_prisma_output_is_resolved_against_the_schema():
    out = plan.prisma_output(SCHEMA, PurePosixPath("backend/prisma/schema.prisma"), PurePosixPath("backend"))
    assert out == PurePosixPath("backend/src/generated/prisma")
    default = plan.prisma_output('generator client {\n provider = "prisma-client-js"\n}\n',
                                 PurePosixPath("backend/prisma/schema.prisma"), PurePosixPath("backend"))
    assert default == PurePosixPath("backend/node_modules/.prisma/client")


def test_prisma_key_changes_with_schema_versions_and_command():
    def key(schema=SCHEMA, version="7.0.0", client="7.0.0", command=("npx", "prisma", "generate")):
        return plan.prisma_entry(PurePosixPath("backend/prisma/schema.prisma"), schema,
                                 PurePosixPath("backend"), version, client, list(command)).key
    base = key()
    assert base.startswith("ci-actions-prisma-backend-")
    assert key(schema=SCHEMA + "model User { id Int @id }\n") != base
    assert key(version="7.0.1") != base
    assert key(client="7.0.1") != base  # the generated code runs on @prisma/client's runtime
    assert key(command=("npm", "run", "db:generate")) != base


def test_a_generate_that_writes_nothing_is_an_error_and_saves_nothing(tmp_path):
    (tmp_path / "backend").mkdir()
    entry = StoreEntry("prisma", "backend", "k", ("backend/src/generated/prisma",), ("true",),
                       "backend/prisma/schema.prisma")
    with pytest.raises(WorkspaceError, match="succeeded but did not create backend/src/generated/prisma"):
        complete([Job(entry, tmp_path, entry.command)], tmp_path / "store", "auto",
                 scope=Scope("refs/heads/main"))
    assert not (tmp_path / "store" / "entries").exists()


@pytest.mark.parametrize("output, why", [
    ("/etc/prisma", "outside the workspace"), ("../../../../x", "outside the workspace"),
    ("../..", "would replace the package dir"), ("..", "would replace the package dir"),
    ("../../..", "outside the workspace"),
])
def test_a_prisma_output_outside_the_workspace_or_over_the_package_is_refused(output, why):
    schema = SCHEMA.replace("../src/generated/prisma", output)
    with pytest.raises(ValueError, match=why):
        plan.prisma_output(schema, PurePosixPath("backend/prisma/schema.prisma"), PurePosixPath("backend"))
