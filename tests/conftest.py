"""Fixtures: a private bpffs per test session, a fresh pin directory per test.

Tests talk to the real kernel.  Without the bpf syscall or bpffs they skip, unless
CI=true, where that is a failure."""

from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import subprocess
import sys
import uuid

import pytest

from bpfmap import _sys

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout: bpfmap/, docs/, examples/
BPF_SOURCES = os.path.join(REPO, "tests", "bpf")  # the BPF C programs tests compile


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


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the kernel's BPF is required)", pytrace=False)
    pytest.skip(reason)


# Fixtures that reach the kernel's BPF: a test that uses one (or is marked kernel) is a
# kernel test; tests/unit/ holds none (pytest -m "not kernel" runs anywhere, unprivileged).
KERNEL_FIXTURES = {"bpffs", "pindir", "program"}
UNIT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "unit") + os.sep
# tests import helpers from each other by module name (test_layout_oracle, test_export):
# both folders are on the path from the start, whichever pytest collects first
for _d in ("unit", "kernel"):
    _path = os.path.join(os.path.dirname(os.path.abspath(__file__)), _d)
    if _path not in sys.path:
        sys.path.insert(0, _path)


def pytest_collection_modifyitems(config, items):
    for item in items:
        uses = KERNEL_FIXTURES.intersection(item.fixturenames)
        if not uses and item.get_closest_marker("kernel") is None:
            continue
        if str(item.path).startswith(UNIT_DIR):
            raise pytest.UsageError(
                f"{item.nodeid}: a unit test reaches the kernel ({', '.join(sorted(uses)) or 'marked kernel'}); "
                "move it to tests/kernel/"
            )
        item.add_marker(pytest.mark.kernel)


@pytest.fixture(autouse=True)
def _kernel_for_kernel_tests(request):
    """A test marked kernel without a kernel fixture of its own (it makes maps in the
    process) still needs the kernel's BPF: it skips without it, or fails with CI=true."""
    if request.node.get_closest_marker("kernel") is not None:
        request.getfixturevalue("bpffs")


@pytest.fixture(scope="session")
def bpffs(tmp_path_factory):
    """A private bpffs mounted on a temp directory for the whole session."""
    if os.geteuid() != 0:
        _unavailable("kernel tests need root to mount a bpffs")
    try:
        from bpfmap import MapSpec

        fd = _sys.map_create(MapSpec("array", 4, 4, 1))  # does bpf(2) work at all?
        os.close(fd)
    except OSError as err:
        _unavailable(f"bpf(2) unavailable: {err}")
    directory = str(tmp_path_factory.mktemp("bpffs"))
    assert "." not in directory, "bpftool rewrites dots in pin paths; keep them out"
    try:
        _sys.mount_bpffs(directory)
    except OSError as err:
        _unavailable(f"cannot mount a bpffs: {err}")
    yield directory
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(directory.encode(), 2) != 0:  # MNT_DETACH
        raise OSError(ctypes.get_errno(), f"umount {directory}")


@pytest.fixture
def pindir(bpffs):
    """A new directory on the private bpffs; everything pinned there is removed after."""
    path = os.path.join(bpffs, "t" + uuid.uuid4().hex[:12])
    os.mkdir(path)
    yield path
    shutil.rmtree(path)


def run_cli(*args: str, input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the checkout's bpfmap (BPFMAP) as a subprocess."""
    cmd = BPFMAP
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("BPFMAP_DEBUG", None)
    return subprocess.run([*cmd, *args], capture_output=True, text=True, input=input, env=full_env, timeout=60)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def bm(capsys):
    """Run bpfmap in-process (the console script's own code path); returns
    (exit code, stdout, stderr)."""
    from bpfmap.cli import main

    def run(*args: str):
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


# BPF_MOV64_IMM(R0, 0); BPF_EXIT_INSN(): the smallest program the verifier accepts.
RETURN_ZERO = bytes.fromhex("b7000000000000009500000000000000")


@pytest.fixture
def program():
    """A loaded socket-filter program (for prog_array tests)."""
    from bpfmap import Program

    fd = _sys.prog_load(_sys.attrs.PROG_TYPE_SOCKET_FILTER, RETURN_ZERO, name=b"bpfmap_test")
    prog = Program.from_fd(fd)
    yield prog
    prog.close()


def bpftool_path() -> str | None:
    return shutil.which("bpftool")


@pytest.fixture
def bpftool():
    path = bpftool_path()
    if path is None:
        if IN_CI:
            pytest.fail("bpftool is not installed (.ci/run installs it)", pytrace=False)
        pytest.skip("bpftool is not installed")
    return path


def need_tool(name: str) -> str:
    """The path of a command the test needs: a skip without it, a failure with CI=true
    (.ci/run installs every one of them)."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is not installed (.ci/run installs it)", pytrace=False)
        pytest.skip(f"{name} is not installed")
    return path


def compile_bpf(src, obj) -> str:
    """``clang -O2 -g -target bpf SRC -o OBJ``, as libbpf-based tools build their objects;
    a skip without clang or libbpf-dev, a failure with CI=true.  Returns OBJ."""
    import platform

    clang = need_tool("clang")
    if not os.path.exists("/usr/include/bpf/bpf_helpers.h"):
        if IN_CI:
            pytest.fail("libbpf-dev is needed (.ci/run installs it)", pytrace=False)
        pytest.skip("needs libbpf-dev")
    arch = f"-I/usr/include/{platform.machine()}-linux-gnu"
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", arch, "-c", str(src), "-o", str(obj)], check=True)
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


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path)
    yield t
    t.close()


def create_pin(pindir: str, name: str, *args: str) -> str:
    """``bpfmap create ARGS --pin PINDIR/NAME -q`` (it must work); returns the pin."""
    pin = os.path.join(pindir, name)
    r = run_cli("create", *args, "--pin", pin, "-q")
    assert r.returncode == 0, r.stderr
    return pin
