"""bpfmap export under attack: concurrent scrapes while maps are replaced, values past
every bucket, configs that collide or explode, a textfile directory shared with an
unprivileged user, slow clients and signals.  Real maps, a real server, real signals."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from helpers import BPFMAP, run_cli
from helpers.prometheus import Exporter as ServedExporter
from helpers.prometheus import samples, write_config

from bpfmap import Map

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from bpfmap import export  # noqa: E402


def _map(pin: str, entries: dict[int, int], layout: str = "u32:u64") -> None:
    with Map.create("hash", 4, 8, max_entries=64) as m:
        view = m.view(__import__("bpfmap").Layout.parse(layout))
        for k, v in entries.items():
            view[k] = v
        m.pin(pin)


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


# -- wrong data --------------------------------------------------------------------------------


def test_concurrent_scrapes_while_a_map_is_replaced_read_only_their_own_maps(pindir, tmp_path):
    """Four scrapers on a real server while a map is replaced under its pin, again and
    again: every answer is a 200, and each metric shows only its own map's entry."""
    a, b = f"{pindir}/a", f"{pindir}/b"
    _map(a, {1: 111})
    _map(b, {2: 222})
    config = write_config(
        tmp_path,
        f"metrics:\n  - name: ra_total\n    map: {a}\n    labels: [key]\n"
        f"  - name: rb_total\n    map: {b}\n    labels: [key]\n",
    )
    exporter = export.Exporter(export.read_config(config), log=lambda _t: None)
    server = export.serve(exporter, "127.0.0.1", 0)
    port = server.server_address[1]
    stop = threading.Event()
    bad: list[str] = []
    scrapes = [0]

    def replace() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            tmp = f"{pindir}/new{i}"
            _map(tmp, {1: 111})
            os.rename(tmp, a)  # atomic on a bpffs: the metric never disappears

    def scrape() -> None:
        while not stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            body = resp.read().decode()
            conn.close()
            scrapes[0] += 1
            if resp.status != 200:
                bad.append(f"HTTP {resp.status}")
                continue
            fams = _families(body)
            if samples(fams["ra"], "_total") != {(("key", "1"),): 111.0}:
                bad.append(f"ra: {samples(fams['ra'], '_total')}")
            if samples(fams["rb"], "_total") != {(("key", "2"),): 222.0}:
                bad.append(f"rb: {samples(fams['rb'], '_total')}")

    threads = [threading.Thread(target=replace)] + [threading.Thread(target=scrape) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(4)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
        server.shutdown()
        server.server_close()
        exporter.close()
    assert scrapes[0] > 50
    assert bad == []
    assert exporter.errors == {"ra_total": 0, "rb_total": 0}


def _slot_config(tmp_path, pin: str, extra: str) -> str:
    return write_config(
        tmp_path,
        f"metrics:\n  - name: lat\n    type: histogram\n    map: {pin}\n{extra}"
        f"  - name: other_total\n    map: {pin}\n    labels: [key]\n",
    )


@pytest.mark.parametrize(
    ("extra", "limit"),
    [("    buckets: exp2\n", 64), ("    buckets: linear\n    step: 1\n", 4096)],
    ids=["exp2", "linear"],
)
def test_a_slot_past_the_last_bucket_goes_to_inf_and_costs_only_its_metric(pindir, tmp_path, extra, limit):
    pin = f"{pindir}/h"
    _map(pin, {0: 5, 1100: 3, 4294967295: 2})
    start = time.monotonic()
    r = run_cli("export", _slot_config(tmp_path, pin, extra), "--once")
    assert time.monotonic() - start < 20
    assert r.returncode == 3, r.stderr  # an error was counted
    assert "past the last of the" in r.stderr and "internal error" not in r.stderr
    fams = _families(r.stdout)
    buckets = {s.labels["le"]: s.value for s in fams["lat"].samples if s.name == "lat_bucket"}
    assert buckets["+Inf"] == 10 and len(buckets) <= limit + 1
    assert [s.value for s in fams["lat"].samples if s.name == "lat_count"] == [10]
    assert samples(fams["other"], "_total")[(("key", "1100"),)] == 3  # the other metric is there
    assert samples(fams["bpfmap_export_errors"], "_total")[(("metric", "lat"),)] == 1  # once, not per entry


def test_histogram_sum_has_no_float_noise(pindir, tmp_path):
    pin = f"{pindir}/h"
    _map(pin, {0: 10})  # 10 in slot 0 of exp2 ([0, 2): midpoint 1) at 1e-6 each
    config = write_config(
        tmp_path, f"metrics:\n  - name: lat_seconds\n    type: histogram\n    map: {pin}\n    multiplier: 1e-6\n"
    )
    r = run_cli("export", config, "--once")
    assert r.returncode == 0, r.stderr
    assert "lat_seconds_sum 1e-05\n" in r.stdout, r.stdout
    assert 'lat_seconds_bucket{le="2e-06"} 10.0' in r.stdout  # multiplier: 1e-6 (a string to YAML) is a number


def test_an_internal_error_in_one_metric_is_counted_not_the_whole_scrape(pindir, tmp_path, monkeypatch):
    """Whatever goes wrong inside one metric's read (here: a bug made on purpose), the
    scrape serves the others and counts the error."""
    pin = f"{pindir}/c"
    _map(pin, {1: 10})
    config = write_config(
        tmp_path,
        f"metrics:\n  - name: one_total\n    map: {pin}\n    labels: [key]\n"
        f"  - name: two_total\n    map: {pin}\n    labels: [key]\n",
    )
    exporter = export.Exporter(export.read_config(config), log=lambda _t: None)
    real = exporter.read
    monkeypatch.setattr(
        exporter,
        "read",
        lambda m, *a: (_ for _ in ()).throw(TypeError("boom")) if m.name == "one_total" else real(m, *a),
    )
    fams = _families(export.exposition(exporter).decode())
    exporter.close()
    assert "one" not in fams and samples(fams["two"], "_total") == {(("key", "1"),): 10.0}
    assert samples(fams["bpfmap_export_errors"], "_total")[(("metric", "one_total"),)] == 1


# -- configs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "extra", "message"),
    [
        ("le=u32,slot=u32:u64", "    type: histogram\n", "labels: le: the label le is a histogram"),
        ("cpu=u32:u64", "    percpu: cpu\n", "labels: cpu: the label cpu is the CPU"),
        ("a_b=u32,a=u32:u64", "    labels: [a_b, a.b]\n", "labels:"),
        ("k=u32:n=u64", "    value: m\n", "value: no field m in the value"),
        ("k=u32:n=u64", "    value: n\n    labels: [nope]\n", "labels: nope: no field nope in the key or the value"),
    ],
)
def test_check_finds_what_is_wrong_even_when_the_map_is_empty(bm, pindir, tmp_path, layout, extra, message):
    """systemd's ExecStartPre runs --check at boot, when the maps are still empty."""
    pin = f"{pindir}/e"
    kind = "percpu_hash" if "percpu" in extra else "hash"
    assert bm("create", kind, "--layout", layout, "--pin", pin)[0] == 0
    config = write_config(tmp_path, f"metrics:\n  - name: m\n    map: {pin}\n{extra}")
    r = run_cli("export", config, "--check")
    assert r.returncode == 2 and message in r.stderr, r.stderr


# -- the textfile ------------------------------------------------------------------------------


@pytest.fixture
def request_cleanup():
    done: list = []
    yield done
    for fn in done:
        fn()


def _as_nobody(fn_code: str) -> None:
    subprocess.run(
        [sys.executable, "-c", f"import os; os.setgid(65534); os.setuid(65534); {fn_code}"], check=True, timeout=30
    )


def test_textfile_is_never_written_through_a_symlink(pindir, tmp_path, request_cleanup):
    """An unprivileged user who may write to the textfile directory plants symlinks where
    a predictable temp file would be: root's write goes to the textfile, never to the
    file the links point at."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    import pathlib
    import shutil
    import tempfile

    pin = f"{pindir}/c"
    _map(pin, {1: 10})
    base = pathlib.Path(tempfile.mkdtemp(prefix="bpfmap-textfile-"))  # pytest's tmp_path is root's alone
    request_cleanup.append(lambda: shutil.rmtree(base))
    os.chmod(base, 0o755)
    shared = base / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp: world-writable and sticky
    decoy = base / "decoy"
    decoy.write_text("precious\n")
    target = shared / "bpfmap.prom"
    # prometheus-client's temp name: PATH.PID.THREAD; and a few guesses around it
    names = [f"{target}.{os.getpid()}.{threading.get_ident()}", f"{target}.tmp", f"{target}~"]
    _as_nobody("; ".join(f"os.symlink({str(decoy)!r}, {n!r})" for n in names))
    config = write_config(tmp_path, f"metrics:\n  - name: c_total\n    map: {pin}\n    labels: [key]\n")
    exporter = export.Exporter(export.read_config(config), log=lambda _t: None)
    export.write_textfile(exporter, str(target))
    exporter.close()
    assert decoy.read_text() == "precious\n"
    assert 'c_total{key="1"} 10\n' in target.read_text()  # integers are written exactly
    assert not target.is_symlink() and oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in shared.iterdir() if not p.is_symlink()) == ["bpfmap.prom"]  # no temp left


def test_a_failed_textfile_write_is_counted_and_tried_again(pindir, tmp_path):
    pin = f"{pindir}/c"
    _map(pin, {1: 10})
    config = write_config(tmp_path, f"metrics:\n  - name: c_total\n    map: {pin}\n    labels: [key]\n")
    out = tmp_path / "out"
    out.mkdir()
    target = out / "bpfmap.prom"
    target.mkdir()  # rename onto a directory fails
    (target / "x").write_text("")
    proc = subprocess.Popen(
        [*BPFMAP, "export", config, "--textfile", str(target), "--interval", "0.2"],
        stderr=subprocess.PIPE,
        text=True,
    )
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30  # a guard against a hang, not a speed test
        while sum("trying again" in line for line in list(said)) < 2:  # two writes failed
            assert proc.poll() is None, said  # still running
            assert time.monotonic() < deadline, f"no failed write reported: {said}"
            time.sleep(0.05)
        (target / "x").unlink()
        target.rmdir()
        while not (target.is_file() and "textfile_write_errors" in target.read_text()):
            assert time.monotonic() < deadline, "the textfile never came back"
            time.sleep(0.1)
        fams = _families(target.read_text())
        assert samples(fams["bpfmap_export_textfile_write_errors"], "_total")[()] >= 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        reader.join(timeout=10)
    assert any("trying again" in line for line in said)


# -- serving -----------------------------------------------------------------------------------


def _tgkill(pid: int, tid: int, sig: int) -> None:
    """A signal to one thread of another process (what the kernel does when it picks that
    thread for a signal sent to the process)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(234 if os.uname().machine == "x86_64" else 131, pid, tid, sig) != 0:  # SYS_tgkill
        raise OSError(ctypes.get_errno(), "tgkill")


@pytest.mark.parametrize("target", ["process", "handler-thread"])
def test_sigterm_stops_the_server_within_a_second_while_slow_clients_hold_connections(pindir, tmp_path, target):
    pin = f"{pindir}/c"
    _map(pin, {1: 10})
    config = write_config(tmp_path, f"metrics:\n  - name: c_total\n    map: {pin}\n    labels: [key]\n")
    for _round in range(3):
        e = ServedExporter(config)
        slow = []
        for _ in range(30):  # connect, send half a request, then nothing
            s = socket.create_connection(("127.0.0.1", e.port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
            slow.append(s)
        start = time.monotonic()
        assert e.get()[0]  # the scrape is still answered at once (backlog, a thread per connection)
        assert time.monotonic() - start < 1.0
        time.sleep(0.3)
        threads = [int(t) for t in os.listdir(f"/proc/{e.proc.pid}/task") if int(t) != e.proc.pid]
        assert len(threads) >= 30  # a thread per slow connection
        start = time.monotonic()
        if target == "process":
            e.proc.send_signal(signal.SIGTERM)
        else:
            _tgkill(e.proc.pid, threads[len(threads) // 2], signal.SIGTERM)
        try:
            code = e.proc.wait(timeout=10)
        finally:
            took = time.monotonic() - start
            for s in slow:
                s.close()
            e.stop()
        assert code == 0 and took < 1.0, took


def test_a_textfile_path_that_is_not_a_file_is_refused(pindir, tmp_path):
    """The textfile is renamed over its path: a device node (or a link) there would be
    replaced by it, so such a path is refused before anything is read."""
    pin = f"{pindir}/c"
    _map(pin, {1: 10})
    device = tmp_path / "full"
    os.mknod(device, 0o666 | 0o020000, os.makedev(1, 7))  # /dev/full's numbers
    config = write_config(tmp_path, f"metrics:\n  - name: c_total\n    map: {pin}\n    labels: [key]\n")
    r = run_cli("export", config, "--textfile", str(device), "--once")
    assert r.returncode == 2 and "not a file" in r.stderr, r.stderr
    assert os.path.exists(device) and not os.path.isfile(device)
