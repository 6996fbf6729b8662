"""Layouts through the CLI, on the real kernel: every verb reads and writes through them."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

from bpfmap import Map, possible_cpus

FLOW = "saddr=ipv4,daddr=ipv4,sport=be16,dport=be16,proto=u8:packets=u64,bytes=u64,comm=char[16]"
FLOW_H = """
#include <linux/types.h>
#define TASK_COMM_LEN 16
struct flow_key { __be32 saddr, daddr; __be16 sport, dport; __u8 proto; };
struct flow_stats { __u64 packets, bytes; char comm[TASK_COMM_LEN]; };
"""


@pytest.fixture
def flows(bm, pindir):
    pin = f"{pindir}/flows"
    assert bm("create", "hash", "--key", "16", "--value", "32", "--pin", pin)[0] == 0
    assert bm("update", pin, "10.0.0.1,10.0.0.2,1234,443,6", "100,64000,curl", "-l", FLOW)[0] == 0
    assert (
        bm(
            "update",
            pin,
            '{"saddr":"10.0.0.3","daddr":"10.0.0.2","sport":999,"dport":80,"proto":17}',
            '{"packets":7,"bytes":900,"comm":"dig"}',
            "-l",
            FLOW,
        )[0]
        == 0
    )
    assert (
        bm(
            "update",
            pin,
            "saddr=10.0.0.4,daddr=10.0.0.2,sport=1,dport=53,proto=17",
            "packets=50,bytes=5,comm=nsd",
            "-l",
            FLOW,
        )[0]
        == 0
    )
    return pin


def test_written_through_a_layout_and_dumped_back(bm, flows):
    code, out, _ = bm("dump", flows, "-l", FLOW, "-o", "jsonl")
    rows = sorted((json.loads(line) for line in out.splitlines()), key=lambda r: r["key"]["saddr"])
    assert rows[0] == {
        "key": {"saddr": "10.0.0.1", "daddr": "10.0.0.2", "sport": 1234, "dport": 443, "proto": 6},
        "value": {"packets": 100, "bytes": 64000, "comm": "curl"},
    }
    assert [r["value"]["comm"] for r in rows] == ["curl", "dig", "nsd"]
    # the bytes are what C would have: network order for be16, padding zeroed
    with Map.open(flows) as m:
        raw = dict(m.items())
    key = bytes([10, 0, 0, 1, 10, 0, 0, 2]) + (1234).to_bytes(2, "big") + (443).to_bytes(2, "big") + b"\x06\0\0\0"
    assert raw[key][:8] == (100).to_bytes(8, "little") and raw[key][16:21] == b"curl\0"


def test_lookup_text_forms_and_c_header(bm, flows, tmp_path):
    code, out, _ = bm("lookup", flows, "10.0.0.3,10.0.0.2,999,80,17", "-l", FLOW)
    assert (code, out) == (0, "packets=7,bytes=900,comm=dig\n")
    header = tmp_path / "flow.h"
    header.write_text(FLOW_H)
    code, out, err = bm(
        "lookup",
        flows,
        "167772163,167772162,999,80,17",
        "--c-header",
        str(header),
        "--key-type",
        "struct flow_key",
        "--value-type",
        "struct flow_stats",
        "-o",
        "json",
    )
    assert code == 0, err
    assert json.loads(out)["value"] == {"packets": 7, "bytes": 900, "comm": "dig"}


def test_csv_table_and_text(bm, flows, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = bm("dump", flows, "-l", FLOW, "-o", "csv", "--sort", "packets")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == [
        "key.saddr",
        "key.daddr",
        "key.sport",
        "key.dport",
        "key.proto",
        "value.packets",
        "value.bytes",
        "value.comm",
    ]
    assert [r[5] for r in rows[1:]] == ["7", "50", "100"]
    code, out, _ = bm("dump", flows, "-l", FLOW, "-o", "table")
    header = out.splitlines()[0]
    for col in ("key.saddr", "key.dport", "packets", "comm"):
        assert col in header
    code, out, _ = bm("dump", flows, "-l", FLOW, "-o", "text", "--sort", "key.sport")
    assert out.splitlines()[0] == "saddr=10.0.0.4,daddr=10.0.0.2,sport=1,dport=53,proto=17\tpackets=50,bytes=5,comm=nsd"


def test_sort_reverse_top(bm, flows):
    def comms(*args):
        out = bm("dump", flows, "-l", FLOW, "-o", "jsonl", *args)[1]
        return [json.loads(line)["value"]["comm"] for line in out.splitlines()]

    assert comms("--sort", "value.packets") == ["dig", "nsd", "curl"]
    assert comms("--sort", "packets", "--reverse") == ["curl", "nsd", "dig"]
    assert comms("--sort", "packets", "--top", "2") == ["curl", "nsd"]
    assert comms("--sort", "bytes", "--top", "1", "--reverse") == ["nsd"]
    assert comms("--sort", "comm") == ["curl", "dig", "nsd"]
    code, _, err = bm("dump", flows, "-l", FLOW, "--sort", "nosuch")
    assert code == 2 and "--sort nosuch: no field nosuch in the key or the value" in err
    code, _, err = bm("dump", flows, "--top", "3")
    assert code == 2 and "--top needs --sort" in err


@pytest.mark.parametrize(
    "args,message",
    [
        (["10.0.0.300,10.0.0.2,1,2,3", "1,2,x"], "field saddr (ipv4): '10.0.0.300' is not an IPV4 address"),
        (["10.0.0.1,10.0.0.2,70000,2,3", "1,2,x"], "field sport (be16): 70000 is out of range 0..65535"),
        (["10.0.0.1,10.0.0.2,1,2", "1,2,x"], "4 field(s) given, 5 expected"),
        (
            ["10.0.0.1,10.0.0.2,1,2,3", "1,2,a-name-longer-than-16"],
            "field comm (char[16]): 'a-name-longer-than-16' is 21 bytes",
        ),
        (["10.0.0.1,10.0.0.2,1,2,3", '{"packets":1,"bytes":2}'], "missing field(s) comm"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_field(bm, flows, args, message):
    code, out, err = bm("update", flows, *args, "-l", FLOW)
    assert code == 2 and message in err and err.count("\n") == 1


def test_size_mismatch_shows_offsets(bm, flows):
    code, _, err = bm("dump", flows, "-l", "a=u8,b=u64:u64")
    assert code == 2
    assert "layout for the key is 16 bytes but the map's key is 16 bytes" not in err
    code, _, err = bm("dump", flows, "-l", "a=u8,b=u32:u64")
    assert "the key is 8 bytes but the map's key is 16 bytes; fields: {a=u8@0, b=u32@4} (8 bytes)" in err


def test_packed_and_layout_files(bm, pindir, tmp_path):
    pin = f"{pindir}/p"
    assert bm("create", "hash", "--key", "5", "--value", "9", "--pin", pin)[0] == 0
    assert bm("update", pin, "1,2", "3,4", "-l", "u32,u8:u64,u8", "--packed")[0] == 0
    assert bm("lookup", pin, "1,2", "-l", "packed u32,u8:packed u64,u8")[1] == "f0=3,f1=4\n"
    code, _, err = bm("lookup", pin, "1,2", "-l", "u32,u8:u64,u8")
    assert code == 2 and "8 bytes but the map's key is 5 bytes" in err
    lf = tmp_path / "maps.layout"
    lf.write_text("# two layouts\n[small]\npacked id=u32, tag=u8\n  : packed n=u64, f=u8\n[other]\nu32:u64\n")
    assert bm("lookup", pin, "1,2", "-l", f"@{lf}#small")[1] == "n=3,f=4\n"
    code, _, err = bm("lookup", pin, "1,2", "-l", f"@{lf}")
    assert code == 2 and "holds 2 layouts; pick one with" in err


def test_percpu_aggregates_and_single_cpu(bm, pindir):
    n = possible_cpus()
    pin = f"{pindir}/pc"
    assert bm("create", "percpu_hash", "--key", "4", "--value", "16", "--pin", pin)[0] == 0
    lay = "u32:pkts=u64,bytes=u64"
    vals = [{"pkts": i + 1, "bytes": 10 * (i + 1)} for i in range(n)]
    assert bm("update", pin, "1", "--percpu-values", json.dumps(vals), "-l", lay)[0] == 0
    out = bm("lookup", pin, "1", "-l", lay, "-o", "json")[1]
    assert json.loads(out)["values"] == vals
    for how, expect in [("sum", sum), ("max", max), ("min", min)]:
        out = bm("lookup", pin, "1", "-l", lay, "--percpu", how, "-o", "json")[1]
        assert json.loads(out) == {
            "key": 1,
            "value": {"pkts": expect(v["pkts"] for v in vals), "bytes": expect(v["bytes"] for v in vals)},
        }
    out = bm("dump", pin, "-l", lay, "--percpu", "avg", "-o", "jsonl")[1]
    assert json.loads(out)["value"]["pkts"] == sum(range(1, n + 1)) / n
    # write one CPU's slot, the others keep their values
    assert bm("update", pin, "1", "pkts=99,bytes=98", "--cpu", "0", "-l", lay)[0] == 0
    got = json.loads(bm("lookup", pin, "1", "-l", lay, "-o", "json")[1])["values"]
    assert got[0] == {"pkts": 99, "bytes": 98} and got[1:] == vals[1:]
    assert bm("lookup", pin, "1", "-l", lay, "--cpu", "0")[1] == "pkts=99,bytes=98\n"
    code, _, err = bm("lookup", pin, "1", "-l", lay, "--cpu", str(n))
    assert code == 2 and f"CPUs 0..{n - 1}" in err
    code, _, err = bm("lookup", pin, "1", "-l", lay, "--percpu", "median")
    assert code == 2 and "choose one of all, sum, max, min, avg" in err
    code, _, err = bm("update", pin, "1", "--percpu-values", '[{"pkts": 1, "bytes": 2}]' * 1, "-l", lay)
    assert code == 2 and f"this machine has {n} possible CPUs" in err
    code, _, err = bm("update", pin, "1", "--percpu-values", "[1, 2]", "-l", "u32:u64,u64")
    assert code == 2 and "expected the fields as a JSON object or list, got 1" in err
    code, _, err = bm("update", pin, "1", *["1,2"] * (n + 1), "-l", lay)
    assert code == 2 and f"this machine has {n} possible CPUs" in err


def test_bpftool_written_map_reads_through_layout_and_header(bm, pindir, tmp_path, bpftool):
    path = f"{pindir}/btflows"
    subprocess.run(
        [bpftool, "map", "create", path, "type", "hash", "key", "16", "value", "32", "entries", "8", "name", "btflows"],
        check=True,
    )
    key = ["0a", "00", "00", "01", "0a", "00", "00", "02", "04", "d2", "01", "bb", "06", "00", "00", "00"]
    value = (
        "64 00 00 00 00 00 00 00 00 fa 00 00 00 00 00 00 " + " ".join(f"{b:02x}" for b in b"curl") + " 00" * 12
    ).split()
    subprocess.run([bpftool, "map", "update", "pinned", path, "key", "hex", *key, "value", "hex", *value], check=True)
    want = {
        "key": {"saddr": "10.0.0.1", "daddr": "10.0.0.2", "sport": 1234, "dport": 443, "proto": 6},
        "value": {"packets": 100, "bytes": 64000, "comm": "curl"},
    }
    assert json.loads(bm("dump", path, "-l", FLOW, "-o", "jsonl")[1]) == want
    header = tmp_path / "flow.h"
    header.write_text(FLOW_H)
    out = bm(
        "dump",
        path,
        "--c-header",
        str(header),
        "--key-type",
        "struct flow_key",
        "--value-type",
        "struct flow_stats",
        "-o",
        "jsonl",
    )[1]
    got = json.loads(out)
    assert got["value"] == want["value"]
    assert (got["key"]["sport"], got["key"]["dport"], got["key"]["saddr"]) == (1234, 443, 0x0A000001)


def test_option_conflicts(bm, flows, tmp_path):
    code, _, err = bm("dump", flows, "-l", FLOW, "--c-header", "/x.h", "--key-type", "int")
    assert code == 2 and "either --layout or --c-header" in err
    code, _, err = bm("dump", flows, "--key-type", "int")
    assert code == 2 and "need --c-header" in err
    # --percpu on a map that is not per-CPU is the identity (scripts need not branch); --cpu is an error
    assert bm("dump", flows, "--percpu", "sum") == bm("dump", flows)
    code, _, err = bm("dump", flows, "--percpu", "median")
    assert code == 2 and "--percpu median" in err
    code, _, err = bm("dump", flows, "--cpu", "0")
    assert code == 2 and "not a per-CPU map" in err
