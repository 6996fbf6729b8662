"""Fixtures: a private bpffs per test session, a fresh pin directory per test.

Tests talk to the real kernel.  Without the bpf syscall or bpffs they skip, unless
CI=true, where that is a failure.  What tests share besides fixtures is in tests/helpers/
(this file's folder is on the path, pytest's rule for a conftest outside a package)."""

from __future__ import annotations

import ctypes
import os
import shutil
import uuid

import pytest
from helpers import (  # noqa: F401  (re-exported: tests written before helpers/ import them from here)
    BPF_SOURCES,
    BPFMAP,
    BPFMAP_SH,
    IN_CI,
    REPO,
    RETURN_ZERO,
    Tmux,
    bpftool_path,
    compile_bpf,
    create_pin,
    each_finished,
    need_tool,
    run_cli,
    unavailable,
)
from hypothesis import settings

from bpfmap import _sys

# Property tests: the "ci" profile (the default) keeps the whole suite within minutes on
# two CPUs: each test runs the examples its @settings(max_examples=examples(N)) names, or
# 100.  The "deep" profile runs ten times as many of every test, for local runs:
# HYPOTHESIS_PROFILE=deep python -m pytest -q -m "not kernel" (or --hypothesis-profile=deep).
settings.register_profile("ci", max_examples=100, deadline=None, print_blob=True)
settings.register_profile("deep", max_examples=1000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# Fixtures that reach the kernel's BPF: a test that uses one (or is marked kernel) is a
# kernel test.  tests/unit/ holds none (pytest -m "not kernel" runs anywhere, unprivileged),
# tests/kernel/ only those.
KERNEL_FIXTURES = {"bpffs", "pindir", "program"}
TESTS = os.path.dirname(os.path.abspath(__file__))
UNIT_DIR, KERNEL_DIR = os.path.join(TESTS, "unit") + os.sep, os.path.join(TESTS, "kernel") + os.sep


def pytest_collection_modifyitems(config, items):
    for item in items:
        uses = KERNEL_FIXTURES.intersection(item.fixturenames)
        kernel = bool(uses) or item.get_closest_marker("kernel") is not None
        if kernel and str(item.path).startswith(UNIT_DIR):
            raise pytest.UsageError(
                f"{item.nodeid}: a unit test reaches the kernel ({', '.join(sorted(uses)) or 'marked kernel'}); "
                "move it to tests/kernel/"
            )
        if not kernel and str(item.path).startswith(KERNEL_DIR):
            raise pytest.UsageError(
                f"{item.nodeid}: uses no kernel fixture ({', '.join(sorted(KERNEL_FIXTURES))}) and is not marked "
                "kernel; move it to tests/unit/, or mark it @pytest.mark.kernel if it makes maps itself"
            )
        if kernel:
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
        unavailable("kernel tests need root to mount a bpffs")
    try:
        from bpfmap import MapSpec

        fd = _sys.map_create(MapSpec("array", 4, 4, 1))  # does bpf(2) work at all?
        os.close(fd)
    except OSError as err:
        unavailable(f"bpf(2) unavailable: {err}")
    directory = str(tmp_path_factory.mktemp("bpffs"))
    assert "." not in directory, "bpftool rewrites dots in pin paths; keep them out"
    try:
        _sys.mount_bpffs(directory)
    except OSError as err:
        unavailable(f"cannot mount a bpffs: {err}")
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


@pytest.fixture
def program():
    """A loaded socket-filter program (for prog_array tests)."""
    from bpfmap import Program

    fd = _sys.prog_load(_sys.attrs.PROG_TYPE_SOCKET_FILTER, RETURN_ZERO, name=b"bpfmap_test")
    prog = Program.from_fd(fd)
    yield prog
    prog.close()


@pytest.fixture
def bpftool():
    path = bpftool_path()
    if path is None:
        if IN_CI:
            pytest.fail("bpftool is not installed (.ci/run installs it)", pytrace=False)
        pytest.skip("bpftool is not installed")
    return path


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path)
    yield t
    t.close()


@pytest.fixture(scope="module")
def obj(tmp_path_factory):
    """helpers.programs.OBJECT_SOURCE compiled: an object with maps of every kind libbpf makes."""
    from helpers.programs import OBJECT_SOURCE

    d = tmp_path_factory.mktemp("obj")
    (d / "prog.c").write_text(OBJECT_SOURCE)
    return compile_bpf(d / "prog.c", d / "prog.o")


@pytest.fixture
def exporter():
    """Start `bpfmap export --listen CONFIG` with exporter(CONFIG); every one started is stopped after."""
    from helpers.prometheus import Exporter

    yield from each_finished(Exporter, Exporter.stop)
