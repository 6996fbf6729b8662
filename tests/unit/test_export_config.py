"""bpfmap export's config and options, checked before any map is read: every refusal
names the metric and the field (exit 2), and hostile configs stay small."""

from __future__ import annotations

import os
import re
import time

import pytest
from helpers import REPO, run_cli

pytest.importorskip("prometheus_client")
yaml = pytest.importorskip("yaml")

from bpfmap.export import parse_listen, read_config  # noqa: E402


def write_config(tmp_path, text: str) -> str:
    path = tmp_path / "export.yaml"
    path.write_text(text)
    return str(path)


BAD_FIELDS = [
    ("metrics: []", "metrics: give a list"),
    ("metrics: [{map: /x}]", "metric #1: name: required"),
    ("metrics: [{name: a b, map: /x}]", "metric a b: name:"),
    ("metrics: [{name: m, map: /x, type: summary}]", "metric m: type: 'summary'"),
    ("metrics: [{name: m}]", "metric m: map: required"),
    ("metrics: [{name: m, map: /x, colour: red}]", "metric m: colour: unknown field"),
    ("metrics: [{name: m, map: /x, layout: 'u32:u65'}]", "metric m: layout:"),
    ("metrics: [{name: m, map: /x, percpu: max}]", "metric m: percpu:"),
    ("metrics: [{name: m, map: /x, as: {saddr: base64}}]", "metric m: as:"),
    ("metrics: [{name: m, map: /x, labels: ['a-b']}]", "metric m: labels:"),
    ("metrics: [{name: m, map: /x, buckets: exp2}]", "metric m: buckets: applies to histograms"),
    ("metrics: [{name: m, map: /x, type: histogram, buckets: log10}]", "metric m: buckets:"),
    ("metrics: [{name: m, map: /x, type: histogram, buckets: linear}]", "metric m: step:"),
    (
        "metrics: [{name: m, map: /x, type: histogram, buckets: fixed, bounds: [3, 2]}]",
        "metric m: bounds: must increase",
    ),
    ("metrics: [{name: m, map: /x, type: histogram, multiplier: -1}]", "metric m: multiplier:"),
    ("metrics: [{name: m, map: /x}, {name: m, map: /y}]", "metric m: name: used by another metric"),
    ("metrics: [{name: m, map: /x, key_type: u32}]", "metric m: key_type and value_type need c_header"),
    ("metrics:\n  - name: m\n   map: x", "not YAML at line"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FIELDS, ids=[m for _t, m in BAD_FIELDS])
def test_bad_configs_name_the_metric_and_the_field(tmp_path, text, message):
    config = write_config(tmp_path, text)
    for mode in ("--check", "--once"):
        r = run_cli("export", config, mode)
        assert r.returncode == 2, (mode, r.stderr)
        assert message in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert r.stdout == ""


def test_listen_addresses():
    from bpfmap.errors import UsageError

    assert parse_listen("127.0.0.1:9435") == ("127.0.0.1", 9435)
    assert parse_listen(":9100") == ("127.0.0.1", 9100)  # loopback unless an address is named
    assert parse_listen("[::1]:80") == ("::1", 80)
    assert parse_listen("0.0.0.0:9435") == ("0.0.0.0", 9435)
    for bad in ("9435", "host:0", "host:99999", "[::1]"):
        with pytest.raises(UsageError):
            parse_listen(bad)


def test_the_example_config_is_valid():
    metrics = read_config(os.path.join(REPO, "examples", "export.yaml"))
    assert [m.type for m in metrics] == [
        "counter",
        "counter",
        "histogram",
        "histogram",
        "counter",
        "counter",
        "histogram",
    ]


BOMB = """a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
metrics: [{name: m, map: /x, as: {saddr: *g}}]
"""


BAD = [
    ("metrics: [{name: m, map: /x, percpu: cpu, labels: [cpu]}]", "metric m: labels: cpu: the label cpu is the CPU"),
    (
        "metrics: [{name: m, map: /x, type: histogram, labels: [le]}]",
        "metric m: labels: le: the label le is a histogram",
    ),
    ("metrics: [{name: m, map: /x, labels: [a_b, a.b]}]", "metric m: labels: a_b and a.b are both the label a_b"),
    (
        "metrics: [{name: m5, map: /x}, {name: m5_total, type: gauge, map: /y}]",
        "metric m5_total: name: m5_total is also a name of metric m5",
    ),
    ("metrics: [{name: bpfmap_export_errors, map: /x}]", "metric bpfmap_export_errors: name: names starting with"),
    (
        "metrics: [{name: m, map: /x, type: histogram, buckets: fixed, bounds: [1, .nan, 3]}]",
        "metric m: bounds: give finite numbers",
    ),
    (
        "metrics: [{name: m, map: /x, type: histogram, buckets: fixed, bounds: [1, 3, .inf]}]",
        "metric m: bounds: give finite numbers",
    ),
    ("metrics: [{name: m, map: /x}]\nmetrics: [{name: n, map: /y}]", "'metrics' is given twice"),
    ("metrics: [{name: m, map: /x, name: n}]", "'name' is given twice"),
    ("metrics: [{name: m, map: /x, 1: 2}]", "metric m: 1: not a field name"),
    ("metrics: [{name: m, map: /x}]\n7: x", "7: unknown top-level field"),
    ("metrics: [{name: m, map: /x, as: {'a,b': ip}}]", "metric m: as: 'a,b': one field per key"),
    ("metrics: [{name: m, map: /x, as: {a: [ip, ksym]}}]", "metric m: as:"),
    (BOMB, "more than 262,144 values once its aliases are expanded"),
    ("metrics: " + "[" * 5000 + "]" * 5000, "nested too deeply"),
    ("metrics: [{name: m, map: /x, type: histogram, multiplier: '1e-6x'}]", "metric m: multiplier:"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m for _t, m in BAD])
def test_configs_that_collide_or_explode_are_refused(tmp_path, text, message):
    config = write_config(tmp_path, text)
    start = time.monotonic()
    r = run_cli("export", config, "--check")
    assert time.monotonic() - start < 10
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--once", "--listen", "127.0.0.1:9"], "give one of"),
        (["--textfile", ""], "--textfile: the path is empty"),
    ],
)
def test_options_that_do_not_go_together(tmp_path, args, message):
    config = write_config(tmp_path, "metrics: [{name: m, map: /x}]")
    r = run_cli("export", config, *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_textfile_in_a_world_writable_directory_without_the_sticky_bit_is_refused(tmp_path):
    shared = tmp_path / "open"
    shared.mkdir()
    os.chmod(shared, 0o777)
    config = write_config(tmp_path, "metrics: [{name: m, map: /x}]")
    r = run_cli("export", config, "--textfile", str(shared / "x.prom"), "--once")
    assert r.returncode == 2 and "writable by anyone and not sticky" in r.stderr, r.stderr
    assert os.listdir(shared) == []


@pytest.mark.parametrize("listen", [os.fsdecode(b"\xff:1"), "[::1]:\uff19\uff19", "127.0.0.1:\u0661"])
def test_listen_takes_ascii_only(tmp_path, listen):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("metrics:\n- name: x\n  map: /nonexistent\n")
    r = run_cli("export", str(cfg), "--listen", listen)
    assert r.returncode == 2 and "--listen" in r.stderr and "internal error" not in r.stderr, r.stderr


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{op: {static_map: {}}}", "static_map: give a mapping"),
        ("{op: {static_map: {1: read}, fallback: x}}", "static_map takes default"),
        ("{op: {regexp: '('}}", "regexp '('"),
        ("{op: {regexp: a, drop: maybe}}", "drop: give true or false"),
        ("{op: [{regexp: a}, ip]}", "a display format comes first"),
        ("{op: {nope: 1}}", "a decoder is static_map or regexp"),
        ("{op: [cgroup, cgroup]}", "only one"),
    ],
)
def test_label_decoders_are_checked(spec, message):
    from bpfmap.export import ConfigError, parse_config

    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(yaml.safe_load(f"metrics: [{{name: m, map: /x, labels: [op], as: {spec}}}]"), "c.yaml")


def test_label_decoders_parse_into_formats_and_decoders():
    from bpfmap.export import parse_config
    from bpfmap.export.labels import Drop, Miss

    [m] = parse_config(
        yaml.safe_load(
            "metrics: [{name: m, map: /x, labels: [op, cg], as: {op: {static_map: {1: read}}, "
            "cg: [cgroup, {regexp: '/sys.*', drop: true}]}}]"
        ),
        "c.yaml",
    )
    assert m.formats == {"cg": "cgroup"}
    [static] = m.decoders["op"]
    assert static("1") == "read"
    with pytest.raises(Miss):
        static("2")
    [regexp] = m.decoders["cg"]
    assert regexp("/user") == "/user"
    with pytest.raises(Drop):
        regexp("/system.slice")


def test_the_example_config_has_decoders_and_an_event_stream():
    metrics = read_config(os.path.join(REPO, "examples", "export.yaml"))
    by_name = {m.name: m for m in metrics}
    assert by_name["cgroup_syscalls_total"].formats == {"cgid": "cgroup", "uid": "uid"}
    assert by_name["exec_events_total"].max_series == 5000
