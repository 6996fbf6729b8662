"""What test modules share: the checkout's own bpfmap (BPFMAP, run_cli), the tools a test
needs (a skip without them, a failure with CI=true), BPF C compiled with clang, a tmux
of the test's own.  Fixtures live in tests/conftest.py; test modules import from here and
never from each other (tests/conftest.py puts tests/ on the path: pytest's rootdir of
the conftest)."""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from . import forkserver

T = TypeVar("T")

IN_CI = os.environ.get("CI", "").lower() == "true"
TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
REPO = os.path.dirname(TESTS)  # the checkout: bpfmap/, docs/, examples/
BPF_SOURCES = os.path.join(TESTS, "bpf")  # the BPF C programs tests compile


def _installed_from() -> str | None:
    """The directory pip installed bpfmap from (its direct_url.json), if any."""
    import json
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    try:
        url = json.loads(metadata.distribution("bpfmap").read_text("direct_url.json") or "{}").get("url", "")
    except (metadata.PackageNotFoundError, ValueError):
        return None
    return os.path.realpath(unquote(urlparse(url).path)) if url.startswith("file://") else None


def _own_command() -> list[str]:
    """The checkout's own bpfmap, never whatever is first on PATH: the console script beside
    sys.executable when pip installed this very checkout (as .ci/run does), else
    ``python -m bpfmap`` (the checkout comes first on PYTHONPATH, set below)."""
    script = os.path.join(os.path.dirname(sys.executable), "bpfmap")
    if os.access(script, os.X_OK) and _installed_from() == os.path.realpath(REPO):
        return [script]
    return [sys.executable, "-m", "bpfmap"]


# Every subprocess a test starts (python -c, python -m bpfmap, the console script) imports
# the checkout's bpfmap, whatever directory it runs in.
os.environ["PYTHONPATH"] = os.pathsep.join([REPO, *filter(None, [os.environ.get("PYTHONPATH")])])
BPFMAP = _own_command()  # argv of the checkout's bpfmap
BPFMAP_SH = " ".join(shlex.quote(a) for a in BPFMAP)  # the same, for a shell line


def unavailable(reason: str) -> None:
    """Skip the test for want of ``reason``; with CI=true, fail it."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: what a test needs must be there)", pytrace=False)
    pytest.skip(reason)


def run_cli(*args: str, input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the checkout's bpfmap (BPFMAP) in a process of its own, forked from a server that
    has imported it once (tests/helpers/forkserver.py; BPFMAP_TEST_FRESH=1: a fresh
    interpreter for each, as BPFMAP)."""
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("BPFMAP_DEBUG", None)
    fork = forkserver.server(BPFMAP)
    if fork is not None:
        return fork.run(BPFMAP, args, input, full_env, timeout=60)
    return subprocess.run([*BPFMAP, *args], capture_output=True, text=True, input=input, env=full_env, timeout=60)


# BPF_MOV64_IMM(R0, 0); BPF_EXIT_INSN(): the smallest program the verifier accepts.
RETURN_ZERO = bytes.fromhex("b7000000000000009500000000000000")


def bpftool_path() -> str | None:
    return shutil.which("bpftool")


def need_tool(name: str) -> str:
    """The path of a command the test needs: a skip without it, a failure with CI=true
    (.ci/run installs every one of them)."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is not installed (.ci/run installs it)", pytrace=False)
        pytest.skip(f"{name} is not installed")
    return path


_COMPILED: dict[bytes, str] = {}  # a source (and the headers beside it) -> its first object


def compile_bpf(src, obj) -> str:
    """``clang -O2 -g -target bpf SRC -o OBJ``, as libbpf-based tools build their objects;
    a skip without clang or libbpf-dev, a failure with CI=true.  Returns OBJ.  Each source
    is compiled once per session: a second call copies the first object."""
    import hashlib
    import platform

    clang = need_tool("clang")
    if not os.path.exists("/usr/include/bpf/bpf_helpers.h"):
        if IN_CI:
            pytest.fail("libbpf-dev is needed (.ci/run installs it)", pytrace=False)
        pytest.skip("needs libbpf-dev")
    folder = os.path.dirname(os.path.abspath(src))
    digest = hashlib.sha256(open(src, "rb").read())
    for header in sorted(f for f in os.listdir(folder) if f.endswith(".h")):  # what it may include
        digest.update(header.encode() + open(os.path.join(folder, header), "rb").read())
    first = _COMPILED.get(digest.digest())
    if first is not None and os.path.exists(first):
        shutil.copyfile(first, obj)
        return str(obj)
    arch = f"-I/usr/include/{platform.machine()}-linux-gnu"
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", arch, "-c", str(src), "-o", str(obj)], check=True)
    _COMPILED[digest.digest()] = str(obj)
    return str(obj)


class Tmux:
    """A detached tmux server of the test's own (its own socket), one window per run."""

    def __init__(self, tmp_path) -> None:
        self.tmux = need_tool("tmux")
        self.sock = str(tmp_path / "tmux-sock")

    def cmd(self, *args: str) -> str:
        return subprocess.run(
            [self.tmux, "-S", self.sock, *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout

    def start(self, command: str, width: int = 160, height: int = 40, env: dict | None = None) -> None:
        envs = [f"-e{k}={v}" for k, v in (env or {}).items()]
        # COLUMNS/LINES inherited from the test's own environment would override the pane's size
        self.cmd(
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            str(width),
            "-y",
            str(height),
            *envs,
            f"unset COLUMNS LINES; {command}",
        )

    def screen(self) -> str:
        return self.cmd("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        self.cmd("send-keys", "-t", "t", *keys)

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        import time

        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared on the screen:\n{screen}")

    def close(self) -> None:
        subprocess.run([self.tmux, "-S", self.sock, "kill-server"], capture_output=True)


def create_pin(pindir: str, name: str, *args: str) -> str:
    """``bpfmap create ARGS --pin PINDIR/NAME -q`` (it must work); returns the pin."""
    pin = os.path.join(pindir, name)
    r = run_cli("create", *args, "--pin", pin, "-q")
    assert r.returncode == 0, r.stderr
    return pin


def cli_ok(*args: str) -> subprocess.CompletedProcess:
    """``bpfmap ARGS`` (it must succeed); returns the finished process."""
    r = run_cli(*args)
    assert r.returncode == 0, (args, r.stderr)
    return r


def fill_pin(pin: str, pairs) -> None:
    """Write ``(key, value)`` pairs to the pinned map, through the layout its BTF gives."""
    import bpfmap

    with bpfmap.open(pin) as v:
        for k, val in pairs:
            v[k] = val


def each_finished(make: Callable[..., T], finish: Callable[[T], object]) -> Iterator[Callable[..., T]]:
    """For a fixture to ``yield from``: a function that calls ``make`` and keeps what it
    returns; once the test is done, ``finish`` is called on each of them."""
    made: list[T] = []

    def one(*args: Any) -> T:
        made.append(make(*args))
        return made[-1]

    yield one
    for thing in made:
        finish(thing)


_HELP = """import sys
from bpfmap.cli import main
for verb in sys.argv[1:]:
    sys.stdout.write("\\0" + verb + "\\n")
    sys.stdout.flush()
    code = main([verb, "--help"])
    sys.stdout.flush()
    if code:
        sys.exit(f"{verb} --help: exit {code}")
"""


@functools.cache
def _help_texts() -> dict[str, str]:
    """``bpfmap VERB --help`` of every verb, as the checkout's bpfmap prints it to a pipe:
    one interpreter for all of them (a start-up per verb was most of the time), once a session."""
    from bpfmap.cli import COMMANDS

    r = subprocess.run(
        [sys.executable, "-c", _HELP, *COMMANDS], capture_output=True, text=True, timeout=120, check=True
    )
    texts = {}
    for part in r.stdout.split("\0")[1:]:
        verb, _, text = part.partition("\n")
        texts[verb] = text
    assert set(texts) == set(COMMANDS), r.stderr
    return texts


def help_examples(verb: str) -> list[str]:
    """The example command lines at the end of ``bpfmap VERB --help`` (one or two)."""
    import re

    text = _help_texts()[verb]
    assert "Examples:" in text, f"{verb} --help has no examples"
    tail = text[text.index("Examples:") :]
    cmds = [m.group(1) for m in re.finditer(r"^\s+\$ (.+)$", tail, re.M)]
    assert 1 <= len(cmds) <= 2, (verb, cmds)
    # the examples are the last thing help prints
    assert text.rstrip().endswith(cmds[-1])
    return cmds


def _kind(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def same_shape(doc: object, real: object, where: str = "$") -> None:
    """What docs/contract.md shows against what bpfmap printed: ``real`` has the documented fields and types (null matches anything: the doc says
    which fields may be null)."""
    if doc is None or real is None:
        return
    assert _kind(doc) == _kind(real), f"{where}: documented {_kind(doc)}, printed {_kind(real)} ({real!r})"
    if isinstance(doc, dict):
        assert set(doc) == set(real), f"{where}: documented fields {sorted(doc)}, printed {sorted(real)}"
        for k in doc:
            same_shape(doc[k], real[k], f"{where}.{k}")
    elif isinstance(doc, list) and doc and real:
        same_shape(doc[0], real[0], f"{where}[0]")


def kernel_map_types() -> list[tuple[str, int]]:
    """(name, number) of every map type the running kernel's BTF lists (enum bpf_map_type);
    none without /sys/kernel/btf/vmlinux."""
    try:
        from bpfmap.btf.wire import vmlinux

        values = vmlinux().find("bpf_map_type").values
    except (OSError, KeyError):
        return []
    seen, out = set(), []
    for name, n in values:
        if name.startswith("__") or n == 0 or n in seen or "DEPRECATED" in name:
            continue
        seen.add(n)
        out.append((name.removeprefix("BPF_MAP_TYPE_").lower(), n))
    return out


def one_line_error(err: str) -> str:
    """The one line of an error message (never a traceback or an internal error)."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "internal error" not in err and "Traceback" not in err, err
    return lines[0]


def examples(n: int) -> int:
    """A property test's max_examples: ``n`` under the "ci" profile (the default), as many
    more under another profile as its max_examples is above 100 (tests/conftest.py:
    "deep" runs ten times as many)."""
    from hypothesis import settings

    return max(1, n * settings.default.max_examples // 100)


def own_bpfmap_on_path(directory) -> str:
    """A PATH whose first ``bpfmap`` is the checkout's (a script in DIRECTORY/bin running
    BPFMAP): for shells and scripts that call the command by name."""
    bindir = os.path.join(str(directory), "bin")
    os.makedirs(bindir, exist_ok=True)
    script = os.path.join(bindir, "bpfmap")
    with open(script, "w") as f:
        f.write(f'#!/bin/sh\nexec {BPFMAP_SH} "$@"\n')
    os.chmod(script, 0o755)
    return os.pathsep.join([bindir, os.environ.get("PATH", "")])
