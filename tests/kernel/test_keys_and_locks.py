"""LPM trie keys as CIDR, delete --print (BPF_MAP_LOOKUP_AND_DELETE_ELEM), --lock
(BPF_F_LOCK on values holding a struct bpf_spin_lock)."""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import create_pin as create
from helpers import run_cli

from bpfmap import Map

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize(
    "args",
    [
        ("--key", "8", "--value", "4"),
        ("--layout", "prefixlen=u32,data=u8[4]:u32"),
        ("--layout", "len=u32,addr=ipv4:u32"),
    ],
    ids=["hex", "u8-array", "ipv4"],
)
def test_lpm_trie_ipv4_keys_are_cidr(pindir, args):
    pin = create(pindir, "t", "lpm_trie", *args)
    value = "01 00 00 00" if args[0] == "--key" else "1"
    assert run_cli("update", pin, "10.0.0.0/8", value).returncode == 0
    assert run_cli("lookup", pin, "10.20.30.40/32").returncode == 0  # longest prefix match
    assert run_cli("lookup", pin, "11.0.0.1/32").returncode == 1
    rows = [json.loads(x) for x in run_cli("dump", pin, "-o", "jsonl").stdout.splitlines()]
    assert [r["key"] for r in rows] == ["10.0.0.0/8"]
    with Map.open(pin) as m:
        assert list(m.keys()) == [bytes([8, 0, 0, 0, 10, 0, 0, 0])]
    assert run_cli("delete", pin, "10.0.0.0/8").returncode == 0
    r = run_cli("update", pin, "10.0.0.0/33", value)
    assert r.returncode == 2 and "the prefix length must be 0..32" in r.stderr


def test_lpm_trie_ipv6_keys_and_the_comma_form(pindir, bpftool):
    pin = create(pindir, "t6", "lpm_trie", "--layout", "prefixlen=u32,data=u8[16]:u64")
    assert run_cli("update", pin, "2001:db8::/32", "5").returncode == 0
    comma = "prefixlen=64,data=[32,1,13,184,0,0,0,1,0,0,0,0,0,0,0,0]"
    assert run_cli("update", pin, comma, "6").returncode == 0
    assert run_cli("dump", pin).stdout.splitlines() == ["2001:db8:0:1::/64\t6", "2001:db8::/32\t5"]
    assert run_cli("lookup", pin, "2001:db8:0:1::5/128").stdout == "6\n"
    assert run_cli("lookup", pin, "2001:db8:ffff::1/128").stdout == "5\n"
    r = run_cli("update", pin, "10.0.0.0/8", "1")
    assert r.returncode == 2 and "not an IPv6 address" in r.stderr
    out = subprocess.run([bpftool, "-j", "map", "dump", "pinned", pin], capture_output=True, text=True, check=True)
    keys = sorted(bytes(int(b, 16) for b in e["key"]) for e in json.loads(out.stdout))
    assert keys[0][:4] == (32).to_bytes(4, "little") and keys[0][4:8] == bytes([32, 1, 13, 184])


def test_delete_print_takes_the_entry_in_one_step(pindir):
    pin = create(pindir, "h", "hash", "--layout", "u32:n=u64,comm=char[8]")
    assert run_cli("update", pin, "1", "n=42,comm=x").returncode == 0
    r = run_cli("delete", pin, "1", "--print", "-o", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"key": 1, "value": {"n": 42, "comm": "x"}}
    r = run_cli("delete", pin, "1", "--print")
    assert r.returncode == 1 and r.stdout == ""
    pc = create(pindir, "pc", "percpu_hash", "--layout", "u32:u64")
    assert run_cli("update", pc, "3", "7").returncode == 0
    r = run_cli("delete", pc, "3", "--print", "-o", "json")
    assert r.returncode == 0 and set(json.loads(r.stdout)["values"]) == {7}
    arr = create(pindir, "a", "array", "--layout", "u32:u64", "--max-entries", "2")
    r = run_cli("delete", arr, "0", "--print")
    assert r.returncode == 2 and "array maps cannot delete" in r.stderr
    lpm = create(pindir, "l", "lpm_trie", "--key", "8", "--value", "4")
    assert run_cli("update", lpm, "10.0.0.0/8", "01 00 00 00").returncode == 0
    r = run_cli("delete", lpm, "10.0.0.0/8", "--print")
    assert r.returncode == 2 and "only for hash maps" in r.stderr
    assert run_cli("lookup", lpm, "10.0.0.0/8").returncode == 0  # nothing deleted
    r = run_cli("delete", pin, "--all", "--print")
    assert r.returncode == 2 and "dump MAP --delete" in r.stderr


def test_lock_reads_and_writes_under_the_values_spin_lock(pindir, tmp_path):
    header = tmp_path / "lock.h"
    header.write_text(
        "struct bpf_spin_lock { unsigned int val; };\n"
        "struct counter { struct bpf_spin_lock lock; unsigned long long n; };\n"
    )
    pin = create(
        pindir, "lk", "hash", "--c-header", str(header), "--key-type", "unsigned int", "--value-type",
        "struct counter", "--btf", "required",
    )  # fmt: skip
    assert run_cli("update", pin, "1", 'lock={"val":0},n=5', "--lock").returncode == 0
    r = run_cli("lookup", pin, "1", "--lock", "-o", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["value"]["n"] == 5
    plain = create(pindir, "p", "hash", "--layout", "u32:u64")
    assert run_cli("update", plain, "1", "2").returncode == 0
    for args in (("lookup", plain, "1", "--lock"), ("update", plain, "1", "3", "--lock")):
        r = run_cli(*args)
        assert r.returncode == 2 and "hold no struct bpf_spin_lock" in r.stderr, r.stderr
    assert run_cli("lookup", plain, "1").stdout == "2\n"
