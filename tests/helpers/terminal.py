"""bpfmap on a pseudo-terminal: what a terminal receives (on_terminal), its escape
sequences (ANSI)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess

from . import BPFMAP

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(
    args: list[str], env: dict | None = None, stdout_file: str | None = None, cols: int = 120
) -> tuple[int, str]:
    """Run bpfmap with stderr (and stdout, unless ``stdout_file``) on a pseudo-terminal;
    returns (exit code, everything the terminal received)."""
    master, slave = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    cmd = list(BPFMAP)
    full_env = dict(os.environ, TERM="xterm-256color", **(env or {}))
    for k in ("NO_COLOR", "COLUMNS", "LINES"):
        if k not in (env or {}):
            full_env.pop(k, None)
    out = open(stdout_file, "w") if stdout_file else slave
    proc = subprocess.Popen(cmd + args, stdin=slave, stdout=out, stderr=slave, env=full_env, close_fds=True)
    os.close(slave)
    if stdout_file:
        out.close()
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")
