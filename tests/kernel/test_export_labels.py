"""bpfmap export, part 2, seen through a real Prometheus: label decoders (a cgroup the
test makes, with a program run inside it; an interface the test adds; a block device;
users; a static map; regexp filters; decode errors counted), metrics from an event
stream a program writes, a 100,000-series scrape promtool accepts, and the fast path
against the decoded one on a real map."""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import time
import uuid

import pytest
from helpers import create_pin, need_tool, run_cli
from helpers.programs import packet_to_ringbuf, update_elem
from helpers.prometheus import Prometheus, write_config

from bpfmap import Map, Program
from bpfmap.core.objrefs import cgroup2_mount

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

pytestmark = pytest.mark.kernel

CGROUP_RUNS = f"""
    call get_current_cgroup_id
    *(u64 *)(r10 - 8) = r0
    r1 = map[runs]
    r2 = r10
    r2 += -8
    call map_lookup_elem
    if r0 == 0 goto new
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
    goto out
new:
    r1 = 1
    *(u64 *)(r10 - 16) = r1
    {update_elem("runs", 8, 16)}
out:
    r0 = 0
    exit
"""

EVENT = packet_to_ringbuf(8)  # the 8 bytes after the test packet's Ethernet header


@pytest.fixture
def cgroup():
    root = cgroup2_mount()
    if root is None:
        pytest.skip("no cgroup2 hierarchy is mounted")
    path = os.path.join(root, "bpfmaptest" + uuid.uuid4().hex[:8])
    os.mkdir(path)
    yield path
    for _ in range(50):
        try:
            os.rmdir(path)
            break
        except OSError:
            time.sleep(0.1)


@pytest.fixture
def interface():
    """A network interface of the test's own: a dummy, else a veth pair; its index and name."""
    need_tool("ip")
    name = "bpfmapt" + uuid.uuid4().hex[:6]
    for args in (["type", "dummy"], ["type", "veth", "peer", "name", name + "p"]):
        r = subprocess.run(["ip", "link", "add", name, *args], capture_output=True, text=True)
        if r.returncode == 0:
            break
    else:
        pytest.skip(f"cannot add a dummy or veth interface here: {r.stderr.strip()}")
    with open(f"/sys/class/net/{name}/ifindex") as f:
        index = int(f.read())
    yield index, name
    subprocess.run(["ip", "link", "del", name], capture_output=True)


def run_in_cgroup(cgroup: str, pin: str, times: int) -> None:
    """A child process moves itself into ``cgroup`` and runs the counting program there."""
    code = (
        "import os, sys\n"
        f"open({os.path.join(cgroup, 'cgroup.procs')!r}, 'w').write(str(os.getpid()))\n"
        "from bpfmap import Map, Program\n"
        f"m = Map.open({pin!r})\n"
        f"p = Program.load('raw_tracepoint', {CGROUP_RUNS!r}, {{'runs': m}})\n"
        f"for _ in range({times}):\n"
        "    p.test_run(b'')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_decoders_and_event_streams_through_a_real_prometheus(pindir, cgroup, interface, exporter, tmp_path):  # noqa: F811
    index, ifname = interface
    runs = create_pin(pindir, "runs", "hash", "--layout", "cgid=u64:u64")
    run_in_cgroup(cgroup, runs, 3)
    with Map.open(runs) as m:
        m.update(struct.pack("=Q", 987654321), struct.pack("=Q", 5))  # a cgroup id nobody has: raw, counted
    ifs = create_pin(pindir, "ifs", "hash", "--layout", "ifindex=u32:u64")
    run_cli("update", ifs, str(index), "11")
    devs = create_pin(pindir, "devs", "hash", "--layout", "dev=u32,uid=u32,gid=u32:u64")
    block = sorted(os.listdir("/sys/dev/block"))[0]
    major, minor = (int(x) for x in block.split(":"))
    devname = os.path.basename(os.readlink(f"/sys/dev/block/{block}"))
    run_cli("update", devs, f"dev={major << 20 | minor},uid=0,gid=0", "4")
    ops = create_pin(pindir, "ops", "hash", "--layout", "op=u32,comm=char[16]:u64")
    for op, comm, n in ((1, "nginx", 10), (2, "nginx", 20), (7, "nginx-worker", 30), (1, "curl", 99)):
        assert run_cli("update", ops, f"op={op},comm={comm}", str(n)).returncode == 0
    ev = create_pin(pindir, "ev", "ringbuf", "--max-entries", "65536")
    config = write_config(
        tmp_path,
        f"""
metrics:
  - name: cgroup_runs_total
    map: {runs}
    labels: [cgid]
    as: {{cgid: cgroup}}
  - name: if_packets_total
    map: {ifs}
    labels: [ifindex]
    as: {{ifindex: ifname}}
  - name: dev_ios_total
    map: {devs}
    labels: [dev, uid, gid]
    as: {{dev: majorminor, uid: uid, gid: gid}}
  - name: ops_total
    map: {ops}
    labels: [op, comm]
    as:
      op: {{static_map: {{1: read, 2: write}}, default: other}}
      comm: {{regexp: "nginx.*"}}
  - name: ops_not_curl_total
    map: {ops}
    labels: [op, comm]
    as: {{comm: {{regexp: "curl", drop: true}}, op: {{static_map: {{1: read}}}}}}
  - name: events_total
    map: {ev}
    layout: "kind=u32,bytes=u32"
    labels: [kind]
    as: {{kind: {{static_map: {{1: read, 2: write}}}}}}
  - name: event_bytes_total
    map: {ev}
    layout: "kind=u32,bytes=u32"
    labels: [kind]
    value: bytes
  - name: event_size_bytes
    type: histogram
    map: {ev}
    layout: "kind=u32,bytes=u32"
    value: bytes
    buckets: exp2
""",
    )
    e = exporter(config)
    with Map.open(ev) as m:
        prog = Program.load("socket_filter", EVENT, {"ev": m})
        for kind, n, size in ((1, 3, 100), (2, 2, 5000)):
            for _ in range(n):
                prog.test_run(bytes(14) + struct.pack("<II", kind, size) + bytes(50))
        prog.close()
    cg = "/" + os.path.relpath(cgroup, cgroup2_mount())
    prom = Prometheus(tmp_path, f"127.0.0.1:{e.port}")
    try:
        prom.wait_for(lambda: prom.value(f'cgroup_runs_total{{cgid="{cg}"}}') == 3, f"runs in {cg} == 3")
        assert prom.value('cgroup_runs_total{cgid="987654321"}') == 5
        assert prom.value('bpfmap_export_decode_errors_total{metric="cgroup_runs_total",label="cgid"}') >= 1
        assert prom.value(f'if_packets_total{{ifindex="{ifname}"}}') == 11
        assert prom.value(f'dev_ios_total{{dev="{devname}",uid="root",gid="root"}}') == 4
        got = {(r["metric"]["op"], r["metric"]["comm"]): float(r["value"][1]) for r in prom.query("ops_total")}
        assert got == {("read", "nginx"): 10, ("write", "nginx"): 20, ("other", "nginx-worker"): 30}
        got = {(r["metric"]["op"], r["metric"]["comm"]): float(r["value"][1]) for r in prom.query("ops_not_curl_total")}
        assert got == {("read", "nginx"): 10, ("2", "nginx"): 20, ("7", "nginx-worker"): 30}
        assert prom.value('bpfmap_export_decode_errors_total{metric="ops_not_curl_total",label="op"}') >= 2
        # the event stream: records counted, a field summed, a histogram with its exact sum
        prom.wait_for(lambda: prom.value('events_total{kind="read"}') == 3, "3 read events")
        assert prom.value('events_total{kind="write"}') == 2
        assert prom.value('event_bytes_total{kind="2"}') == 10000
        assert prom.value("event_size_bytes_sum") == 3 * 100 + 2 * 5000
        assert prom.value("event_size_bytes_count") == 5
        p50 = prom.value("histogram_quantile(0.5, sum by (le) (event_size_bytes_bucket))")
        assert p50 is not None and 64 <= p50 <= 128, p50
        assert prom.value('bpfmap_export_events_total{metric="events_total"}') == 5
        # more records between scrapes: the counters follow
        with Map.open(ev) as m:
            prog = Program.load("socket_filter", EVENT, {"ev": m})
            for _ in range(4):
                prog.test_run(bytes(14) + struct.pack("<II", 1, 100) + bytes(50))
            prog.close()
        prom.wait_for(lambda: prom.value('events_total{kind="read"}') == 7, "7 read events")
    finally:
        prom.stop()


def test_max_series_drops_the_series_seen_longest_ago(pindir, tmp_path):
    ev = create_pin(pindir, "ev", "ringbuf", "--max-entries", "65536")
    config = write_config(
        tmp_path,
        f"metrics:\n  - name: ev_total\n    map: {ev}\n    layout: 'kind=u32,bytes=u32'\n"
        f"    labels: [kind]\n    max_series: 3\n",
    )
    from bpfmap.export import Exporter, exposition, read_config

    e = Exporter(read_config(config), log=lambda _t: None)
    try:
        with Map.open(ev) as m:
            prog = Program.load("socket_filter", EVENT, {"ev": m})
            for kind in (1, 2, 3, 1, 4, 5):  # 2 and 3 were seen longest ago when 4 and 5 come
                prog.test_run(bytes(14) + struct.pack("<II", kind, 1) + bytes(50))
            prog.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            fams = {f.name: f for f in text_string_to_metric_families(exposition(e).decode())}
            if fams["bpfmap_export_events"].samples[0].value == 6:
                break
            time.sleep(0.1)
        got = {s.labels["kind"]: s.value for s in fams["ev"].samples}
        assert got == {"1": 2, "4": 1, "5": 1}
        assert fams["bpfmap_export_series_dropped"].samples[0].value == 2
    finally:
        e.close()


def test_the_fast_path_and_the_decoded_path_agree_on_a_real_map(pindir, tmp_path):
    """Labels naming every key field: the series come straight from the kernel's batches;
    the same scrape read into samples (the decoded path) writes the same lines."""
    from bpfmap.export import Exporter, read_config
    from bpfmap.export.exposition import family_text

    layout = "saddr=ipv4,dport=be16,comm=char[6],ok=bool:packets=u64,bytes=u64"
    pin = create_pin(pindir, "flows", "hash", "--layout", layout, "--max-entries", "5000")
    rnd = random.Random(7)
    comms = ["a", "b\\", 'c"d', "e\nf", "héé"]  # every escape, and UTF-8
    lines = "".join(
        json.dumps(
            {
                "key": {
                    "saddr": f"10.0.{i >> 8}.{i & 255}",
                    "dport": rnd.randrange(65536),
                    "comm": rnd.choice(comms),
                    "ok": rnd.random() < 0.5,
                },
                "value": {"packets": rnd.randrange(2**64), "bytes": i},
            }
        )
        + "\n"
        for i in range(3000)
    )
    r = run_cli("update", pin, "--from", "-", "--layout", layout, input=lines)
    assert r.returncode == 0, r.stderr
    config = write_config(
        tmp_path,
        f"metrics:\n  - name: p_total\n    map: {pin}\n    value: packets\n    labels: [saddr, dport, comm, ok]\n",
    )
    e = Exporter(read_config(config), log=lambda _t: None)
    try:
        [metric] = e.metrics
        fast, _n, _m = e.read(metric, fast=True)
        assert fast.lines is not None  # this one takes the fast path
        fast_text = "".join(family_text(fast))
        slow, _n, _m = e.read(metric, fast=False)
        assert slow.lines is None and len(slow.samples) == 3000
        assert fast_text == "".join(family_text(slow))
    finally:
        e.close()


def test_promtool_accepts_a_100000_series_scrape(pindir, tmp_path):
    promtool = need_tool("promtool")
    layout = "saddr=ipv4,daddr=ipv4,dport=be16,pad[2]:packets=u64,bytes=u64"
    pin = create_pin(pindir, "flows", "hash", "--layout", layout, "--max-entries", "100000")
    n = 100000
    keys = b"".join(struct.pack(">IIH2x", 0x0A000000 + i, 0xC0A80001, i % 65536) for i in range(n))
    values = b"".join(struct.pack("=QQ", i, i * 1500) for i in range(n))
    with Map.open(pin) as m:
        m.update_batch(keys, values, n)
    config = write_config(
        tmp_path,
        f"metrics:\n  - name: flow_packets_total\n    help: Packets per flow\n    map: {pin}\n"
        f"    value: packets\n    labels: [saddr, daddr, dport]\n",
    )
    r = run_cli("export", config, "--once")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\nflow_packets_total{") == n
    check = subprocess.run([promtool, "check", "metrics"], input=r.stdout, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_event_records_decoded_by_an_objects_btf(tmp_path):
    """object: + value_type: a stream's records read through the object's BTF (a record
    shorter than the type, as programs send a trailing array only as far as it is used,
    still counts)."""
    from helpers import compile_bpf

    from bpfmap.export import parse_config
    from bpfmap.export.streams import StreamMetric
    from bpfmap.streams.events import Record

    obj = compile_bpf(os.path.join(os.path.dirname(__file__), "..", "bpf", "records.bpf.c"), tmp_path / "records.o")
    [metric] = parse_config(
        {
            "metrics": [
                {
                    "name": "execs_total",
                    "map": "/unused",
                    "object": obj,
                    "value_type": "struct exec_event",
                    "labels": ["comm"],
                    "value": "args_len",
                }
            ]
        },
        "c.yaml",
    )
    sink = StreamMetric(metric, lambda *_a: None, perf=False)

    def event(pid: int, comm: str, args: bytes) -> Record:
        return Record(struct.pack("=II16s", pid, len(args), comm.encode()) + args)

    sink.add([event(1, "bash", b"ls -l"), event(2, "bash", b"cat"), event(3, "curl", b"-v x")])
    f = sink.family()
    assert dict(f.samples) == {("bash",): 8, ("curl",): 4}
    assert sink.records == 3
