"""The shell-facing contract: exit codes, stdout/stderr split, no tracebacks.

Subprocess tests run the installed ``bpfmap``; the rest call ``main()`` in-process
for speed (the same code path the console script takes)."""

from __future__ import annotations

import json
import os

import pytest

from bpfmap import Map, possible_cpus


def test_python_dash_m_works(pindir):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "bpfmap", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("bpfmap ")


def test_create_update_dump_lookup_delete_through_the_installed_command(cli, pindir):
    path = os.path.join(pindir, "h")
    r = cli("create", "hash", "--key", "4", "--value", "8", "--pin", path, "--name", "cli_t", "-o", "json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert (info["type"], info["key_size"], info["value_size"], info["name"], info["pinned"]) == (
        "hash",
        4,
        8,
        "cli_t",
        [path],
    )
    assert cli("update", path, "01 00 00 00", "0x2a00000000000000").returncode == 0
    assert cli("update", path, "2", "7", "--layout", "u32:u64").returncode == 0
    r = cli("dump", path)  # not a terminal: text
    assert r.returncode == 0
    assert sorted(r.stdout.splitlines()) == [
        "01 00 00 00\t2a 00 00 00 00 00 00 00",
        "02 00 00 00\t07 00 00 00 00 00 00 00",
    ]
    r = cli("dump", path, "-l", "u32:u64", "-o", "jsonl")
    assert sorted(r.stdout.splitlines()) == ['{"key": 1, "value": 42}', '{"key": 2, "value": 7}']
    r = cli("lookup", path, "1", "-l", "u32:u64")
    assert (r.returncode, r.stdout, r.stderr) == (0, "42\n", "")
    r = cli("lookup", path, "3", "-l", "u32:u64")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"bpfmap: lookup {path}: key not found\n"
    assert cli("delete", path, "1", "-l", "u32:u64").returncode == 0
    assert cli("delete", path, "1", "-l", "u32:u64").returncode == 1


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["create", "hash", "--key", "4", "--value", "8"], 2, "--pin PATH is required"),
        (["create", "hashh", "--pin", "/x"], 2, "unknown map type 'hashh'"),
        (["lookup", "{pin}", "1"], 2, "two hex digits per byte"),
        (["lookup", "{pin}", "01 00"], 2, "2 bytes given, 4 expected"),
        (["lookup", "{pin}", "1", "-l", "u16:u64"], 2, "layout for the key is 2 bytes but the map's key is 4"),
        (["lookup", "{pin}", "1", "-l", "u32:u99"], 2, "unknown type 'u99'"),
        (["update", "{pin}", "1", "-1", "-l", "u32:u64"], 2, "out of range 0..18446744073709551615"),
        (["update", "{pin}", "1", "2", "3", "-l", "u32:u64"], 2, "only per-CPU maps take one per CPU"),
        (["update", "{pin}", "1", "2", "--noexsit", "-l", "u32:u64"], 2, "no such option: --noexsit"),
        (["dump", "{dir}/missing"], 3, "no such pin"),
        (["update", "{dir}", "1", "2"], 2, "names 1 map ("),  # a directory of pins: one map for reads only
        (["dump", "/etc"], 3, "is a directory"),
        (["dump", "/etc/hostname"], 3, "not on a BPF filesystem"),
        (["dump", "{pin}", "-o", "xml"], 2, "choose one of text, json, jsonl, csv, table"),
        (["nosuchverb"], 2, "No such command"),
        (["lookup", "{pin}"], 2, "missing KEY"),
        (["create", "hash", "--key", "4", "--value", "8", "--pin", "{pin}"], 3, "never replaces a pin"),
        (["create", "hash", "--key", "4", "--value", "8", "--pin", "{dir}/a/b"], 2, "does not exist"),
        (["pop", "{pin}"], 2, "hash maps have no pop; use 'bpfmap lookup', 'bpfmap dump'"),
    ],
)
def test_bad_input_gets_one_line_and_the_documented_code(cli, pindir, args, code, message):
    pin = os.path.join(pindir, "m")
    with Map.create("hash", 4, 8, max_entries=4) as m:
        m.pin(pin)
    r = cli(*[a.format(pin=pin, dir=pindir) for a in args])
    assert r.returncode == code, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and r.stdout == ""


def test_refused_create_leaves_nothing_behind(bm, pindir):
    pin = os.path.join(pindir, "m")
    code, out, err = bm("create", "hash", "--key", "4", "--value", "4", "--flags", "no_common_lru", "--pin", pin)
    assert code == 3 and "the kernel refused a hash map" in err
    assert not os.path.exists(pin)


def test_existing_pin_is_untouched(bm, pindir):
    pin = os.path.join(pindir, "m")
    with Map.create("array", 4, 4, max_entries=1) as m:
        m.update(bytes(4), b"\x05\0\0\0")
        m.pin(pin)
        old_id = m.id
    code, _, err = bm("create", "array", "--value", "4", "--pin", pin)
    assert code == 3
    with Map.open(pin) as again:
        assert again.id == old_id and again.lookup(bytes(4)) == b"\x05\0\0\0"


def test_create_defaults_and_mkdir(bm, pindir):
    code, out, err = bm("create", "queue", "--value", "4", "--pin", f"{pindir}/x/y/q", "--mkdir", "-o", "json")
    assert code == 0, err
    info = json.loads(out)
    assert (info["key_size"], info["max_entries"]) == (0, 1024)
    code, out, _ = bm("create", "lpm_trie", "--key", "8", "--value", "4", "--pin", f"{pindir}/l", "-o", "json")
    assert code == 0 and json.loads(out)["flags"] == ["no_prealloc"]
    code, out, _ = bm("create", "perf_event_array", "--pin", f"{pindir}/p", "-o", "json")
    assert code == 0 and json.loads(out)["max_entries"] == possible_cpus()


def test_negative_numbers_are_values(bm, pindir):
    pin = f"{pindir}/s"
    assert bm("create", "hash", "--key", "4", "--value", "8", "--pin", pin)[0] == 0
    assert bm("update", pin, "-5", "-1", "-l", "s32:s64")[0] == 0
    assert bm("lookup", pin, "-5", "-l", "s32:s64")[1] == "-1\n"
    assert bm("lookup", pin, "-l", "s32:s64", "-5")[1] == "-1\n"
    assert bm("dump", pin)[1] == "fb ff ff ff\tff ff ff ff ff ff ff ff\n"


def test_percpu_through_the_cli(bm, pindir):
    pin = f"{pindir}/pc"
    n = possible_cpus()
    assert bm("create", "percpu_array", "--value", "8", "--max-entries", "2", "--pin", pin)[0] == 0
    vals = [str(10 + i) for i in range(n)]
    assert bm("update", pin, "1", *vals, "-l", "u32:u64")[0] == 0
    code, out, _ = bm("lookup", pin, "1", "-l", "u32:u64", "-o", "json")
    assert json.loads(out) == {"key": 1, "values": [10 + i for i in range(n)]}
    code, out, _ = bm("dump", pin, "-l", "u32:u64", "-o", "text")
    assert out.splitlines() == ["0\t" + "\t".join(["0"] * n), "1\t" + "\t".join(vals)]
    code, _, err = bm("update", pin, "1", *vals, "1", "-l", "u32:u64")
    assert code == 2 and f"this machine has {n} possible CPUs" in err


def test_queue_stack_bloom_verbs(bm, pindir):
    q, s, b = f"{pindir}/q", f"{pindir}/s", f"{pindir}/b"
    for kind, pin in (("queue", q), ("stack", s)):
        assert bm("create", kind, "--value", "4", "--max-entries", "2", "--pin", pin)[0] == 0
        for v in ("1", "2"):
            assert bm("push", pin, v, "-l", "u32")[0] == 0
        assert bm("push", pin, "3", "-l", "u32")[0] == 3  # full
    assert bm("peek", q, "-l", "u32")[1] == "1\n"
    assert [bm("pop", q, "-l", "u32")[1] for _ in range(2)] == ["1\n", "2\n"]
    assert [bm("pop", s, "-l", ":u32")[1] for _ in range(2)] == ["2\n", "1\n"]
    code, out, err = bm("pop", q)
    assert (code, out) == (1, "") and "the map is empty" in err
    code, _, err = bm("dump", q)
    assert code == 2 and "use 'bpfmap peek', 'bpfmap pop' or 'bpfmap push'" in err
    assert bm("create", "bloom_filter", "--value", "8", "--pin", b, "--hashes", "3")[0] == 0
    assert bm("push", b, "42", "-l", "u64")[0] == 0
    assert bm("peek", b, "42", "-l", "u64")[:2] == (0, "maybe present\n")
    assert bm("peek", b, "43", "-l", "u64")[:2] == (1, "absent\n")
    for pin in (q, s):  # update on a queue or stack: pointed at push, before KEY is read
        code, _, err = bm("update", pin, "1", "2")
        assert code == 2 and "add a value with 'bpfmap push MAP VALUE'" in err and "hex" not in err


def test_maps_of_maps_and_prog_array(bm, pindir, program):
    inner, outer, progs = f"{pindir}/inner", f"{pindir}/outer", f"{pindir}/progs"
    assert bm("create", "array", "--value", "4", "--max-entries", "1", "--pin", inner)[0] == 0
    assert bm("create", "hash_of_maps", "--key", "4", "--inner-map", inner, "--pin", outer)[0] == 0
    assert bm("update", outer, "7", inner, "-l", "u32:")[0] == 0
    inner_id = Map.open(inner).id
    code, out, _ = bm("dump", outer, "-l", "u32:", "-o", "jsonl")
    assert json.loads(out) == {"key": 7, "value": inner_id}
    code, _, err = bm("create", "hash_of_maps", "--key", "4", "--pin", f"{pindir}/o2")
    assert code == 2 and "--inner-map" in err
    assert bm("create", "prog_array", "--max-entries", "2", "--pin", progs)[0] == 0
    assert bm("update", progs, "1", f"id:{program.id}", "-l", "u32:")[0] == 0
    code, out, _ = bm("lookup", progs, "1", "-l", "u32:")
    assert out == f"{program.id}\n"


def test_show_list_pin_freeze(bm, pindir):
    pin = f"{pindir}/m"
    assert bm("create", "hash", "--key", "4", "--value", "4", "--name", "shown_t", "--pin", pin)[0] == 0
    assert bm("pin", pin, f"{pindir}/again")[0] == 0
    code, out, _ = bm("show", "name:shown_t", "-o", "json")
    info = json.loads(out)
    assert sorted(info["pinned"]) == sorted([pin, f"{pindir}/again"])
    assert info["memlock"] > 0 and info["frozen"] is False
    code, out, _ = bm("list", "-o", "jsonl")
    mine = [json.loads(line) for line in out.splitlines() if json.loads(line)["name"] == "shown_t"]
    assert len(mine) == 1 and mine[0]["id"] == info["id"]
    code, out, _ = bm("show", pin, "-o", "text")
    assert out.startswith(f"{info['id']}: hash  name shown_t") and f"\tpinned {pin}\n" in out
    assert bm("freeze", pin)[0] == 0
    code, _, err = bm("update", pin, "00 00 00 00", "00 00 00 00")
    assert code == 3 and "frozen" in err
    assert json.loads(bm("show", pin, "-o", "json")[1])["frozen"] is True


def test_json_dump_is_one_document(bm, pindir):
    pin = f"{pindir}/a"
    assert bm("create", "array", "--value", "8", "--max-entries", "3", "--pin", pin)[0] == 0
    code, out, _ = bm("dump", pin, "-l", "u32:u64", "-o", "json")
    assert json.loads(out) == [{"key": i, "value": 0} for i in range(3)]
    code, out, _ = bm("dump", pin, "-o", "table")
    assert "00 00 00 00" in out and "3 entries" in out


def test_empty_dump_is_not_an_error(bm, pindir):
    pin = f"{pindir}/e"
    assert bm("create", "hash", "--key", "4", "--value", "4", "--pin", pin)[0] == 0
    assert bm("dump", pin, "-o", "json") == (0, "[]\n", "")
    assert bm("dump", pin) == (0, "", "")


@pytest.mark.kernel
def test_ensure_bpffs_mounts_once(tmp_path):
    import ctypes

    from bpfmap import ensure_bpffs, is_bpffs

    target = str(tmp_path / "fs")
    assert not is_bpffs(str(tmp_path))
    try:
        assert ensure_bpffs(target) is True
        assert is_bpffs(target)
        assert ensure_bpffs(target) is False
    finally:
        ctypes.CDLL(None).umount2(target.encode(), 2)


def test_debug_env_shows_the_traceback(pindir):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "bpfmap", "dump", f"{pindir}/missing"],
        capture_output=True,
        text=True,
        env=dict(os.environ, BPFMAP_DEBUG="1"),
    )
    assert r.returncode != 0 and "Traceback" in r.stderr and "NoSuchObject" in r.stderr


def test_reader_closing_the_pipe_is_not_an_error(pindir):
    import struct
    import subprocess

    from helpers import BPFMAP_SH

    pin = f"{pindir}/many"
    n = 200000
    with Map.create("hash", 4, 8, max_entries=n) as m:
        m.update_batch(struct.pack(f"={n}I", *range(n)), bytes(8 * n), n)
        m.pin(pin)
    cmd = BPFMAP_SH
    r = subprocess.run(
        ["bash", "-c", f"{cmd} dump {pin} -l u32:u64 | head -1; echo rc=${{PIPESTATUS[0]}}"],
        capture_output=True,
        text=True,
    )
    assert r.stdout.splitlines()[-1] == "rc=0" and r.stderr == ""
    # the same dump as a line of `bpfmap batch`: the reader going away is not an error there either
    r = subprocess.run(
        ["bash", "-c", f"echo 'dump {pin} -l u32:u64' | {cmd} batch - | head -1; echo rc=${{PIPESTATUS[1]}}"],
        capture_output=True,
        text=True,
    )
    assert r.stdout.splitlines()[-1] == "rc=0" and r.stderr == ""


def test_closed_or_full_streams_keep_the_exit_code_and_say_it_in_one_line(pindir, tmp_path):
    """stdout closed (`>&-`): a command that writes there says so in one line, exit 3,
    export's bytes too; stderr closed or full: the exit code is still the error's."""
    import subprocess

    from helpers import BPFMAP_SH

    pin = f"{pindir}/m"
    with Map.create("hash", 4, 8, max_entries=4) as m:
        m.update((5).to_bytes(4, "little"), (9).to_bytes(8, "little"))
        m.pin(pin)
    config = tmp_path / "e.yaml"
    config.write_text(f'metrics:\n  - name: t\n    map: {pin}\n    layout: "u32:u64"\n    labels: [key]\n')
    closed = "bpfmap: standard output is closed; give the command somewhere to write (> FILE, or > /dev/null)\n"
    for line, code, err in (
        (f"dump {pin} -l u32:u64 >&-", 3, closed),
        (f"export {config} --once >&-", 3, closed),
        (f"update {pin} 5 10 -l u32:u64 >&-", 0, ""),  # writes nothing on stdout
        (f"lookup {pin} 6 -l u32:u64 2>&-", 1, ""),
        (f"dump {pindir}/nope 2>&-", 3, ""),
        (f"dump {pindir}/nope 2>/dev/full", 3, ""),
        ("2>/dev/full", 2, ""),  # no arguments: the short usage, on a full stderr
    ):
        r = subprocess.run(["bash", "-c", f"{BPFMAP_SH} {line}"], capture_output=True, text=True)
        assert (r.returncode, r.stderr) == (code, err), line


def test_maps_with_unreadable_values_say_so_once(cli, pindir):
    """cgroup_array, xskmap, sockmap with 4-byte values: user space cannot read their
    values, so occupied slots cannot be told from empty ones: one note, no lines."""
    for mtype, extra in (("sockmap", ("--value", "4")), ("cgroup_array", ()), ("xskmap", ())):
        path = f"{pindir}/{mtype}"
        assert cli("create", mtype, "--max-entries", "3", *extra, "--pin", path, "-q").returncode == 0
        for fmt in ("text", "jsonl", "json"):
            r = cli("dump", path, "-o", fmt)
            assert (r.returncode, r.stdout) == (0, "[]\n" if fmt == "json" else ""), (mtype, fmt, r.stdout)
            assert "3 slots" in r.stderr and "cannot be told from empty ones" in r.stderr
            assert r.stderr.count("\n") == 1
