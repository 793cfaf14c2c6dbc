"""Pure planning: what each store entry is called and holds, from facts gathered beforehand.

A key names everything that changes the installed bytes, so a hit is always safe to use: every file
`npm ci` reads (the lock, package.json, .npmrc, the workspaces' manifests), Node and npm versions, OS
and architecture, the install command and the layer. A package.json that no longer matches its lock
therefore misses, and `npm ci` itself refuses it, in its own words. Prisma's client
is keyed by the schema's digest, the Prisma CLI's and @prisma/client's versions (the generated code runs
on that runtime) and the output path, so a client generated from another schema, or for another runtime,
is never restored. Every version comes from the lock, so a hit is known before anything is installed.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from ci_actions.workspace import StoreEntry, prod_command

LOCK_FILES = ("package-lock.json", "npm-shrinkwrap.json")
OUTPUT_LINE = re.compile(r'^\s*output\s*=\s*"([^"]+)"', re.MULTILINE)
GENERATOR_BLOCK = re.compile(r"generator\s+\w+\s*\{(.*?)\}", re.DOTALL)
DEFAULT_PRISMA_OUTPUT = "node_modules/.prisma/client"


@dataclass(frozen=True)
class Toolchain:
    node: str
    npm: str
    platform: str  # os-arch


def _digest(*parts: str | bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part if isinstance(part, bytes) else part.encode())
        hasher.update(b"\0")
    return hasher.hexdigest()[:32]


def slug(directory: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", directory).strip("-") or "root"


def dependency_entries(directory: str, install_inputs: Sequence[tuple[str, bytes]], toolchain: Toolchain,
                       install: Sequence[str], *, prod_layer: bool) -> list[StoreEntry]:
    """The full layer (what tests need), and the production-only layer when asked for.
    `install_inputs` is every (name, content) the install reads."""
    layers = [("all", tuple(install))] + ([("prod", prod_command(install))] if prod_layer else [])
    read = [part for name, content in install_inputs for part in (name, content)]
    return [StoreEntry(
        role=f"deps-{layer}", directory=directory,
        key=f"ci-actions-deps-{slug(directory)}-{layer}-"
            + _digest(*read, toolchain.node, toolchain.npm, toolchain.platform, shlex.join(command), layer),
        paths=(str(PurePosixPath(directory) / "node_modules"),), command=tuple(command))
        for layer, command in layers]


def prisma_output(schema_text: str, schema: PurePosixPath, package_dir: PurePosixPath) -> PurePosixPath:
    """Where `prisma generate` writes the client: the generator's `output`, relative to the schema.

    It must lie inside the workspace and not contain the package dir: a miss deletes it before generating.
    Raises ValueError otherwise.
    """
    for block in GENERATOR_BLOCK.findall(schema_text):
        match = OUTPUT_LINE.search(block)
        if match:
            written = match.group(1)
            parts: list[str] = []
            for part in (schema.parent / written).parts:
                if part == ".." and parts:
                    parts.pop()
                elif part == ".." or part == "/":
                    raise ValueError(f"its output {written!r} is outside the workspace")
                elif part != ".":
                    parts.append(part)
            output = PurePosixPath(*parts)
            if output == package_dir or package_dir.is_relative_to(output):
                raise ValueError(f"its output {written!r} would replace the package dir {package_dir}")
            return output
    return package_dir / DEFAULT_PRISMA_OUTPUT


def prisma_entry(schema: PurePosixPath, schema_text: str, package_dir: PurePosixPath, prisma_version: str,
                 client_version: str, command: Sequence[str]) -> StoreEntry:
    output = prisma_output(schema_text, schema, package_dir)
    key = "ci-actions-prisma-" + slug(str(package_dir)) + "-" + _digest(
        schema_text, prisma_version, client_version, str(output), shlex.join(command))
    return StoreEntry("prisma", str(package_dir), key, (str(output),), tuple(command), str(schema))
