"""bpfmap export against hostile configs, seen from a real exporter process: a regexp
that backtracks without end in a backtracking matcher (RE2 matches it in time linear in
the label, anchored as Prometheus's relabelling anchors it), SIGTERM while a long scrape
or textfile write is in progress, and the static_map limit reached exactly."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request

import pytest
from conftest import BPFMAP, run_cli
from helpers.prometheus import free_port, write_config

from bpfmap import Map

prometheus_client = pytest.importorskip("prometheus_client")
pytest.importorskip("re2")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

pytestmark = pytest.mark.kernel

CATASTROPHIC = "^(a+)+$"  # 2^n steps for a backtracking matcher on n a's and then a b
NAME = 40  # the key: name=char[40]
BACKTRACKS = "a" * 34 + "b"  # 35 bytes
HANG_GUARD = 60  # seconds: only so that a hang fails the test instead of stopping the suite


def _names_map(pin: str, names: list[str]) -> None:
    """A hash map {name=char[40]: u64} holding ``names`` (values 1, 2, ...), pinned."""
    with Map.create("hash", NAME, 8, max_entries=len(names)) as m:
        keys = b"".join(n.encode().ljust(NAME, b"\0") for n in names)
        values = b"".join(struct.pack("=Q", i + 1) for i in range(len(names)))
        assert m.update_batch(keys, values, len(names)) == len(names)
        m.pin(pin)


def _metric(name: str, pin: str, decoder: str) -> str:
    return (
        f"  - name: {name}\n    map: {pin}\n    layout: 'name=char[{NAME}]:u64'\n"
        f"    labels: [name]\n    as: {{name: {decoder}}}\n"
    )


def _samples(text: str, family: str) -> dict[str, float]:
    for f in text_string_to_metric_families(text):
        if f.name == family:
            return {s.labels["name"]: s.value for s in f.samples if s.name.endswith("_total")}
    return {}


@pytest.fixture
def served():
    """Start ``bpfmap export CONFIG ARGS...`` (serving on 127.0.0.1 unless ARGS say
    otherwise); every process started is stopped at the end."""
    procs: list[subprocess.Popen] = []

    def start(config: str, *args: str) -> tuple[subprocess.Popen, int]:
        port = free_port()
        argv = [*BPFMAP, "export", config, *(args or ("--listen", f"127.0.0.1:{port}"))]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        if not args:
            _wait_listening(proc, port)
        else:  # a textfile: until it says it starts writing (its signal handlers are in place)
            said = ""
            while "export: writing" not in said:
                line = proc.stderr.readline() if proc.stderr else ""
                assert line, f"exporter did not start: {said}"
                said += line
        return proc, port

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_listening(proc: subprocess.Popen, port: int) -> None:
    """Until the exporter accepts a connection (a connect, not a scrape)."""
    deadline = time.monotonic() + HANG_GUARD
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"exporter did not start: {proc.communicate()[1]}") from None
            time.sleep(0.05)


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=HANG_GUARD) as resp:
        return resp.read().decode()


def _cpu_ticks(pid: int) -> int:
    """utime + stime of the process, in clock ticks (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _until_busy(proc: subprocess.Popen, ticks: int = 30) -> None:
    """Until the (otherwise idle) exporter has used ``ticks`` more of CPU: its scrape is
    under way."""
    start = _cpu_ticks(proc.pid)
    deadline = time.monotonic() + HANG_GUARD
    while _cpu_ticks(proc.pid) - start < ticks:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the scrape did not start"
        time.sleep(0.05)


def _in_background(port: int) -> threading.Thread:
    """A scrape in a thread of its own (its answer does not matter: the exporter stops)."""

    def scrape() -> None:
        try:
            _get(port)
        except OSError:
            pass

    thread = threading.Thread(target=scrape, daemon=True)
    thread.start()
    return thread


def test_a_catastrophic_regexp_is_matched_in_linear_time_and_anchored(pindir, tmp_path, served):
    pin = os.path.join(pindir, "names")
    _names_map(pin, ["a" * 35, BACKTRACKS, "aaa", "xaaa"])
    config = write_config(
        tmp_path,
        "metrics:\n"
        + _metric("kept_total", pin, f"{{regexp: '{CATASTROPHIC}'}}")
        + _metric("dropped_total", pin, f"{{regexp: '{CATASTROPHIC}', drop: true}}")
        + _metric("whole_total", pin, "{regexp: 'a+'}"),  # anchored: 'a+' is not found in xaaa, it must be all of it
    )
    r = subprocess.run([*BPFMAP, "export", config, "--check"], capture_output=True, text=True, timeout=HANG_GUARD)
    assert r.returncode == 0, r.stderr
    assert "3 metrics ok" in r.stderr
    r = subprocess.run([*BPFMAP, "export", config, "--once"], capture_output=True, text=True, timeout=HANG_GUARD)
    assert r.returncode == 0, r.stderr
    assert _samples(r.stdout, "kept") == {"a" * 35: 1, "aaa": 3}
    assert _samples(r.stdout, "dropped") == {BACKTRACKS: 2, "xaaa": 4}
    assert _samples(r.stdout, "whole") == {"a" * 35: 1, "aaa": 3}
    proc, port = served(config)
    text = _get(port)  # a scrape answers
    assert _samples(text, "kept") == {"a" * 35: 1, "aaa": 3}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_GUARD) == 0


def _long_scrape_config(pindir: str, tmp_path, decoder: str) -> str:
    """A config whose scrape takes minutes: 1,000 metrics on one map of 100,000 names,
    each label decoded (the per-entry path), every name one that backtracks."""
    pin = os.path.join(pindir, "many")
    _names_map(pin, [f"{'a' * 30}b{i:06d}" for i in range(100_000)])
    return write_config(tmp_path, "metrics:\n" + "".join(_metric(f"m{j}_total", pin, decoder) for j in range(1000)))


DECODERS = {
    "catastrophic regexp": f"{{regexp: '{CATASTROPHIC}', drop: true}}",
    "static_map": "{static_map: {x: y}, default: other}",
}


@pytest.mark.parametrize("decoder", DECODERS.values(), ids=DECODERS.keys())
def test_sigterm_during_a_long_scrape_stops_the_server(pindir, tmp_path, served, decoder):
    proc, port = served(_long_scrape_config(pindir, tmp_path, decoder))
    scraper = _in_background(port)
    _until_busy(proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_GUARD) == 0, proc.communicate()[1]
    scraper.join(timeout=HANG_GUARD)


@pytest.mark.parametrize("decoder", DECODERS.values(), ids=DECODERS.keys())
def test_sigterm_during_a_long_textfile_write_stops_it_and_leaves_no_temp_file(pindir, tmp_path, served, decoder):
    config = _long_scrape_config(pindir, tmp_path, decoder)
    out = tmp_path / "out"
    out.mkdir()
    proc, _port = served(config, "--textfile", str(out / "bpfmap.prom"), "--interval", "60")
    _until_busy(proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_GUARD) == 0, proc.communicate()[1]
    assert os.listdir(out) == []  # the write never finished: no textfile, and its temp file is gone


def _static_map_config(tmp_path, pin: str, entries: int) -> str:
    lines = [f"metrics:\n  - name: ops_total\n    map: {pin}\n    labels: [key]\n    as:\n      key:\n"]
    lines.append("        static_map:\n")
    lines.extend(f"          {i}: op_{i}\n" for i in range(entries))
    return write_config(tmp_path, "".join(lines))


def test_a_static_map_of_the_documented_limit_loads_and_one_more_is_refused(pindir, tmp_path):
    from bpfmap.export.labels import MAX_TABLE

    assert MAX_TABLE == 65536
    pin = os.path.join(pindir, "ops")
    with Map.create("hash", 4, 8, max_entries=4) as m:
        m.update(struct.pack("=I", 65535), struct.pack("=Q", 7))
        m.pin(pin)
    r = run_cli("export", _static_map_config(tmp_path, pin, MAX_TABLE), "--once")
    assert r.returncode == 0, r.stderr
    assert 'ops_total{key="op_65535"} 7' in r.stdout
    r = run_cli("export", _static_map_config(tmp_path, pin, MAX_TABLE + 1), "--check")
    assert r.returncode == 2, r.stderr
    assert "static_map" in r.stderr and "65,536" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_a_full_disk_under_the_textfile_keeps_the_last_one_and_says_so(pindir, tmp_path):
    """Writing the textfile fails (ENOSPC) part way: the scrape fails whole (exit 3, "cannot
    write"), the textfile written before stays as it was, no temp file is left, and no
    metric is counted as failing to read its map (it was the output that failed)."""
    pin = os.path.join(pindir, "many")
    n = 4000
    with Map.create("hash", 4, 8, max_entries=n) as m:
        m.update_batch(struct.pack(f"={n}I", *range(n)), struct.pack(f"={n}Q", *range(n)), n)
        m.pin(pin)
    config = write_config(tmp_path, f"metrics:\n  - name: ops_total\n    map: {pin}\n    labels: [key]\n")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(small)], check=True)
    try:
        textfile = small / "bpfmap.prom"
        textfile.write_text("ops_total 1\n")  # the last good write
        r = run_cli("export", config, "--once", "--textfile", str(textfile))
        assert r.returncode == 3, r.stderr
        assert r.stderr == f"bpfmap: export: cannot write {textfile}: No space left on device\n"
        assert textfile.read_text() == "ops_total 1\n"
        assert os.listdir(small) == ["bpfmap.prom"]
    finally:
        subprocess.run(["umount", str(small)], check=False)
