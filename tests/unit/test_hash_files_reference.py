"""Differential test: ci_actions.hash_files against the runner's own hashFiles() script.

tests/fixtures/hashfiles-reference/hash-files.js is actions/runner's hashFiles.ts transcribed, on
@actions/glob and minimatch pinned to the versions of the runner's package-lock.json. Each case
builds a tree, runs that script the way the runner does (cwd = workspace, env `patterns` and
`followSymbolicLinks`), and requires the same digest, or a failure on both sides.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ci_actions.hash_files import HashFilesError, hash_files

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hashfiles-reference"
FIXTURE_FILES = ("package.json", "package-lock.json", "hash-files.js")
FAILED = "<failed>"
OUTPUT = re.compile(r"^__OUTPUT__([0-9a-f]*)__OUTPUT__$", re.MULTILINE)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(
            f"'{name}' is not on PATH: this test runs the runner's own hashFiles() script under Node.js. "
            "Install Node.js 18+ and npm (Debian: apt-get install nodejs npm)."
        )
    return found


@pytest.fixture(scope="session")
def reference_script() -> Path:
    """The upstream script with its pinned deps, installed once into a cache dir keyed by content."""
    node, npm = _tool("node"), _tool("npm")
    key = hashlib.sha256()
    for name in FIXTURE_FILES:
        key.update((FIXTURE / name).read_bytes())
    key.update(
        subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.encode()
    )
    cache = Path(tempfile.gettempdir()) / f"ci-actions-hashfiles-reference-{key.hexdigest()[:16]}"
    if not (cache / ".installed").exists():
        staging = Path(tempfile.mkdtemp(prefix=cache.name + ".", dir=cache.parent))
        for name in FIXTURE_FILES:
            shutil.copy2(FIXTURE / name, staging / name)
        done = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=staging,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in {staging} failed (the npm registry must be reachable):\n{done.stderr}")
        (staging / ".installed").write_text("ok\n")
        try:
            staging.rename(cache)
        except OSError:  # another session installed it first
            shutil.rmtree(staging, ignore_errors=True)
    return cache / "hash-files.js"


def upstream(script: Path, workspace: Path, patterns: str, follow: bool, home: Path) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "patterns": patterns}
    if follow:
        env["followSymbolicLinks"] = "true"
    done = subprocess.run(
        [_tool("node"), str(script)], cwd=workspace, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        return FAILED
    found = OUTPUT.search(done.stderr)
    assert found, f"no __OUTPUT__ line from the reference script:\n{done.stderr}"
    return found.group(1)


def ours(workspace: Path, patterns: str, follow: bool, home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HOME", str(home))
    try:
        return hash_files(patterns, workspace, follow_symbolic_links=follow)
    except HashFilesError:
        return FAILED


# --- trees -------------------------------------------------------------------------------------


def _write(root: Path, files: dict[str, bytes | str]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def mixed_tree(base: Path) -> Path:
    """Names that sort differently by byte and by path, dotfiles, glob characters, unicode, links."""
    ws = base / "ws"
    outside = base / "outside"
    _write(outside, {"secret.txt": "outside the workspace\n", "dir/inner.json": "{}"})
    _write(
        ws,
        {
            "foo/x.json": '{"x": 1}',
            "foo-bar.json": '{"bar": 2}',
            "foo.json": "{}",
            "foo_/y.json": "y",
            "Foo/Z.json": "Z",
            "foo bar/baz.json": "space",
            "package.json": '{"name": "app"}',
            "package-lock.json": '{"lockfileVersion": 3}',
            "src/index.ts": "export {}\n",
            "src/index.test.ts": "test()\n",
            "src/a/b/c.ts": "c\n",
            "src/a/.env": "SECRET=1\n",
            "src/[id].ts": "route\n",
            "src/x?y.ts": "q\n",
            "src/star*.ts": "star\n",
            ".github/workflows/ci.yml": "on: push\n",
            ".hidden": "dot\n",
            "dir.with.dots/file": "dots\n",
            "#notes.md": "hash\n",
            "!bang.md": "bang\n",
            "~tilde.md": "tilde\n",
            "caf\u00e9/men\u00fc.json": "unicode\n",
            "emoji/\U0001f600.txt": "astral\n",
            "emoji/ab.txt": "two\n",
            "empty/.gitkeep": "",
            "home/.npmrc": "registry=x\n",
            "big/blob.bin": bytes(range(256)) * (3 * 4096 + 17),  # > 3 MiB: crosses read chunks
            "node_modules/pkg/package.json": '{"name": "pkg"}',
            "node_modules/pkg/index.js": "module.exports = 1\n",
            "node_modules/.bin/tool": "#!/bin/sh\n",
            "file.txt": "a file, not a directory\n",
            "x[undefined": "minimatch splices the text 'undefined' into the regex of `*[`\n",
        },
    )
    (ws / "link-to-file.json").symlink_to("foo.json")
    (ws / "link-outside.txt").symlink_to(outside / "secret.txt")
    (ws / "link-dir").symlink_to("src")
    (ws / "link-outside-dir").symlink_to(outside / "dir")
    (ws / "src" / "a" / "loop").symlink_to("..")
    return ws


def broken_link_tree(base: Path) -> Path:
    ws = base / "ws"
    _write(ws, {"a.json": "a", "sub/b.json": "b", "sub/c.txt": "c"})
    (ws / "sub" / "dangling.json").symlink_to("missing.json")
    return ws


def bad_name_tree(base: Path) -> Path:
    """A file name that is not UTF-8: node cannot open it under its decoded name."""
    ws = base / "ws"
    _write(ws, {"ok.json": "ok", "sub/fine.txt": "fine"})
    (ws / "sub" / os.fsdecode(b"bad-\xff.json")).write_text("latin-1 name\n")
    return ws


def random_tree(seed: int) -> Callable[[Path], Path]:
    def build(base: Path) -> Path:
        rnd = random.Random(seed)
        ws = base / "ws"
        ws.mkdir(parents=True)
        stems = ["a", "b", "ab", "foo", "foo-bar", "foo.bar", "Foo", "_x", ".d", "z9", "-", "a b", "é"]
        exts = ["", ".json", ".ts", ".lock", ".md", ".x-y"]
        dirs = [ws]
        for _ in range(rnd.randint(25, 60)):
            parent = rnd.choice(dirs)
            name = rnd.choice(stems) + rnd.choice(exts)
            path = parent / name
            if path.exists() or path.is_symlink():
                continue
            roll = rnd.random()
            if roll < 0.3 and len(path.relative_to(ws).parts) < 5:
                path.mkdir()
                dirs.append(path)
            elif roll < 0.36 and parent != ws:
                path.symlink_to(rnd.choice(["..", "../" + rnd.choice(stems)]))
            else:
                path.write_bytes(rnd.randbytes(rnd.choice([0, 1, 7, 100, 5000])))
        return ws

    return build


def random_patterns(seed: int) -> list[str]:
    rnd = random.Random(seed * 7919)
    parts = [
        "a",
        "b",
        "ab",
        "foo",
        "foo-bar",
        "*",
        "**",
        "?",
        "*.json",
        "foo*",
        "[ab]",
        "[!a]*",
        ".d",
        "z?",
        "é",
    ]
    sets = []
    for _ in range(12):
        lines = []
        for _ in range(rnd.randint(1, 4)):
            segments = [rnd.choice(parts) for _ in range(rnd.randint(1, 3))]
            line = ("**/" if rnd.random() < 0.4 else "") + "/".join(segments)
            if rnd.random() < 0.15:
                line += "/"
            if rnd.random() < 0.1:
                line = "./" + line
            if lines and rnd.random() < 0.35:
                line = "!" + line
            lines.append(line)
        sets.append("\n".join(lines))
    return sets


MIXED_PATTERNS = [
    "**",
    "**/*.json",
    "*.json",
    "foo",
    "foo/",
    "foo/**",
    "foo*",
    "foo*/",
    "**/foo/**",
    "**/package*.json\n!node_modules/**",
    "**\n!**/*.md\n!src/**",
    "**\n!src/**\nsrc/a/**",
    "src/**/*.ts\n!src/**/*.test.ts",
    "./src/**/*.ts",
    "./package.json",
    ".",
    "./",
    "src/a/**\nsrc/**\nlib/**\nsrc",
    "# a comment\n\n   **/*.lock   \n\t*.md",
    "**/.*",
    "**/.*/**",
    ".github/**",
    "[ab]*\n?oo*\nFoo/[A-Z].json",
    "[!f]*",
    "src/\\[id\\].ts\nsrc/[[]id].ts",
    "src/x\\?y.ts\nsrc/star\\*.ts",
    "[]a]",
    "*[",
    "a[",
    "src/[z-a]*",
    "src/[!]*",
    "**/*.js\n!!**/index.js",
    "!package.json",
    "!**",
    "",
    "caf\u00e9/*",
    "emoji/?.txt",
    "emoji/??.txt",
    "emoji/*.txt",
    "link-*",
    "link-dir/**",
    "link-outside-dir/**",
    "src/a/loop/**",
    "file.txt/**",
    "file.txt/x",
    "missing/**",
    "~/**",
    "~",
    "**/*.json\n/nonexistent/**",
    "<outside>/**\n<outside>/*.txt",
    "<ws>/foo/**\n<ws>/src/*.ts",
    "<ws>",
    "src/**\n.github/**",
    ".github/**\nsrc/**",
    "big/*",
    "dir.with.dots/*",
    "**/\n*.md",
    "foo bar/*",
    "src/**/**/*.ts",
    "**/a/**/c.ts",
    "../outside/**",
    "foo/../package.json",
    "src/./index.ts",
    "!",
]

BROKEN_PATTERNS = ["**", "**/*.json", "*.json", "sub/*.txt", "sub/dangling.json", "**\n!sub/dangling.json"]
BAD_NAME_PATTERNS = ["**", "**/*.json", "**/*.txt", "sub/bad*", "**\n!sub/bad*"]


CASES = (
    [("mixed", p, f) for p in MIXED_PATTERNS for f in (False, True)]
    + [("broken", p, f) for p in BROKEN_PATTERNS for f in (False, True)]
    + [("bad-name", p, f) for p in BAD_NAME_PATTERNS for f in (False, True)]
    + [(f"random{s}", p, f) for s in range(4) for p in random_patterns(s) for f in (False, True)]
)


def _resolve(patterns: str, ws: Path) -> str:
    return patterns.replace("<ws>", str(ws)).replace("<outside>", str(ws.parent / "outside"))


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    built = {
        "mixed": mixed_tree(tmp_path_factory.mktemp("mixed")),
        "broken": broken_link_tree(tmp_path_factory.mktemp("broken")),
        "bad-name": bad_name_tree(tmp_path_factory.mktemp("bad-name")),
    }
    for seed in range(4):
        built[f"random{seed}"] = random_tree(seed)(tmp_path_factory.mktemp(f"random{seed}"))
    return built


@pytest.fixture(scope="module")
def expected(reference_script: Path, trees: dict[str, Path]) -> list[str]:
    """The runner's answers for every case; node starts slowly, so they run side by side."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [
            pool.submit(upstream, reference_script, trees[t], _resolve(p, trees[t]), f, trees[t] / "home")
            for t, p, f in CASES
        ]
        return [future.result() for future in futures]


@pytest.mark.parametrize(
    ("index", "tree", "patterns", "follow"),
    [(i, *case) for i, case in enumerate(CASES)],
    ids=[f"{tree}-{i}" for i, (tree, _, _) in enumerate(CASES)],
)
def test_same_digest_as_the_runner(
    expected: list[str],
    trees: dict[str, Path],
    index: int,
    tree: str,
    patterns: str,
    follow: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = trees[tree]
    got = ours(ws, _resolve(patterns, ws), follow, ws / "home", monkeypatch)
    assert got == expected[index], f"patterns={patterns!r} follow={follow} tree={tree}"


def test_the_cases_are_not_vacuous(expected: list[str], trees: dict[str, Path]) -> None:
    """Each kind of outcome occurs, and the quirks the cases were written for really show."""
    mixed = {p: expected[i] for i, (t, p, f) in enumerate(CASES) if t == "mixed" and not f}
    assert sum(o == FAILED for o in expected) >= 10
    assert sum(o == "" for o in expected) >= 10
    assert sum(bool(re.fullmatch("[0-9a-f]{64}", o)) for o in expected) >= 100
    assert mixed["src/**\n.github/**"] != mixed[".github/**\nsrc/**"]  # search roots keep their order
    assert mixed["emoji/?.txt"] == ""  # "?" is one UTF-16 unit: an astral character is two
    assert mixed["*["] != ""  # matches "x[undefined"
    assert mixed["file.txt/**"] != ""  # an explicit "P/**" also matches a file named P
    assert mixed["../outside/**"] == FAILED
