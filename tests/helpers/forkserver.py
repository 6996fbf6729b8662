"""run_cli's fork server: one Python process that has imported bpfmap (and typer, rich, the
export package...) once, and forks a fresh child for each command line, so that a test's
hundreds of command lines do not each pay Python's start-up and bpfmap's imports.

The child is a process of its own, as ``subprocess.run`` would give: its standard input,
output and error are the pipes (or the test's own stdin) the test hands over, its
arguments, environment and working directory are the test's, its exit code is what
``sys.exit(run())`` gives at the end of a normal interpreter shutdown (tracebacks,
flushing, atexit handlers and all), and nothing of the test process is in it.  What it
does not repeat is the start-up itself: the tests that are about start-up or imports run
the real command (``helpers.BPFMAP``).  ``BPFMAP_TEST_FRESH=1`` makes every run_cli a
fresh interpreter again.

Protocol: the test process and the server share a control socket; each command line sends
its request (JSON) with four descriptors (a socket of its own for the answer, stdin,
stdout, stderr).  The server forks a supervisor for the request, which forks the child,
answers its pid, waits for it and answers its exit code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

# The server's code: run as ``python -c SERVER FD``.  In the child it falls through to the
# end of the script, so the CLI runs at the top level like a console script's.
SERVER = r"""
import json, os, pkgutil, signal, socket, sys, importlib
ctl = socket.socket(fileno=int(sys.argv[1]))
import bpfmap, bpfmap.cli
for mod in pkgutil.walk_packages(bpfmap.__path__, "bpfmap."):
    if mod.name.rsplit(".", 1)[-1] != "__main__":
        importlib.import_module(mod.name)
import typer, rich.console, rich.table, click
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
while True:
    msg, fds, _, _ = socket.recv_fds(ctl, 1 << 20, 4)
    if not msg:
        os._exit(0)
    if os.fork() == 0:
        break
    for fd in fds:
        os.close(fd)
ctl.close()
signal.signal(signal.SIGCHLD, signal.SIG_DFL)
req = json.loads(msg)
answer = socket.socket(fileno=fds[0])
child = os.fork()
if child:
    for fd in fds[1:]:
        os.close(fd)
    answer.sendall(json.dumps({"pid": child}).encode() + b"\n")
    status = os.waitpid(child, 0)[1]
    answer.sendall(json.dumps({"code": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
    os._exit(0)
answer.close()
for target, fd in enumerate(fds[1:]):
    os.dup2(fd, target)
os.closerange(3, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") < 65536 else 65536)
os.chdir(req["cwd"])
os.sched_setaffinity(0, req["cpus"])
os.umask(req["umask"])
os.environ.clear()
os.environ.update(req["env"])
if req.get("comm"):
    import ctypes
    ctypes.CDLL(None).prctl(15, req["comm"].encode()[:15], 0, 0, 0)  # PR_SET_NAME
sys.argv = [req["argv0"], *req["args"]]
sys.stdin = sys.__stdin__ = open(0, "r", encoding="utf-8", closefd=False)
sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", closefd=False)
sys.stderr = sys.__stderr__ = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
if req.get("main"):
    exec(req["main"])
else:
    from bpfmap.cli import run
    run()
"""


class ForkServer:
    def __init__(self, argv0: str, comm: str | None) -> None:
        self.argv0 = argv0
        self.comm = comm
        self.lock = threading.Lock()
        self.ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(theirs.fileno())], pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL
        )
        theirs.close()

    def run(
        self,
        argv: list[str],
        args: tuple[str, ...],
        input: str | None,
        env: dict,
        timeout: float,
        main: str | None = None,
    ) -> subprocess.CompletedProcess:
        """``argv`` + ``args`` in a child (``main``: Python code it runs instead of bpfmap's)."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe() if input is not None else (None, None)
        umask = os.umask(0o22)
        os.umask(umask)
        request = {
            "args": list(args),
            "env": env,
            "cwd": os.getcwd(),
            "cpus": sorted(os.sched_getaffinity(0)),  # a test may hold itself to one CPU
            "umask": umask,
            "argv0": self.argv0,
            "comm": self.comm,
            "main": main,
        }
        stdin = in_r if in_r is not None else 0
        try:
            with self.lock:
                socket.send_fds(self.ctl, [json.dumps(request).encode()], [theirs.fileno(), stdin, out_w, err_w])
        finally:
            for fd in (theirs.fileno(), out_w, err_w, in_r):
                if fd is not None:
                    os.close(fd)
            theirs.detach()
        chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}

        def drain(fd: int) -> None:
            with open(fd, "rb", closefd=True) as f:
                chunks[fd].append(f.read())

        def feed() -> None:
            assert in_w is not None and input is not None
            with open(in_w, "wb", closefd=True) as f:
                try:
                    f.write(input.encode("utf-8"))
                except BrokenPipeError:
                    pass

        threads = [threading.Thread(target=drain, args=(fd,), daemon=True) for fd in (out_r, err_r)]
        if in_w is not None:
            threads.append(threading.Thread(target=feed, daemon=True))
        for t in threads:
            t.start()
        mine.settimeout(timeout)
        reader = mine.makefile("rb")
        pid = None
        try:
            pid = json.loads(reader.readline())["pid"]
            line = reader.readline()
            if not line:
                raise RuntimeError("the fork server's supervisor died")
            code = json.loads(line)["code"]
        except TimeoutError:
            if pid is not None:
                os.kill(pid, 9)
            raise subprocess.TimeoutExpired([*argv, *args], timeout) from None
        finally:
            reader.close()
            mine.close()
        for t in threads:
            t.join()
        out, err = (_text(b"".join(chunks[fd])) for fd in (out_r, err_r))
        return subprocess.CompletedProcess([*argv, *args], code, out, err)


def _text(data: bytes) -> str:
    """What ``subprocess.run(text=True)`` makes of the bytes (universal newlines)."""
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


_SERVER: ForkServer | None = None


def server(argv: list[str]) -> ForkServer | None:
    """The session's fork server (started at the first call), or None for fresh processes."""
    global _SERVER
    if os.environ.get("BPFMAP_TEST_FRESH", "") not in ("", "0"):
        return None
    if _SERVER is None:
        script = os.path.basename(argv[0]) if len(argv) == 1 else None  # the console script: its name is its comm
        _SERVER = ForkServer(argv[0] if script else "bpfmap/__main__.py", script)
    return _SERVER
