"""run_cli's fork server (tests/helpers/forkserver.py) gives what a fresh interpreter gives:
the same exit code, standard output and error for command lines whose answers hang on
the arguments, the environment (COLUMNS wraps help), the working directory (a relative
file), standard input and the exit path (usage errors, a clean exit)."""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers import BPFMAP, forkserver, run_cli


def fresh(*args: str, input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full = dict(os.environ, **(env or {}))
    full.pop("BPFMAP_DEBUG", None)
    return subprocess.run([*BPFMAP, *args], capture_output=True, text=True, input=input, env=full, timeout=60)


CASES = [
    (("--version",), None, None),
    (("create", "--help"), None, {"COLUMNS": "60"}),
    (("create", "--help"), None, {"COLUMNS": "200"}),
    (("lookup", "/nonexistent/m", "1"), None, None),
    (("dump", "/nonexistent/m", "--sort"), None, None),
    (("no-such-verb",), None, None),
    (("batch", "cmds"), None, None),
    (("batch", "-"), "lookup /nonexistent/m 1\nlookup\n", None),
    ((), None, None),
]


@pytest.mark.parametrize("args,input,env", CASES, ids=lambda c: repr(c) if isinstance(c, tuple) else None)
def test_a_forked_command_line_answers_as_a_fresh_interpreter(tmp_path, monkeypatch, args, input, env):
    if forkserver.server(BPFMAP) is None:
        pytest.skip("BPFMAP_TEST_FRESH: every run_cli is a fresh interpreter")
    (tmp_path / "cmds").write_text("lookup /nonexistent/m 1\n--version\n")
    monkeypatch.chdir(tmp_path)
    got, want = run_cli(*args, input=input, env=env), fresh(*args, input=input, env=env)
    assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr)
    assert "Traceback" not in got.stderr


def test_the_child_is_a_process_of_its_own_with_the_tests_affinity():
    """Its pid is not the server's, and a test held to one CPU holds its command lines too."""
    server = forkserver.server(BPFMAP)
    if server is None:
        pytest.skip("BPFMAP_TEST_FRESH: every run_cli is a fresh interpreter")
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        script = "import os; print(sorted(os.sched_getaffinity(0)), os.getpid(), os.getppid())"
        got = server.run(BPFMAP, (), None, dict(os.environ), timeout=60, main=script)
        cpus, pid, ppid = got.stdout.rsplit("]", 1)[0] + "]", *map(int, got.stdout.rsplit("]", 1)[1].split())
        assert cpus == str(sorted({min(before)})), got
        assert pid not in (os.getpid(), server.proc.pid) and ppid != server.proc.pid
    finally:
        os.sched_setaffinity(0, before)
