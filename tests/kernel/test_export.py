"""bpfmap export: maps as Prometheus metrics, checked by prometheus-client's parser,
promtool and a real Prometheus server scraping a real exporter while a real BPF program
(tests/bpf/flows.bpf.c, tests/bpf/hists.bpf.c; loaded by libbpf, run with
BPF_PROG_TEST_RUN) counts between scrapes."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import struct
import subprocess
import time

import pytest
from helpers import BPFMAP, need_tool, run_cli
from helpers.programs import Loaded, loaded_program, sample
from helpers.prometheus import Prometheus, samples, write_config

from bpfmap import Map

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

flows_prog = loaded_program("flows")
hists_prog = loaded_program("hists")


def flow_sample(saddr: str, daddr: str, dport: int, proto: int, length: int, usecs: int, comm: str) -> bytes:
    key = socket.inet_aton(saddr) + socket.inet_aton(daddr) + struct.pack("<HBB", dport, proto, 0)
    return key + struct.pack("<II16s", length, usecs, comm.encode())


def send(loaded: Loaded, times: int, saddr="10.0.0.1", daddr="10.0.0.2", dport=443, proto=6, length=100, usecs=100):
    loaded.run("flow", flow_sample(saddr, daddr, dport, proto, length, usecs, "curl"), times=times)


def flows_config(flows_prog: Loaded, hists_prog: Loaded | None = None, extra: str = "") -> str:
    text = f"""
metrics:
  - name: flow_packets_total
    help: Packets per flow
    type: counter
    map: {flows_prog.map("flows")}
    value: packets
    labels: [saddr, daddr, dport]
    as: {{saddr: ipv4, daddr: ipv4}}
  - name: flow_bytes
    type: gauge
    map: {flows_prog.map("flows")}
    value: bytes
    labels: [saddr, comm]
    as: {{saddr: ipv4}}
  - name: packets_by_proto_total
    map: {flows_prog.map("by_proto")}
    labels: [key]
  - name: lat_seconds
    type: histogram
    map: {flows_prog.map("lat")}
    buckets: exp2
    multiplier: 0.000001
"""
    if hists_prog is not None:
        text += f"""
  - name: task_lat_seconds
    type: histogram
    map: {hists_prog.map("hists")}
    slots: slots
    labels: [comm]
    multiplier: 0.000001
"""
    return text + extra


def once(config: str, *args: str) -> dict:
    r = run_cli("export", config, "--once", *args)
    assert r.returncode == 0, r.stderr
    return {f.name: f for f in text_string_to_metric_families(r.stdout)}


# -- one exposition ---------------------------------------------------------------------------


def test_once_exports_counters_gauges_and_both_histogram_shapes(flows_prog, hists_prog, tmp_path):
    for m in ("flows", "lat"):
        assert run_cli("clear", flows_prog.map(m), "-q").returncode == 0
    send(flows_prog, 5, usecs=100)  # slot 6: [64, 128) us
    send(flows_prog, 2, saddr="10.0.0.9", dport=80, length=1500, usecs=3)  # slot 1: [2, 4) us
    for us in (1, 3, 1000):
        hists_prog.run("record", sample(42, us, "curl"))
    got = once(write_config(tmp_path, flows_config(flows_prog, hists_prog)))
    assert samples(got["flow_packets"], "_total") == {
        (("daddr", "10.0.0.2"), ("dport", "443"), ("saddr", "10.0.0.1")): 5.0,
        (("daddr", "10.0.0.2"), ("dport", "80"), ("saddr", "10.0.0.9")): 2.0,
    }
    assert got["flow_packets"].documentation == "Packets per flow" and got["flow_packets"].type == "counter"
    assert samples(got["flow_bytes"]) == {
        (("comm", "curl"), ("saddr", "10.0.0.1")): 500.0,
        (("comm", "curl"), ("saddr", "10.0.0.9")): 3000.0,
    }
    # per-CPU counts summed; every key of the array is a series
    by_proto = samples(got["packets_by_proto"], "_total")
    assert by_proto[(("key", "6"),)] >= 7 and len(by_proto) == 256
    # slot in the key: cumulative buckets, le in seconds, +Inf, count, sum from midpoints
    lat = got["lat_seconds"]
    buckets = {s.labels["le"]: s.value for s in lat.samples if s.name == "lat_seconds_bucket"}
    assert buckets["4e-06"] == 2 and buckets["6.4e-05"] == 2 and buckets["0.000128"] == 7 and buckets["+Inf"] == 7
    assert [s.value for s in lat.samples if s.name == "lat_seconds_count"] == [7]
    [total] = [s.value for s in lat.samples if s.name == "lat_seconds_sum"]
    assert total == pytest.approx((2 * 3 + 5 * 96) * 1e-6)
    assert "estimated from bucket midpoints" in lat.documentation
    # slots in the value, labelled by comm
    task = got["task_lat_seconds"]
    curl = {s.labels["le"]: s.value for s in task.samples if s.name.endswith("_bucket") and s.labels["comm"] == "curl"}
    assert curl["2e-06"] >= 1 and curl["+Inf"] >= 3
    # bpfmap's own metrics
    entries = samples(got["bpfmap_export_map_entries"])
    assert entries[(("map", flows_prog.map("flows")),)] == 2
    assert samples(got["bpfmap_export_map_max_entries"])[(("map", flows_prog.map("flows")),)] == 1024
    assert set(samples(got["bpfmap_export_errors"], "_total").values()) == {0.0}
    assert len(samples(got["bpfmap_export_scrape_duration_seconds"])) == 5


def test_percpu_cpu_label_and_sum_slot_and_fixed_buckets(flows_prog, pindir, tmp_path):
    send(flows_prog, 3, proto=17)
    path = os.path.join(pindir, "h")  # a histogram whose last slot holds the sum
    assert run_cli("create", "hash", "--layout", "pid=u32:slots=u64[4]", "--pin", path, "-q").returncode == 0
    assert run_cli("update", path, "pid=7", "slots=[1,2,3,250]", "--layout", "pid=u32:slots=u64[4]").returncode == 0
    config = write_config(
        tmp_path,
        f"""
metrics:
  - name: proto_per_cpu_total
    map: {flows_prog.map("by_proto")}
    percpu: cpu
    labels: [key]
  - name: sized
    type: histogram
    map: {path}
    slots: slots
    sum_slot: true
    buckets: fixed
    bounds: [10, 100, 1000, 5000]
""",
    )
    got = once(config)
    udp = {s.labels["cpu"]: s.value for s in got["proto_per_cpu"].samples if s.labels["key"] == "17"}
    assert set(udp) == {str(c) for c in range(Map.open(flows_prog.map("by_proto")).ncpus)} and sum(udp.values()) >= 3
    sized = {s.labels["le"]: s.value for s in got["sized"].samples if s.name == "sized_bucket"}
    assert sized == {"10.0": 1, "100.0": 3, "1000.0": 6, "5000.0": 6, "+Inf": 6}
    assert [s.value for s in got["sized"].samples if s.name == "sized_sum"] == [250]
    assert "estimated" not in got["sized"].documentation


def test_promtool_accepts_the_exposition(flows_prog, hists_prog, tmp_path):
    promtool = need_tool("promtool")
    r = run_cli("export", write_config(tmp_path, flows_config(flows_prog, hists_prog)), "--once")
    assert r.returncode == 0, r.stderr
    check = subprocess.run([promtool, "check", "metrics"], input=r.stdout, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for line in r.stdout.splitlines():  # every metric has HELP and TYPE
        if not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            bases = {name} | {name.removesuffix(s) for s in ("_bucket", "_count", "_sum")}
            assert any(f"# HELP {b} " in r.stdout and f"# TYPE {b} " in r.stdout for b in bases), name


def test_openmetrics_once(flows_prog, tmp_path):
    r = run_cli("export", write_config(tmp_path, flows_config(flows_prog)), "--once", "--openmetrics")
    assert r.returncode == 0 and r.stdout.endswith("# EOF\n")


def test_check_opens_and_decodes_every_map(flows_prog, tmp_path):
    config = write_config(tmp_path, flows_config(flows_prog))
    r = run_cli("export", config, "--check")
    assert r.returncode == 0, r.stderr
    assert "4 metrics ok" in r.stderr and f"{flows_prog.map('flows')}:" in r.stderr
    assert re.search(r"flow_packets_total: \S+: \d+ entries \(max_entries 1024\)", r.stderr), r.stderr
    # a value field the map does not have, and a map that is not there
    wrong = flows_config(flows_prog).replace("value: packets", "value: packetz")
    r = run_cli("export", write_config(tmp_path, wrong), "--check")
    assert r.returncode == 2 and "flow_packets_total: value: no field packetz" in r.stderr, r.stderr
    missing = flows_config(flows_prog).replace(flows_prog.map("lat"), flows_prog.map("nope"))
    r = run_cli("export", write_config(tmp_path, missing), "--check")
    assert r.returncode == 3 and "no such pin" in r.stderr and "(metric lat_seconds)" in r.stderr, r.stderr


def test_textfile_is_written_atomically_and_again_each_interval(flows_prog, tmp_path):
    send(flows_prog, 2)  # flows of its own: the test does not hang on what others sent
    config = write_config(tmp_path, flows_config(flows_prog))
    out = tmp_path / "bpfmap.prom"
    r = run_cli("export", config, "--textfile", str(out), "--once")
    assert r.returncode == 0 and "flow_packets_total{" in out.read_text()
    proc = subprocess.Popen([*BPFMAP, "export", config, "--textfile", str(out), "--interval", "0.2", "-q"])
    try:
        before = _flow_packets(out.read_text())
        send(flows_prog, 4)
        deadline = time.monotonic() + 10
        while _flow_packets(out.read_text()) != before + 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _flow_packets(out.read_text()) == before + 4
        assert not [p for p in os.listdir(tmp_path) if p.startswith("bpfmap.prom.")]  # no temp file left
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def _flow_packets(text: str) -> float:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return samples(families["flow_packets"], "_total")[(("daddr", "10.0.0.2"), ("dport", "443"), ("saddr", "10.0.0.1"))]


# -- serving ----------------------------------------------------------------------------------


def test_served_metrics_follow_a_map_that_goes_and_comes_back(exporter, pindir, tmp_path):
    pin = os.path.join(pindir, "c")
    layout = "u32:u64"
    assert run_cli("create", "hash", "--layout", layout, "--pin", pin, "-q").returncode == 0
    assert run_cli("update", pin, "1", "10").returncode == 0
    config = write_config(tmp_path, f"metrics:\n  - name: c_total\n    map: {pin}\n    labels: [key]\n")
    e = exporter(config)
    assert samples(e.families()["c"], "_total") == {(("key", "1"),): 10.0}
    os.unlink(pin)  # the program restarted: its map is gone
    fams = e.families()
    assert "c" not in fams
    assert samples(fams["bpfmap_export_errors"], "_total") == {(("metric", "c_total"),): 1.0}
    assert run_cli("create", "hash", "--layout", layout, "--pin", pin, "-q").returncode == 0  # a new map, same pin
    assert run_cli("update", pin, "2", "20").returncode == 0
    fams = e.families()
    assert samples(fams["c"], "_total") == {(("key", "2"),): 20.0}
    assert samples(fams["bpfmap_export_errors"], "_total") == {(("metric", "c_total"),): 1.0}
    # the scraper's format: OpenMetrics when asked for
    text, ctype = e.get("application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert ctype.startswith("application/openmetrics-text") and text.endswith("# EOF\n")
    assert e.get()[1].startswith("text/plain; version=0.0.4")
    err = e.stop()
    assert e.proc.returncode == 0
    assert err.count("no such pin") == 1  # said once, not at every scrape


def test_listen_refuses_a_port_in_use(flows_prog, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_cli("export", write_config(tmp_path, flows_config(flows_prog)), "--listen", f"127.0.0.1:{port}")
    assert r.returncode == 3 and "cannot listen on 127.0.0.1:" in r.stderr, r.stderr


# -- a real Prometheus ------------------------------------------------------------------------


def test_a_real_prometheus_scrapes_counters_rates_and_quantiles(flows_prog, hists_prog, exporter, tmp_path):
    for m in ("flows", "lat"):
        assert run_cli("clear", flows_prog.map(m), "-q").returncode == 0
    assert run_cli("clear", hists_prog.map("hists"), "-q").returncode == 0
    send(flows_prog, 5, usecs=100)
    for us in (100, 100, 100, 3000):  # in-value slots: log2 6, 6, 6, 11
        hists_prog.run("record", sample(7, us, "nginx"))
    e = exporter(write_config(tmp_path, flows_config(flows_prog, hists_prog)))
    prom = Prometheus(tmp_path, f"127.0.0.1:{e.port}")
    try:
        flow = 'flow_packets_total{saddr="10.0.0.1",daddr="10.0.0.2",dport="443"}'
        prom.wait_for(lambda: prom.value(flow) == 5, "flow_packets_total == 5")
        send(flows_prog, 10, usecs=100)  # the program counts between scrapes
        prom.wait_for(lambda: prom.value(flow) == 15, "flow_packets_total == 15")
        prom.wait_for(lambda: (prom.value(f"rate({flow}[1m])") or 0) > 0, "rate() > 0")
        assert prom.value('up{job="bpfmap"}') == 1
        # histogram_quantile over both shapes: the median of 15 x 100 us lies in [64, 128) us
        p50 = prom.value("histogram_quantile(0.5, sum by (le) (lat_seconds_bucket))")
        assert p50 is not None and 64e-6 <= p50 <= 128e-6, p50
        task_p50 = prom.value('histogram_quantile(0.5, sum by (le) (task_lat_seconds_bucket{comm="nginx"}))')
        assert task_p50 is not None and 64e-6 <= task_p50 <= 128e-6, task_p50
        task_p99 = prom.value('histogram_quantile(0.99, sum by (le) (task_lat_seconds_bucket{comm="nginx"}))')
        assert task_p99 is not None and 2048e-6 <= task_p99 <= 4096e-6, task_p99
        assert prom.value('bpfmap_export_map_max_entries{map="%s"}' % flows_prog.map("flows")) == 1024
    finally:
        prom.stop()


def test_once_prints_what_it_can_and_exits_3_when_a_map_is_missing(flows_prog, tmp_path):
    config = flows_config(flows_prog).replace(flows_prog.map("lat"), flows_prog.map("gone"))
    r = run_cli("export", write_config(tmp_path, config), "--once")
    assert r.returncode == 3, r.stderr
    got = {f.name: f for f in text_string_to_metric_families(r.stdout)}
    assert "flow_packets" in got and "lat_seconds" not in got
    assert samples(got["bpfmap_export_errors"], "_total")[(("metric", "lat_seconds"),)] == 1
    assert "export: lat_seconds:" in r.stderr and "no such pin" in r.stderr


@pytest.mark.parametrize(
    "layout, keys, want",
    [
        # a string's bytes past its NUL
        ("comm=char[8]:u64", [b"ab\0\x01xyzw", b"ab\0\x02xyzw", b"cd\0\0\0\0\0\0"], {("ab",): 7.0, ("cd",): 5.0}),
        # a bool's number (1 and 2 are both true)
        ("f=bool,g=u8:u64", [b"\x01\x07", b"\x02\x07", b"\x00\x07"], {("true", "7"): 7.0, ("false", "7"): 5.0}),
        # padding: bytes 5-7 of the key are no field's
        (
            "a=u32,b=u8:u64",
            [b"\x01\0\0\0\x02\x01\0\0", b"\x01\0\0\0\x02\x02\0\0", bytes(8)],
            {("1", "2"): 7.0, ("0", "0"): 5.0},
        ),
        # a byte that is not UTF-8 is written \\x80, as the text \x80 is
        (
            "comm=char[8]:u64",
            [b"\\x80" + bytes(4), b"\x80" + bytes(7), b"cd" + bytes(6)],
            {("\\x80",): 7.0, ("cd",): 5.0},
        ),
        # a display format on the other field: the summed path's straight lines
        ("comm=char[8],u=u32:u64", [b"ab\0\x01" + bytes(8), b"ab\0\x02" + bytes(8), b"cd" + bytes(10)], None),
    ],
)
@pytest.mark.parametrize("kind", ["hash", "percpu_hash"])  # the path from raw batches, and the decoded path
def test_keys_that_read_the_same_are_one_series(pindir, tmp_path, layout, keys, want, kind):
    """Every key field a label: two keys whose labels read the same (a string past its NUL,
    a bool, padding) are one label set, their values summed (one sample per label set,
    contract.md), never two samples of one series."""
    pin = os.path.join(pindir, "keys")
    with Map.create(kind, len(keys[0]), 8, max_entries=8) as m:
        for key, n in zip(keys, (3, 4, 5)):
            value = struct.pack("=Q", n)
            m.update(key, value if kind == "hash" else [value] + [bytes(8)] * (m.ncpus - 1))
        m.pin(pin)
    shown = "" if want is not None else "    as: {u: uid}\n"
    if want is None:
        want = {("ab", "root"): 7.0, ("cd", "root"): 5.0}
    config = write_config(tmp_path, f'metrics:\n  - name: app_total\n    map: {pin}\n    layout: "{layout}"\n{shown}')
    r = run_cli("export", config, "--once")
    assert r.returncode == 0, r.stderr
    family = next(f for f in text_string_to_metric_families(r.stdout) if f.name == "app")
    got = [(tuple(s.labels.values()), s.value) for s in family.samples if s.name == "app_total"]
    assert sorted(got) == sorted(want.items())


def late_twin(m, n, key, value):
    """Fill ``m`` with ``n`` entries ``key(i)`` -> ``value(i)``, then a twin of one of them
    (a byte past its string's NUL) that the map holds past its first two batches (2,048
    entries at most each): the index of the key it twins."""
    for i in range(n):
        m.update(key(i), value(i))
    for i in range(200):
        twin = bytearray(key(i))
        twin[twin.index(0, 1) + 1] = 1
        m.update(bytes(twin), value(1000))
        order = b"".join(keys for keys, _v, _c in m.batches())
        if order.index(twin) // len(twin) >= 4096:
            return i
        m.delete(bytes(twin))
    pytest.fail("no twin landed past the first batches")


def test_a_key_that_reads_like_another_late_in_the_map_recuts_the_scrape(pindir, tmp_path):
    """A key that reads like another in a batch after the first: the lines the straight
    path wrote for the metric are cut, and the metric is written again summed; the metric
    before it stays whole."""
    pin = os.path.join(pindir, "late")
    n = 6000
    with Map.create("hash", 8, 8, max_entries=n + 8) as m:
        i = late_twin(m, n, lambda j: b"k%05d\0\0" % j, lambda j: struct.pack("=Q", j))
        m.pin(pin)
    metrics = "".join(
        f'  - name: {name}_total\n    map: {pin}\n    layout: "comm=char[8]:u64"\n' for name in ("first", "second")
    )
    r = run_cli("export", write_config(tmp_path, "metrics:\n" + metrics), "--once")
    assert r.returncode == 0, r.stderr
    want = {f"k{j:05d}": float(j) for j in range(n)}
    want[f"k{i:05d}"] += 1000
    for name in ("first", "second"):
        family = next(f for f in text_string_to_metric_families(r.stdout) if f.name == name)
        got = [(s.labels["comm"], s.value) for s in family.samples if s.name == name + "_total"]
        assert len(got) == n and dict(got) == want


def test_decode_errors_of_lines_cut_again_count_once(pindir, tmp_path):
    """A metric written again summed counts its decode errors (uids with no name) once per
    entry, as the decoded path does, not again for the lines it cut."""
    pin = os.path.join(pindir, "lateuid")
    n = 6000
    with Map.create("hash", 12, 8, max_entries=n + 8) as m:
        late_twin(m, n, lambda j: b"k%05d\0\0" % j + struct.pack("=I", 4_000_000_000), lambda j: struct.pack("=Q", j))
        m.pin(pin)
    config = write_config(
        tmp_path,
        f'metrics:\n  - name: app_total\n    map: {pin}\n    layout: "comm=char[8],u=u32:u64"\n    as: {{u: uid}}\n',
    )
    r = run_cli("export", config, "--once")
    assert r.returncode == 0, r.stderr
    families = {f.name: f for f in text_string_to_metric_families(r.stdout)}
    assert len(samples(families["app"], "_total")) == n
    errors = samples(families["bpfmap_export_decode_errors"], "_total")
    assert errors == {(("label", "u"), ("metric", "app_total")): n + 1}


def test_openmetrics_writes_a_byte_that_is_not_utf8_as_the_text_does(pindir, tmp_path):
    """prometheus-client's OpenMetrics gets the label as Prometheus stores it (the text
    \\x80), the same samples as the text exposition (it failed: a lone surrogate)."""
    pin = os.path.join(pindir, "utf")
    with Map.create("hash", 8, 8, max_entries=8) as m:
        m.update(b"a\x80" + bytes(6), struct.pack("=Q", 3))
        m.update(b"ok" + bytes(6), struct.pack("=Q", 4))
        m.pin(pin)
    config = write_config(tmp_path, f'metrics:\n  - name: app_total\n    map: {pin}\n    layout: "comm=char[8]:u64"\n')
    text = run_cli("export", config, "--once")
    om = run_cli("export", config, "--once", "--openmetrics")
    assert text.returncode == 0 and om.returncode == 0, text.stderr + om.stderr
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families

    got = {f.name: samples(f, "_total") for f in text_string_to_metric_families(text.stdout)}["app"]
    assert got == {(("comm", "a\\x80"),): 3.0, (("comm", "ok"),): 4.0}
    assert {f.name: samples(f, "_total") for f in om_families(om.stdout)}["app"] == got


def test_a_host_name_that_spells_a_number_is_one_series_with_that_number(pindir, tmp_path):
    """Interface 1 named "7" (in a network namespace of its own) and an interface index 7
    that has no name read the same: one series, their values summed."""
    need_tool("ip")
    need_tool("unshare")
    pin = os.path.join(pindir, "ifs")
    with Map.create("hash", 4, 8, max_entries=8) as m:
        m.update(struct.pack("=I", 1), struct.pack("=Q", 3))
        m.update(struct.pack("=I", 7), struct.pack("=Q", 4))
        m.pin(pin)
    config = write_config(
        tmp_path,
        f'metrics:\n  - name: app_total\n    map: {pin}\n    layout: "ifindex=u32:u64"\n    as: {{ifindex: ifname}}\n',
    )
    command = " ".join(shlex.quote(a) for a in [*BPFMAP, "export", config, "--once"])
    r = subprocess.run(
        ["unshare", "-n", "sh", "-c", f"ip link set dev lo name 7 && exec {command}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    got = {f.name: samples(f, "_total") for f in text_string_to_metric_families(r.stdout)}["app"]
    assert got == {(("ifindex", "7"),): 7.0}
