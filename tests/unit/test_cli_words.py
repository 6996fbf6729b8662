"""The command line without maps: help, exit codes, the verbs it lists, and no mount outside /sys/fs/bpf."""

from __future__ import annotations

import subprocess

from helpers import BPFMAP, help_examples

from bpfmap.cli import COMMANDS


def test_help_documents_exit_codes(cli):
    r = cli("--help")
    assert r.returncode == 0
    assert "Exit codes: 0 ok; 1 not found or empty" in " ".join(r.stdout.split())


def test_no_mount_outside_sys_fs_bpf(bm, tmp_path):
    code, _, err = bm("create", "hash", "--key", "4", "--value", "4", "--pin", str(tmp_path / "m"))
    assert code == 3 and "not on a BPF filesystem; mount one with 'mount -t bpf bpf" in err


def test_every_command_has_examples():
    for verb in COMMANDS:
        for cmd in help_examples(verb):
            assert cmd.split()[0] in ("bpfmap", "if") and f"bpfmap {verb}" in cmd, (verb, cmd)


def test_bpfmap_alone_prints_the_verbs():
    r = subprocess.run(BPFMAP, capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0].startswith("Usage: bpfmap VERB")
    verbs = {line.split()[0] for line in lines[3:]}
    assert {"create", "dump", "getnext", "enqueue", "dequeue", "events"} <= verbs
