"""The programs in examples/ run and do what they say."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import REPO, run_cli

ROOT = REPO


def test_count_protocols(pindir):
    pin = os.path.join(pindir, "protocols")
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "count_protocols.py"), "--pin", pin],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["protocol", "packets", "tcp", "3", "udp", "2", "icmp", "1", "sctp", "1"]
    # the kernel's counts, read back through the command line
    dumped = dict(line.split("\t") for line in run_cli("dump", pin, "-l", "u32:u64").stdout.splitlines())
    assert dumped == {"6": "3", "17": "2", "1": "1", "132": "1"}
