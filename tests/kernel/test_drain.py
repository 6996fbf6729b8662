"""dump --delete never drops an entry it took from the map: every way the output can fail
is checked by counting what the reader got plus what is left in the map."""

from __future__ import annotations

import errno
import json
import os
import signal
import struct
import subprocess
import time

import pytest
from helpers import BPFMAP, run_cli

from bpfmap import Map, possible_cpus
from bpfmap.entries.drain import DeliveryError, Sink, drain
from bpfmap.layout import Layout
from bpfmap.output import EntryTexts
from bpfmap.view import View

CMD = list(BPFMAP)
N = 100_000


def _filled(pin: str, n: int = N, mtype: str = "hash") -> None:
    with Map.create(mtype, 4, 8, max_entries=2 * n) as m:
        keys = b"".join(struct.pack("I", i) for i in range(n))
        m.update_batch(keys, b"".join(struct.pack("Q", i * 3) for i in range(n)), n)
        m.pin(pin)


def _left(pin: str) -> dict[int, int]:
    with Map.open(pin) as m:
        return {struct.unpack("I", k)[0]: struct.unpack("Q", v)[0] for k, v in m.items()}


def _complete_lines(data: bytes) -> dict[int, int]:
    """The entries a reader got whole: text lines ending in a newline."""
    got = {}
    for line in data.split(b"\n")[:-1]:
        k, v = line.split(b"\t")
        got[int(k)] = int(v)
    return got


def _assert_nothing_lost(pin: str, got: dict[int, int], n: int = N) -> None:
    left = _left(pin)
    assert not set(got) & set(left), "an entry was both written and put back"
    merged = {**got, **left}
    assert merged == {i: i * 3 for i in range(n)}


def test_a_full_disk_puts_the_batch_back(pindir):
    pin = f"{pindir}/m"
    _filled(pin)
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [*CMD, "dump", pin, "-l", "u32:u64", "--delete"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60
        )
    assert r.returncode == 3, r.stderr
    assert len(r.stderr.splitlines()) == 1 and "No space left on device" in r.stderr
    assert "put back in the map" in r.stderr and "Traceback" not in r.stderr
    _assert_nothing_lost(pin, {})


def test_the_element_by_element_path_puts_back_too(pindir):
    pin = f"{pindir}/m"
    _filled(pin, 3000)
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [*CMD, "dump", pin, "-l", "u32:u64", "--delete"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env=dict(os.environ, BPFMAP_NO_BATCH="1"),
        )
    assert r.returncode == 3, r.stderr
    _assert_nothing_lost(pin, {}, 3000)


@pytest.mark.parametrize("take", [1, 4096, 100_000, 700_000])
def test_a_reader_that_closes_gets_whole_lines_and_the_rest_stays(pindir, take):
    """The reader takes ``take`` bytes and closes: what it did not read whole, including
    what still sat in the pipe, is put back.  Exit 0, as for any reader that stops early."""
    pin = f"{pindir}/m"
    _filled(pin)
    p = subprocess.Popen(
        [*CMD, "dump", pin, "-l", "u32:u64", "--delete"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    data = b""
    while len(data) < take:
        chunk = os.read(p.stdout.fileno(), take - len(data))
        if not chunk:
            break
        data += chunk
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 0, err
    assert "the reader closed the output" in err and len(err.splitlines()) == 1
    _assert_nothing_lost(pin, _complete_lines(data))


def _read_all_slowly(p: subprocess.Popen, after_first, chunk: int = 4096, pause: float = 0.002) -> bytes:
    data = b""
    fired = False
    while True:
        got = os.read(p.stdout.fileno(), chunk)
        if not got:
            return data
        data += got
        if not fired:
            after_first()
            fired = True
        time.sleep(pause)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_finishes_the_batch_in_hand(pindir, sig, code):
    pin = f"{pindir}/m"
    _filled(pin)
    p = subprocess.Popen(
        [*CMD, "dump", pin, "-l", "u32:u64", "--delete"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    data = _read_all_slowly(p, lambda: p.send_signal(sig))
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == code, err
    got = _complete_lines(data)
    assert data.endswith(b"\n") and 0 < len(got) < N
    assert f"interrupted; {len(got)} entries drained and written" in err
    _assert_nothing_lost(pin, got)


def test_json_stays_one_valid_array_when_interrupted(pindir):
    pin = f"{pindir}/m"
    _filled(pin)
    p = subprocess.Popen(
        [*CMD, "dump", pin, "-l", "u32:u64", "--delete", "-o", "json", "--batch-size", "1000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    data = _read_all_slowly(p, lambda: p.send_signal(signal.SIGINT))
    assert p.wait(timeout=60) == 130
    got = {e["key"]: e["value"] for e in json.loads(data)}
    assert 0 < len(got) < N
    _assert_nothing_lost(pin, got)


def test_sigkill_loses_at_most_one_batch(pindir):
    pin = f"{pindir}/m"
    _filled(pin)
    p = subprocess.Popen(
        [*CMD, "dump", pin, "-l", "u32:u64", "--delete", "--batch-size", "100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    data = _read_all_slowly(p, lambda: p.send_signal(signal.SIGKILL))
    assert p.wait(timeout=60) == -signal.SIGKILL
    got = _complete_lines(data)
    left = _left(pin)
    assert not set(got) & set(left)
    lost = N - len(got) - len(left)
    assert 0 <= lost <= 100, lost


class _FailingSink(Sink):
    """An output that fails with ``err`` on its ``call``-th write, after taking that
    write's first ``entries`` lines and two bytes of the next (or nothing: entries=None);
    ``before_failing`` runs first (a program re-creating keys in the meantime)."""

    def __init__(self, stream, err: int, call: int = 1, entries: int | None = None, before_failing=None) -> None:
        super().__init__(stream)
        self.err, self.call, self.entries, self.before_failing = err, call, entries, before_failing
        self.data = b""

    def write(self, data: bytes) -> None:
        self.call -= 1
        if self.call:
            self.written += len(data)
            self.data += data
            return
        if self.entries is not None:
            cut = [i for i, c in enumerate(data) if c == 10][self.entries - 1] + 3
            self.written += cut
            self.data += data[:cut]
        if self.before_failing:
            self.before_failing()
        raise OSError(self.err, os.strerror(self.err))


def _drain_into(m: Map, sink: Sink, layout: str = "u32:u64", **kw) -> int:
    view = View(m, Layout.parse(layout))
    texts = EntryTexts("text", view.key, view.value, m.percpu)

    def entry_texts(keys, values, count):
        k, v = view.decode_batch(keys, values, count)
        return texts.batch(k, v)

    return drain(m, entry_texts, sink, texts.end, **kw)


def test_an_io_error_mid_batch_puts_back_exactly_what_was_not_written(pindir, tmp_path):
    pin = f"{pindir}/m"
    _filled(pin, 5000)
    sink = _FailingSink(open(os.devnull, "w"), errno.EIO, call=3, entries=10)
    with Map.open(pin) as m, pytest.raises(DeliveryError) as caught:
        _drain_into(m, sink, size=1000)
    e = caught.value
    got = _complete_lines(sink.data)
    assert not sink.data.endswith(b"\n"), "the failure should cut an entry in two"
    assert e.rescued == 0 and e.delivered == len(got) > 10 and 0 < e.restored <= 1000
    assert "Input/output error" in str(e)
    _assert_nothing_lost(pin, {k: v for k, v in got.items()}, 5000)


def test_keys_recreated_meanwhile_are_kept_and_the_old_entries_rescued(pindir, tmp_path, monkeypatch):
    """A program re-created two keys while the write failed: their new values stay, the
    drained entries go to a rescue file that update --from loads back."""
    monkeypatch.setenv("BPFMAP_RESCUE_DIR", str(tmp_path))
    pin = f"{pindir}/m"
    _filled(pin, 2000)
    with Map.open(pin) as m:

        def recreate():  # the whole map is one batch, drained when the first write fails
            for k in (1500, 1501):
                m.update(struct.pack("I", k), struct.pack("Q", 7), mode="noexist")

        with pytest.raises(DeliveryError) as caught:
            _drain_into(m, _FailingSink(open(os.devnull, "w"), errno.EIO, before_failing=recreate))
    e = caught.value
    assert e.rescued == 2 and e.restored == 1998 and e.rescue_path
    assert e.rescue_path.startswith(str(tmp_path)) and e.rescue_path in str(e)
    left = _left(pin)
    assert left[1500] == 7 and left[1501] == 7 and len(left) == 2000
    lines = open(e.rescue_path).read().splitlines()
    assert sorted(lines) == sorted(
        f"{struct.pack('I', k).hex(' ')}\t{struct.pack('Q', k * 3).hex(' ')}" for k in (1500, 1501)
    )
    copy = f"{pindir}/copy"
    run_cli("create", "hash", "--key", "4", "--value", "8", "--pin", copy)
    r = run_cli("update", copy, "--from", e.rescue_path, "--layout", "-:-")
    assert r.returncode == 0, r.stderr
    assert _left(copy) == {1500: 4500, 1501: 4503}


def test_percpu_rescue_files_load_back(pindir, tmp_path, monkeypatch):
    monkeypatch.setenv("BPFMAP_RESCUE_DIR", str(tmp_path))
    pin = f"{pindir}/p"
    ncpu = possible_cpus()
    with Map.create("percpu_hash", 4, 4, max_entries=16) as m:
        m.pin(pin)
        m.update(struct.pack("I", 1), [struct.pack("I", 10 + c) for c in range(ncpu)])

        def recreate():
            m.update(struct.pack("I", 1), [struct.pack("I", 0)] * ncpu)

        with pytest.raises(DeliveryError) as caught:
            _drain_into(m, _FailingSink(open(os.devnull, "w"), errno.ENOSPC, before_failing=recreate), layout="u32:u32")
    e = caught.value
    assert e.rescued == 1
    copy = f"{pindir}/copy"
    run_cli("create", "percpu_hash", "--key", "4", "--value", "4", "--pin", copy)
    r = run_cli("update", copy, "--from", e.rescue_path, "--layout", "-:-")
    assert r.returncode == 0, r.stderr
    with Map.open(copy) as m:
        assert m.lookup(struct.pack("I", 1)) == [struct.pack("I", 10 + c) for c in range(ncpu)]


def test_drain_refuses_what_would_hold_or_drop_entries(bm, pindir):
    pin = f"{pindir}/m"
    _filled(pin, 10)
    for args, word in (
        (["--sort", "value"], "--sort"),
        (["--sort", "value", "--top", "1"], "--sort"),
        (["-o", "table"], "table"),
    ):
        code, _out, err = bm("dump", pin, "-l", "u32:u64", "--delete", *args)
        assert code == 2 and word in err
    assert len(_left(pin)) == 10


def test_a_second_ctrl_c_stops_a_stalled_write_and_puts_the_rest_back(pindir):
    """The reader has stopped reading (the pipe is full): the first Ctrl-C waits for the
    batch to be written, the second gives up on it and puts back what the pipe did not take."""
    pin = f"{pindir}/m"
    _filled(pin)
    p = subprocess.Popen(
        [*CMD, "dump", pin, "-l", "u32:u64", "--delete"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(1.5)  # the pipe fills; bpfmap blocks in write(2)
    p.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert p.poll() is None, "the first Ctrl-C must not end a drain with a batch in hand"
    p.send_signal(signal.SIGINT)
    code = p.wait(timeout=60)
    err = p.stderr.read().decode()
    data = p.stdout.read()
    assert code == 130, err
    assert "press Ctrl-C again" in err and "interrupted" in err and "put back in the map" in err
    _assert_nothing_lost(pin, _complete_lines(data))
