"""The package installs like one: metadata, the man page (generated from the CLI, never
stale, valid roff), the completion scripts and py.typed in the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest
from helpers import REPO, need_tool, unavailable

ROOT = REPO


def test_man_page_is_current():
    from bpfmap.cli.manpage import render

    with open(os.path.join(ROOT, "man", "bpfmap.1")) as f:
        assert f.read() == render(), "man/bpfmap.1 is stale: run 'python -m bpfmap.cli.manpage man/bpfmap.1'"


def test_man_page_covers_every_verb_option_and_exit_code():
    from bpfmap.cli import ALIASES, COMMANDS
    from bpfmap.cli.manpage import render

    page = render()
    for verb in [*COMMANDS, *ALIASES]:
        assert f'.SS "bpfmap {verb} ' in page, verb
    for option in ("\\-\\-layout", "\\-\\-batch\\-size", "\\-\\-from\\-object", "\\-\\-percpu"):
        assert option in page
    assert ".SH EXIT STATUS" in page and "3 error from the kernel" in page
    assert page.count("\n$ ") == 0 and "bpfmap dump /sys/fs/bpf/counts \\-o jsonl" in page


def test_man_page_renders_without_warnings():
    groff = need_tool("groff")
    r = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww", "-z", os.path.join(ROOT, "man", "bpfmap.1")], capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stderr == "", r.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel pip builds, from a copy of what goes in it: the checkout may be read-only
    (an unprivileged run), and a build writes beside the sources."""
    import shutil

    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE", "bpfmap", "man", "completions", "scripts"):
        copy = shutil.copytree if os.path.isdir(os.path.join(ROOT, name)) else shutil.copy
        copy(os.path.join(ROOT, name), src / name)
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0 and "No matching distribution found for setuptools" in r.stdout + r.stderr:
        unavailable("pip cannot fetch the build backend (setuptools): offline?")
    assert r.returncode == 0, r.stdout + r.stderr
    (path,) = out.glob("bpfmap-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_ships_the_man_page_completions_and_typing(wheel):
    names = wheel.namelist()
    data = [n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n]
    assert "share/man/man1/bpfmap.1" in data
    assert "share/bash-completion/completions/bpfmap.bash" in data
    assert "share/fish/vendor_completions.d/bpfmap.fish" in data
    assert "share/bpfmap/completions/bpfmap.zsh" in data
    assert "bpfmap/py.typed" in names
    meta = wheel.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "License :: OSI Approved :: MIT License" in meta and "Keywords:" in meta
    assert "](" not in meta.split("\n\n", 1)[1].replace("](http", ""), "relative links do not render on an index"
    assert any(n.endswith("LICENSE") for n in names)


def test_the_command_is_our_script_without_re(wheel):
    """The wheel's bpfmap command is scripts/bpfmap (pip writes the interpreter on its
    first line): it runs bpfmap.cli.run and imports nothing else, where the wrapper pip
    generates for an entry point imports re (issue 37: a lookup's start-up)."""
    import ast

    names = wheel.namelist()
    assert [n.split(".data/scripts/", 1)[1] for n in names if ".data/scripts/" in n] == ["bpfmap"]
    assert not any(n.endswith("entry_points.txt") for n in names), "a [project.scripts] wrapper would replace it"
    text = wheel.read(next(n for n in names if n.endswith(".data/scripts/bpfmap"))).decode()
    assert text.startswith("#!python\n")
    tree = ast.parse(text)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert imported == {"sys", "bpfmap.cli.run"}


def test_one_version_everywhere():
    """pyproject.toml, bpfmap.__version__, the newest release in CHANGELOG.md and the
    version docs/contract.md describes are one version."""
    import re

    import bpfmap

    project = re.search(r'^version = "([^"]+)"', open(os.path.join(ROOT, "pyproject.toml")).read(), re.M)
    released = re.search(
        r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d\d-\d\d$", open(os.path.join(ROOT, "CHANGELOG.md")).read(), re.M
    )
    contract = re.search(
        r"as of \*\*bpfmap (\d+\.\d+\.\d+)\*\*", open(os.path.join(ROOT, "docs", "contract.md")).read()
    )
    assert project and released and contract
    assert project.group(1) == bpfmap.__version__ == released.group(1) == contract.group(1)


def test_pre_commit_runs_what_ci_runs():
    """.pre-commit-config.yaml's hooks are the checks .ci/run makes before the tests."""
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(open(os.path.join(ROOT, ".pre-commit-config.yaml")))
    entries = [h["entry"] for repo in config["repos"] for h in repo["hooks"]]
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    checks = next(line for line in ci.splitlines() if line.startswith("ruff check"))
    assert [c.strip() for c in checks.split("||")[0].split("&&")] == entries
