"""The console script leaves without Python's teardown (cli.leave): the exit code, the
output and the atexit handlers are a normal exit's; a thread that is not a daemon is
waited for, as a normal exit waits; what teardown alone would do (a module's objects
finalized) does not happen."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from helpers import REPO


def run_in_checkout(argv: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    """``argv`` run in the checkout with it on PYTHONPATH (and ``env``), its output captured."""
    full = dict(os.environ, PYTHONPATH=REPO, **(env or {}))
    full.pop("BPFMAP_DEBUG", None)
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=full, cwd=REPO)


def script(before: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -c`` running ``before`` and then the console script's entry, bpfmap.cli.run,
    with ``args`` as its command line."""
    code = f"import sys\n{before}\nsys.argv = ['bpfmap', *{list(args)!r}]\nfrom bpfmap.cli import run\nrun()\n"
    return run_in_checkout([sys.executable, "-c", code], env)


TEARDOWN = """
class Tell:
    def __del__(self):
        sys.stderr.write("torn down\\n")
keep = Tell()  # finalized only when the interpreter tears __main__ down
"""


def test_teardown_is_skipped_and_output_and_code_are_kept():
    r = script(TEARDOWN, "--version")
    assert r.returncode == 0
    assert r.stdout.startswith("bpfmap ")
    assert "torn down" not in r.stderr  # the fast exit: no teardown


def test_exit_codes_and_stderr_are_kept():
    r = script(TEARDOWN)  # no arguments: the short usage, exit 2
    assert r.returncode == 2
    assert "Usage" in r.stderr or "usage" in r.stderr
    r = script(TEARDOWN, "lookup", "/nonexistent/m", "1")
    assert r.returncode == 3  # no such pin (docs/contract.md)
    assert r.stderr.startswith("bpfmap: ") and "torn down" not in r.stderr


def test_atexit_handlers_run():
    before = "import atexit\natexit.register(lambda: sys.stderr.write('atexit ran\\n'))"
    r = script(before, "--version")
    assert r.returncode == 0
    assert r.stderr == "atexit ran\n"


def test_a_thread_that_is_not_a_daemon_is_waited_for(tmp_path):
    mark = tmp_path / "mark"
    before = (
        "import threading, time\n"
        f"def late():\n    time.sleep(0.3)\n    open({str(mark)!r}, 'w').write('done')\n"
        "threading.Thread(target=late).start()"
    )
    r = script(before, "--version")
    assert r.returncode == 0
    assert mark.read_text() == "done"  # the process waited for it, as a normal exit does


def test_unflushed_output_is_written(tmp_path):
    # a large answer through a pipe: every byte of it, after which the process leaves
    r = script("", "create", "--help", env={"COLUMNS": "100"})
    assert r.returncode == 0
    normal = "import sys; sys.argv=['bpfmap','create','--help']; from bpfmap.cli import main; sys.exit(main())"
    full = run_in_checkout([sys.executable, "-c", normal], {"COLUMNS": "100"})
    assert r.stdout == full.stdout and len(r.stdout) > 1000


def closed_stdout(*args: str) -> subprocess.CompletedProcess:
    """The command line with its standard output closed (``>&-``)."""
    line = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "bpfmap", *args])
    return run_in_checkout(["sh", "-c", f"exec {line} >&-"])


def test_a_closed_stdout_is_one_line_and_exit_3():
    r = closed_stdout("--version")
    assert r.returncode == 3
    assert (
        r.stderr == "bpfmap: standard output is closed; give the command somewhere to write (> FILE, or > /dev/null)\n"
    )


def test_a_command_that_writes_nothing_there_runs_with_stdout_closed():
    r = closed_stdout("lookup", "/nonexistent/m", "1")  # its answer is on stderr
    assert r.returncode == 3
    assert r.stderr.startswith("bpfmap: open /nonexistent/m: no such pin")
    assert "Traceback" not in r.stderr
