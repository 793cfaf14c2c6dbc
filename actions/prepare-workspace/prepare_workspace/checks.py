"""A prepare request checked whole before anything is installed, built or saved.

Every mistake gets one message naming the input and what to do, in milliseconds, instead of a wrong
message (or a traceback) after a minute of installs. What the checks read (lock files, manifests,
schemas) is what the plan keys entries by, so it is read once, here.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ci_actions import artifact
from ci_actions.beneath import DIRECTORY, open_beneath
from ci_actions.workspace import WorkspaceError, relative_path
from prepare_workspace import plan

NPM_READS = ("package.json", ".npmrc")  # besides the lock: what `npm ci` reads in the package dir


@dataclass(frozen=True)
class Package:
    directory: str  # normalised, relative to the workspace ("." for the workspace itself)
    install_inputs: tuple[tuple[str, bytes], ...]  # every file `npm ci` reads, by package-relative name
    lock: dict


@dataclass(frozen=True)
class Schema:
    path: PurePosixPath  # relative to the workspace
    package: PurePosixPath
    text: str
    prisma_version: str
    client_version: str  # @prisma/client's, which the generated client runs on ("" if the lock has none)


@dataclass(frozen=True)
class Checked:
    packages: list[Package]
    schemas: list[Schema]


def _hint(workspace: Path, name: str) -> str:
    parent = (workspace / name).parent
    siblings = [p.name for p in parent.iterdir() if p.is_dir()] if parent.is_dir() else []
    close = difflib.get_close_matches(PurePosixPath(name).name, siblings, n=1)
    if not close:
        return ""
    return f"; did you mean {str(PurePosixPath(name).parent / close[0]).removeprefix('./')!r}?"


def _beneath(workspace: Path, name: str) -> bool:
    """Whether `name` is a directory reached from the workspace without any link on the way."""
    if name == ".":
        return True
    root = os.open(workspace, DIRECTORY)
    try:
        os.close(open_beneath(root, name))
        return True
    except OSError:
        return False
    finally:
        os.close(root)


def package_dir(workspace: Path, line: str) -> str:
    """A package-dirs line, normalised: a real directory inside the workspace with a package.json."""
    name = line.strip().rstrip("/").removeprefix("./") or "."
    try:
        if name != ".":
            relative_path(name, "package-dirs")
    except ValueError as exc:
        raise WorkspaceError(f"package-dirs: {line!r} must be a directory inside the workspace "
                             f"{workspace}") from exc
    package = workspace / name
    if not package.is_dir():
        raise WorkspaceError(f"package-dirs: {line!r} is not a directory in the workspace {workspace}"
                             f"{_hint(workspace, name)}")
    if not _beneath(workspace, name):
        raise WorkspaceError(f"package-dirs: {line!r} is reached through a symbolic link; list the "
                             "directory it points to, inside the workspace")
    if not (package / "package.json").is_file():
        raise WorkspaceError(f"package-dirs: {name} has no package.json; list the directories that have one")
    return name


def _lock(package: Path, directory: str) -> tuple[str, bytes, dict]:
    for name in plan.LOCK_FILES:
        if (package / name).is_file():
            data = (package / name).read_bytes()
            try:
                lock = json.loads(data)
            except ValueError as exc:
                raise WorkspaceError(f"{directory}/{name} is not valid JSON ({exc}); regenerate it with "
                                     "`npm install`") from exc
            if not isinstance(lock, dict):
                raise WorkspaceError(f"{directory}/{name} is not a lock file (not a JSON object); "
                                     "regenerate it with `npm install`")
            return name, data, lock
    raise WorkspaceError(f"{directory}: no package-lock.json; `npm ci` needs one. Run `npm install` there "
                         "and commit the lock file.")


def _workspace_members(lock: dict) -> list[str]:
    """npm workspaces, as the lock lists them: `packages` keys outside node_modules (v2/v3 locks)."""
    packages = lock.get("packages")
    if not isinstance(packages, dict):
        return []
    members = []
    for key in packages:
        if key and isinstance(key, str) and "node_modules" not in key.split("/"):
            try:
                members.append(relative_path(key, "workspace"))
            except ValueError:
                continue  # a link outside the package (`file:../x`): npm reads it from there, not here
    return sorted(members)


def check_package(workspace: Path, line: str) -> Package:
    directory = package_dir(workspace, line)
    package = workspace / directory
    lock_name, lock_bytes, lock = _lock(package, directory)
    inputs = [(lock_name, lock_bytes)]
    for name in (*NPM_READS, *(f"{member}/package.json" for member in _workspace_members(lock))):
        path = package / name
        if path.is_file():
            inputs.append((name, path.read_bytes()))
    return Package(directory, tuple(inputs), lock)


def locked_version(package: Package, name: str) -> str | None:
    """A dependency's version as the package's lock pins it (`packages["node_modules/<name>"]`, or a v1
    lock's `dependencies`): known before anything is installed, so a hit needs no node_modules."""
    packages = package.lock.get("packages")
    found = packages.get(f"node_modules/{name}") if isinstance(packages, dict) else None
    if found is None and isinstance(package.lock.get("dependencies"), dict):  # a v1 lock
        found = package.lock["dependencies"].get(name)
    version = found.get("version") if isinstance(found, dict) else None
    return version if isinstance(version, str) else None


def check_schema(workspace: Path, line: str, packages: list[Package]) -> Schema:
    try:
        schema = PurePosixPath(relative_path(line.strip().removeprefix("./"), "prisma-schema"))
    except ValueError as exc:
        raise WorkspaceError(f"prisma-schema: {line!r} must be a path inside the workspace, relative to "
                             "it") from exc
    path = workspace / schema
    if path.is_dir():
        raise WorkspaceError(f"prisma-schema: {schema} is a directory; name the schema file (multi-file "
                             "schema folders are not supported yet)")
    if not path.is_file():
        relative_to_package = [f"{p.directory}/{schema}" for p in packages
                               if p.directory != "." and (workspace / p.directory / schema).is_file()]
        hint = (f"; schema paths are relative to the workspace: did you mean {relative_to_package[0]}?"
                if relative_to_package else "")
        raise WorkspaceError(f"prisma-schema: {schema} does not exist in the workspace {workspace}{hint}")
    owners = [p for p in packages if schema.is_relative_to(p.directory)]
    if not owners:
        listed = ", ".join(p.directory for p in packages) or "none"
        raise WorkspaceError(f"prisma-schema: {schema} is not inside any of package-dirs ({listed}); "
                             "list its package dir there")
    owner = max(owners, key=lambda p: len(PurePosixPath(p.directory).parts))
    version = locked_version(owner, "prisma")
    if version is None:  # `npm ci` installs what the lock pins, so no install would bring it either
        raise WorkspaceError(f"prisma-schema: {schema}: the `prisma` package is not in "
                             f"{owner.directory}'s lock file (no packages[\"node_modules/prisma\"]); add it "
                             "to its devDependencies and commit the lock")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"prisma-schema: {schema} cannot be read as text ({exc})") from exc
    return Schema(schema, PurePosixPath(owner.directory), text, version,
                  locked_version(owner, "@prisma/client") or "")


def check(workspace: Path, package_dirs: list[str], schemas: list[str], destination: Path,
          run: artifact.RunId) -> Checked:
    """Everything a prepare needs to be true, checked before any work; WorkspaceError otherwise."""
    if not package_dirs:
        raise WorkspaceError("package-dirs: list at least one package directory")
    packages = [check_package(workspace, line) for line in package_dirs]
    seen = [p.directory for p in packages]
    if duplicate := next((d for d in seen if seen.count(d) > 1), None):
        raise WorkspaceError(f"package-dirs: {duplicate} is listed twice")
    checked = [check_schema(workspace, line, packages) for line in schemas]
    if (destination / artifact.MANIFEST).exists():
        raise WorkspaceError(f"an artifact for {run} already exists at {destination}; a re-run of the "
                             "workflow gets a new attempt number, so this run id was reused")
    return Checked(packages, checked)
