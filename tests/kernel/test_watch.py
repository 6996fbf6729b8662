"""watch: deltas and rates between snapshots, the JSONL stream, and the live screen in a
real terminal (tmux)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time

import pytest
from helpers import BPFMAP, BPFMAP_SH, examples, run_cli

from bpfmap import Layout, Map
from bpfmap.errors import UsageError
from bpfmap.live.watch import Watcher, diff, scale, total
from bpfmap.view import View


def _counter_map(pindir, n=3):
    m = Map.create("hash", 4, 16, 64)
    m.pin(os.path.join(pindir, "c"))
    for k in range(n):
        m.update(k.to_bytes(4, "little"), (k * 10).to_bytes(8, "little") + b"ab".ljust(8, b"\0"))
    return m


def test_poll_gives_deltas_rates_and_new_entries(pindir):
    with _counter_map(pindir) as m:
        view = View(m, Layout.parse("u32:n=u64,tag=char[8]"))
        w = Watcher(view)
        first = w.poll()
        assert first.interval is None and first.entries == 3
        assert [(r.key, r.value["n"], r.delta, r.rate) for r in first.rows] == [
            (0, 0, None, None),
            (1, 10, None, None),
            (2, 20, None, None),
        ]
        time.sleep(0.2)
        m.update((1).to_bytes(4, "little"), (15).to_bytes(8, "little") + b"ab".ljust(8, b"\0"))
        m.update((7).to_bytes(4, "little"), (1).to_bytes(8, "little") + bytes(8))
        m.delete((0).to_bytes(4, "little"))
        second = w.poll()
        assert second.interval == pytest.approx(0.2, abs=0.15)
        rows = {r.key: r for r in second.rows}
        assert set(rows) == {1, 2, 7}
        assert rows[1].delta == {"n": 5, "tag": None}
        assert rows[1].rate["n"] == pytest.approx(5 / second.interval)
        assert rows[2].delta == {"n": 0, "tag": None}
        assert rows[7].delta is None and rows[7].rate is None  # new since the last poll


def test_sort_by_rate_and_value_largest_first_and_top(pindir):
    with _counter_map(pindir, 4) as m:
        view = View(m, Layout.parse("u32:n=u64,tag=char[8]"))
        w = Watcher(view, sort="rate", top=2)
        w.poll()
        for k, add in ((0, 50), (3, 7), (1, 1)):
            cur = int.from_bytes(m.lookup(k.to_bytes(4, "little"))[:8], "little")
            m.update(k.to_bytes(4, "little"), (cur + add).to_bytes(8, "little") + bytes(8))
        snap = w.poll()
        assert [r.key for r in snap.rows] == [0, 3] and snap.entries == 4
        w.sort = "value"
        assert [r.key for r in w.poll().rows] == [0, 3]  # 50 and 37
        with pytest.raises(UsageError):
            Watcher(view, sort="size")


def test_percpu_values_are_summed(pindir):
    with Map.create("percpu_array", 4, 8, 2) as m:
        m.update((0).to_bytes(4, "little"), [(i + 1).to_bytes(8, "little") for i in range(m.ncpus)])
        snap = Watcher(View(m, Layout.parse("u32:u64"))).poll()
        assert snap.rows[0].value == sum(range(1, m.ncpus + 1))


def test_jsonl_snapshots_off_a_terminal(pindir):
    path = os.path.join(pindir, "counts")
    assert run_cli("create", "hash", "--layout", "u32:u64", "--pin", path, "-q").returncode == 0
    assert run_cli("update", path, "1", "100").returncode == 0
    cmd = [
        *BPFMAP,
        "watch",
        path,
        "--interval",
        "0.3",
        "--count",
        "4",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # a writer bumps the counter while watch runs
    for i in range(6):
        time.sleep(0.15)
        run_cli("update", path, "1", str(100 + (i + 1) * 10))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    snaps = [json.loads(line) for line in out.splitlines()]
    assert len(snaps) == 4
    assert snaps[0]["interval"] is None and snaps[0]["rows"][0]["delta"] is None
    assert all(s["entries"] == 1 and set(s) == {"time", "interval", "entries", "rows"} for s in snaps)
    # the deltas add up to the counter's whole change, and each rate is delta / interval
    values = [s["rows"][0]["value"] for s in snaps]
    deltas = [s["rows"][0]["delta"] for s in snaps[1:]]
    assert sum(deltas) == values[-1] - values[0] > 0
    for s in snaps[1:]:
        row = s["rows"][0]
        assert row["rate"] == pytest.approx(row["delta"] / s["interval"], rel=1e-3)
        assert s["interval"] == pytest.approx(0.3, abs=0.2)


def test_watch_refuses_bad_options(pindir):
    path = os.path.join(pindir, "q")
    assert run_cli("create", "queue", "--value", "4", "--pin", path, "-q").returncode == 0
    r = run_cli("watch", path, "--count", "1")
    assert r.returncode == 2 and "cannot be iterated" in r.stderr
    for bad in (["--interval", "0"], ["--sort", "size"], ["--count", "0"], ["-o", "csv"]):
        r = run_cli("watch", path, *bad)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (bad, r.stderr)


def test_live_screen_in_a_real_terminal(pindir, tmux, tmp_path):
    """watch in tmux: the screen shows entries, deltas and rates; 'q' leaves with exit 0."""
    path = os.path.join(pindir, "flows")
    layout = "u32:packets=u64,bytes=u64,comm=char[8]"
    assert run_cli("create", "hash", "--layout", layout, "--pin", path, "-q").returncode == 0
    assert run_cli("update", path, "1", "1,100,curl").returncode == 0
    assert run_cli("update", path, "2", "2,200,dig").returncode == 0
    rc_file = tmp_path / "rc"
    exe = BPFMAP_SH
    tmux.start(f"{exe} watch {shlex.quote(path)} --interval 0.3 --sort rate; echo $? > {rc_file}; sleep 30")
    tmux.wait_for("2 entries")
    # a writer bumps entry 2 (+10 packets, +1000 bytes) every 0.1 s while the screen refreshes
    import re
    import threading

    stop = threading.Event()

    def bump():
        i = 0
        while not stop.is_set():
            i += 1
            run_cli("update", path, "2", f"{2 + i * 10},{200 + i * 1000},dig")
            time.sleep(0.1)

    writer = threading.Thread(target=bump)
    writer.start()
    try:
        deadline = time.monotonic() + 15
        while True:
            screen = tmux.screen()
            rows = [ln.strip() for ln in screen.splitlines() if ln.strip().startswith(("1 ", "2 "))]
            if len(rows) == 2 and rows[0].startswith("2 ") and re.search(r"\+[1-9][\d,]*0 ", rows[0]):
                break
            assert time.monotonic() < deadline, f"no refresh showed entry 2 changing first:\n{screen}"
            time.sleep(0.1)
    finally:
        stop.set()
        writer.join()
    head = next(ln for ln in screen.splitlines() if "packets" in ln)
    assert all(c in head for c in ("key", "packets", "Δpackets", "packets/s", "bytes", "Δbytes", "bytes/s", "comm"))
    # --sort rate: the busy entry first, with a positive rate; the idle one after it, unchanged
    rates = re.findall(r"([\d,]+\.\d)/s", rows[0])
    assert "dig" in rows[0] and rates and float(rates[0].replace(",", "")) > 0
    assert "curl" in rows[1] and "+0" in rows[1] and " 0.0/s" in rows[1]
    tmux.keys("q")
    deadline = time.monotonic() + 10
    while not (rc_file.exists() and rc_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)  # the shell opens the file before echo writes it
    assert rc_file.read_text().strip() == "0"


def test_ctrl_c_leaves_the_live_screen_cleanly(pindir, tmux, tmp_path):
    path = os.path.join(pindir, "c")
    assert run_cli("create", "array", "--layout", "u32:u64", "--max-entries", "2", "--pin", path, "-q").returncode == 0
    rc_file = tmp_path / "rc"
    exe = BPFMAP_SH
    tmux.start(
        f"{exe} watch {shlex.quote(path)} --interval 0.2 2>{tmp_path / 'err'}; echo $? > {rc_file}; "
        f"stty -a > {tmp_path / 'stty.part'} && mv {tmp_path / 'stty.part'} {tmp_path / 'stty'}; sleep 30"
    )
    tmux.wait_for("2 entries")
    tmux.keys("C-c")
    deadline = time.monotonic() + 10  # a guard against a hang; the file appears whole (mv)
    while not (tmp_path / "stty").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rc_file.read_text().strip() == "0"
    assert (tmp_path / "err").read_text() == ""  # no traceback, no message
    assert " icanon " in f" {(tmp_path / 'stty').read_text()} " and " echo " in (tmp_path / "stty").read_text()


# -- the poll against the plain algorithm ------------------------------------------------------

WATCH_LEAVES = ["u8", "u16", "u32", "s32", "u64", "be16", "char[3]", "ipv4", "f64", "bool", "hex[2]"]


def _plain_poll(entries, last, dt, sort, top):
    """What watch showed before it worked out only the rows it shows: every entry's
    change, the rows sorted whole (by key: _key_order; by value or rate: the total,
    largest first, then the key), then cut to ``top``."""
    from bpfmap.live.watch import _key_order

    rows = []
    for k, v in entries:
        old = last.get(json.dumps(k))
        if old is not None and dt:
            d = diff(v, old)
            rows.append((k, v, d, scale(d, 1.0 / dt)))
        else:
            rows.append((k, v, None, None))
    if sort == "key":
        rows.sort(key=lambda r: _key_order(r[0]))
    else:
        metric = (lambda r: total(r[1])) if sort == "value" else (lambda r: total(r[2]))  # rate: its change
        rows.sort(key=lambda r: (metric(r) is None, -(metric(r) or 0), _key_order(r[0])))
    return rows[:top] if top is not None else rows


def test_poll_gives_the_plain_rows(pindir):
    """Random layouts and entries, polled, changed (updates, deletes, new entries) and
    polled again, by key, value and rate, with and without --top and a screen's limit:
    the rows (keys, values, changes, rates) are the plain algorithm's, in its order."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    def side(fields):
        return ",".join(f"f{i}={t}" for i, t in enumerate(fields))

    # distinct bytes, distinct keys: not bools, floats (NaNs) or char[N] (a C string: bytes
    # after its NUL are not shown, so two keys may show as one; watch keeps both, by bytes)
    key_leaves = [t for t in WATCH_LEAVES if t not in ("bool", "f64") and not t.startswith("char")]

    @settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        key=st.one_of(
            st.sampled_from(key_leaves), st.lists(st.sampled_from(key_leaves), min_size=1, max_size=3).map(side)
        ),
        value=st.one_of(
            st.sampled_from(WATCH_LEAVES),
            st.lists(st.sampled_from(WATCH_LEAVES), min_size=1, max_size=4).map(side),
            st.just("a=u32,b={c=u16,d=u8[2]}"),
        ),
        data=st.binary(min_size=256, max_size=4096),
        count=st.integers(0, 200),
        sort=st.sampled_from(["key", "value", "rate"]),
        top=st.one_of(st.none(), st.integers(1, 30)),
        limit=st.one_of(st.none(), st.integers(1, 30)),
        changes=st.integers(0, 100),
    )
    def check(key, value, data, count, sort, top, limit, changes):
        lay = Layout.parse(f"{key}:{value}")
        ks, vs = lay.key.size, lay.value.size
        buf = data * (1 + 2 * (count + changes + 1) * (ks + vs) // len(data))

        def entry(i):
            at = i * (ks + vs)
            return buf[at : at + ks], buf[at + ks : at + ks + vs]

        with Map.create("hash", ks, vs, 512) as m:
            for i in range(count):
                m.update(*entry(i))
            view = View(m, lay)
            w = Watcher(view, sort=sort, top=top)
            first = w.poll(limit)
            before = list(view.entries())
            for i in range(changes):  # new values for old keys, new keys, deletes
                k, v = entry(count + i)
                if count and i % 3 == 0:
                    k = entry(i % count)[0]
                if count and i % 5 == 4:
                    if m.get(k) is not None:
                        m.delete(k)
                else:
                    m.update(k, v)
            second = w.poll(limit)
            now = list(view.entries())
            prev = {json.dumps(k): v for k, v in before}
            for snap, rows in (
                (first, _plain_poll(before, {}, None, sort, top)),
                (second, _plain_poll(now, prev, second.interval, sort, top)),
            ):
                cut = rows[:limit] if limit is not None else rows
                got = [(r.key, r.value, r.delta, r.rate) for r in snap.rows]
                assert json.dumps(got) == json.dumps(cut)
                assert snap.available == len(rows)

    check()
