"""Every command's --help ends with examples, and every example runs: on a private bpffs
standing in for /sys/fs/bpf, with the maps the examples name created first."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
from helpers import BPFMAP_SH, help_examples, need_tool, run_cli
from helpers.programs import RINGBUF_TWICE

from bpfmap import Map
from bpfmap.cli import COMMANDS
from bpfmap.core.maps import Program


@pytest.fixture
def fake_sys_fs_bpf(pindir):
    """The maps the examples use, under pindir in place of /sys/fs/bpf."""

    def make(*args):
        r = run_cli("create", *args, "-q")
        assert r.returncode == 0, r.stderr

    counts = os.path.join(pindir, "counts")
    make("hash", "--layout", "u32:u64", "--name", "counts", "--pin", counts)
    for k, v in ((1, 42), (2, 7)):
        assert run_cli("update", counts, str(k), str(v)).returncode == 0
    make("hash", "--layout", "u32:u64", "--pin", os.path.join(pindir, "copy"))
    make("array", "--key", "4", "--value", "8", "--max-entries", "16", "--pin", os.path.join(pindir, "config"))
    make("percpu_array", "--layout", "u32:u64", "--max-entries", "4", "--pin", os.path.join(pindir, "pcpu"))
    make("queue", "--layout", "u32", "--max-entries", "8", "--pin", os.path.join(pindir, "jobs"))
    for v in ("1", "2"):
        assert run_cli("push", os.path.join(pindir, "jobs"), v, "--layout", "u32").returncode == 0
    rb = os.path.join(pindir, "rb")
    make("ringbuf", "--pin", rb)
    with Map.open(rb) as m:  # four records: two for each 'events' example
        prog = Program.load("socket_filter", RINGBUF_TWICE, {"rb": m})
        prog.test_run(bytes(20))
        prog.test_run(bytes(20))
        prog.close()
    make("user_ringbuf", "--max-entries", "4096", "--pin", os.path.join(pindir, "urb"))
    # a profiler's maps for stacks' examples: one count whose stacks were dropped (-EEXIST)
    make("stack_trace", "--max-entries", "16", "--pin", os.path.join(pindir, "profile_stacks"))
    pc = os.path.join(pindir, "profile_counts")
    make("hash", "--layout", "pid=u32,kern_stack_id=s32,user_stack_id=s32,comm=char[16]:u64", "--pin", pc)
    assert run_cli("update", pc, "pid=1,kern_stack_id=-17,user_stack_id=-14,comm=init", "3").returncode == 0
    flows = os.path.join(pindir, "flows")  # for the filters, copy and migrate: one stale, two fresh
    make("hash", "--layout", "u32:packets=u64,ts=u64", "--pin", flows)
    make("hash", "--layout", "u32:packets=u64,bytes=u64,ts=u64", "--pin", os.path.join(pindir, "flows2"))
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    for k, packets, ts in ((1, 1, 0), (2, 5, now), (3, 9, now)):
        assert run_cli("update", flows, str(k), f"packets={packets},ts={ts}").returncode == 0
    lat = os.path.join(pindir, "lat")
    make("array", "--layout", "u32:u64", "--max-entries", "32", "--pin", lat)
    for slot, n in ((4, 3), (5, 9), (6, 2)):
        assert run_cli("update", lat, str(slot), str(n)).returncode == 0
    return pindir


def test_every_example_runs(fake_sys_fs_bpf, tmp_path):
    need_tool("jq")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "bpfmap").write_text(f'#!/bin/sh\nexec {BPFMAP_SH} "$@"\n')
    (bindir / "bpfmap").chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    env.pop("BPFMAP_DEBUG", None)
    config = tmp_path / "export.yaml"  # export's examples' /etc/bpfmap/export.yaml
    config.write_text(f"metrics:\n  - name: counts_total\n    map: {fake_sys_fs_bpf}/counts\n")
    (tmp_path / "records.txt").write_text("pid=1,cmd=2\npid=3,cmd=4\n")  # send's example reads it
    for verb in COMMANDS:
        for cmd in help_examples(verb):
            # the map name 'counts' is unique on this machine only if no other test made one
            real = (
                cmd.replace("/sys/fs/bpf", fake_sys_fs_bpf)
                .replace("name:counts", f"id:$(bpfmap show {fake_sys_fs_bpf}/counts -o json | jq .id)")
                .replace("/etc/bpfmap/export.yaml", str(config))
            )
            r = subprocess.run(
                ["bash", "-o", "pipefail", "-c", real],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
                stdin=subprocess.DEVNULL,
                cwd=tmp_path,
            )
            assert r.returncode == 0, f"{verb}: {cmd}\n{r.stdout}\n{r.stderr}"
            assert r.stdout or r.stderr or verb in ("update", "delete", "push", "pin", "freeze"), cmd
    assert shutil.os.path.exists(os.path.join(fake_sys_fs_bpf, "demo", "flows"))
