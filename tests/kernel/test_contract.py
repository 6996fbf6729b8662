"""docs/contract.md is checked against the program: every JSON shape it shows is compared
(field names, nesting and JSON types) with what the command prints."""

from __future__ import annotations

import json
import os
import re

import pytest
from helpers import REPO, compile_bpf, run_cli, same_shape
from helpers.events import events_while_writing
from helpers.programs import OBJECT_SOURCE, RINGBUF_TWICE, load

from bpfmap import Map
from bpfmap.core.maps import Program

DOC = os.path.join(REPO, "docs", "contract.md")


def _shapes() -> dict[str, object]:
    text = open(DOC, encoding="utf-8").read()
    found = re.findall(r"<!-- shape: ([\w-]+) -->\s*```json\n(.*?)```", text, re.S)
    return {name: json.loads(body) for name, body in found}


@pytest.fixture
def maps(pindir, tmp_path):
    def make(name, *args):
        path = os.path.join(pindir, name)
        r = run_cli("create", *args, "--pin", path, "-q")
        assert r.returncode == 0, r.stderr
        return path

    counts = make("counts", "hash", "--layout", "u32:u64", "--name", "counts")
    assert run_cli("update", counts, "1", "42").returncode == 0
    pcpu = make("pcpu", "percpu_array", "--layout", "u32:u64", "--max-entries", "1")
    bloom = make("bloom", "bloom_filter", "--value", "4", "--max-entries", "16")
    assert run_cli("push", bloom, "7", "--layout", "u32").returncode == 0
    lat = make("lat", "array", "--layout", "u32:u64", "--max-entries", "8")
    assert run_cli("update", lat, "3", "5").returncode == 0
    outer = make("outer", "array_of_maps", "--max-entries", "1", "--inner-map", lat)
    assert run_cli("update", outer, "0", lat).returncode == 0
    rb = make("rb", "ringbuf")
    with Map.open(rb) as m:
        prog = Program.load("socket_filter", RINGBUF_TWICE, {"rb": m})
        prog.test_run(bytes(20))
        prog.close()
    pe = make("pe", "perf_event_array")

    src, obj = os.path.join(tmp_path, "o.c"), os.path.join(tmp_path, "o.o")
    with open(src, "w") as f:
        f.write(OBJECT_SOURCE)
    compile_bpf(src, obj)
    return {
        "dir": pindir,
        "outer": outer,
        "counts": counts,
        "pcpu": pcpu,
        "bloom": bloom,
        "lat": lat,
        "rb": rb,
        "pe": pe,
        "obj": obj,
    }


def _object_maps(pindir: str) -> dict[str, object]:
    """One dumped entry of a sockmap, task_storage, cgrp_storage and cgroup_storage."""
    import socket

    from bpfmap import MapSpec, _sys
    from bpfmap.core.objrefs import cgroup2_mount

    out: dict[str, object] = {}
    sm, ts, cs = (os.path.join(pindir, n) for n in ("sm", "ts", "cs"))
    assert run_cli("create", "sockmap", "--max-entries", "4", "--pin", sm).returncode == 0
    assert run_cli("create", "task_storage", "--layout", "u64", "--pin", ts).returncode == 0
    assert run_cli("create", "cgrp_storage", "--layout", "u64", "--pin", cs).returncode == 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        assert run_cli("update", sm, "3", f"sock:{os.getpid()}:{s.fileno()}").returncode == 0
        out["dump-sockmap"] = _json_line("dump", sm, "-o", "jsonl")
    assert run_cli("update", ts, f"pid:{os.getpid()}", "7").returncode == 0
    out["dump-task-storage"] = _json_line("dump", ts, "-o", "jsonl")
    ss = os.path.join(pindir, "ss")
    assert run_cli("create", "sk_storage", "--layout", "u32", "--pin", ss).returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert run_cli("update", ss, f"sock:{os.getpid()}:{s.fileno()}", "7").returncode == 0
        out["dump-sk-storage"] = _json_line("dump", ss, "-o", "jsonl")
    assert run_cli("update", cs, "cgroup:/", "7").returncode == 0
    out["dump-cgrp-storage"] = _json_line("dump", cs, "-o", "jsonl")
    m = Map.create(MapSpec("cgroup_storage", 16, 8, 0))
    prog = Program.load("cgroup_skb", "r1 = map[st]\nr2 = 0\ncall get_local_storage\nr0 = 1\nexit", {"st": m})
    path = os.path.join(cgroup2_mount() or "", "bpfmapcontract")
    os.mkdir(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        _sys.prog_attach(fd, prog.fileno(), 1)
        m.pin(os.path.join(pindir, "cst"))
        out["dump-cgroup-storage"] = _json_line("dump", os.path.join(pindir, "cst"), "--layout", ":u64", "-o", "jsonl")
        _sys.prog_detach(fd, prog.fileno(), 1)
    finally:
        os.close(fd)
        os.rmdir(path)
        prog.close()
        m.close()

    prof = load("stacks", pindir, _Factory(pindir))
    with Program.open(os.path.join(prof.progs, "profile")) as p:
        p.test_run(ctx=bytes(8))
    with Map.open(prof.map("ids")) as m:
        kern_id = int.from_bytes(m.lookup(bytes(4)), "little", signed=True)
    out["dump-stack-trace"] = json.loads(run_cli("lookup", prof.map("stacks"), str(kern_id), "-o", "json").stdout)
    out["stacks"] = json.loads(
        run_cli("stacks", prof.map("counts"), "--stack-map", prof.map("stacks"), "-o", "json").stdout
    )
    return out


class _Factory:
    """What load() wants of pytest's tmp_path_factory: a fresh directory."""

    def __init__(self, base: str) -> None:
        self.base = base

    def mktemp(self, name: str):
        import pathlib
        import tempfile

        return pathlib.Path(tempfile.mkdtemp(prefix=name))


def _perf_record(path: str) -> object:
    """One record through a perf buffer that 'bpfmap events' opens, written while it waits."""

    code, out, err = events_while_writing(
        path, "--layout", "pid=u32,comm=char[16],pad[4]", "--count", "1", "-o", "jsonl", record_size=24
    )
    assert code == 0, err
    return json.loads(out.splitlines()[0])


def _json_line(*args: str, stream: str = "stdout", line: int = 0) -> object:
    r = run_cli(*args)
    text = getattr(r, stream)
    assert text, (args, r.returncode, r.stderr)
    return json.loads(text.splitlines()[line])


def test_documented_shapes_match_the_program(maps):
    shapes = _shapes()
    assert set(shapes) == {
        "error",
        "dump",
        "dump-percpu",
        "peek-bloom",
        "getnext",
        "dump-recursive",
        "show",
        "list",
        "watch",
        "hist",
        "events",
        "events-long",
        "events-perf",
        "object-map",
        "dump-sockmap",
        "dump-task-storage",
        "dump-sk-storage",
        "dump-cgrp-storage",
        "dump-cgroup-storage",
        "dump-stack-trace",
        "stacks",
        "top",
        "dump-many",
        "delete-where",
    }
    counts = maps["counts"]
    printed = {
        "error": _json_line("lookup", counts, "99", "-o", "json", stream="stderr"),
        "dump": _json_line("dump", counts, "-o", "jsonl"),
        "dump-percpu": _json_line("dump", maps["pcpu"], "-o", "jsonl"),
        "peek-bloom": _json_line("peek", maps["bloom"], "7", "--layout", "u32", "-o", "json"),
        "getnext": json.loads(run_cli("getnext", maps["lat"], "3", "-o", "json").stdout),
        "dump-recursive": _json_line("dump", maps["outer"], "--recursive", "-o", "jsonl"),
        "show": json.loads(run_cli("show", counts, "-o", "json").stdout),
        "list": next(
            i for i in map(json.loads, run_cli("list", "-o", "jsonl").stdout.splitlines()) if counts in i["pinned"]
        ),
        "watch": _json_line("watch", counts, "--count", "2", "--interval", "0.1", "-o", "jsonl", line=1),
        "hist": _json_line("hist", maps["lat"], "-o", "jsonl"),
        "events": _json_line(
            "events", maps["rb"], "--layout", "pid=u32,comm=char[16],pad[4]", "--count", "1", "-o", "jsonl"
        ),
        # the ring's 24-byte records read through a 20-byte layout: the excess as hex
        "events-long": _json_line(
            "events", maps["rb"], "--layout", "pid=u32,comm=char[16]", "--count", "1", "-o", "jsonl"
        ),
        "events-perf": _perf_record(maps["pe"]),
        "object-map": next(
            d
            for d in json.loads(run_cli("show", "--object", maps["obj"], "-o", "json").stdout)
            if d["inner"] and d["slots"]
        ),
    }
    printed.update(_object_maps(maps["dir"]))
    printed["dump-many"] = _json_line("dump", maps["dir"], "-o", "jsonl")
    printed["delete-where"] = _json_line("delete", counts, "--where", "key>=0", "--dry-run", "--print", "-o", "jsonl")
    printed["top"] = _json_line("top", counts, "-o", "jsonl", "--count", "2", "--interval", "0.1", line=1)
    for name, shape in shapes.items():
        same_shape(shape, printed[name], name)
    assert printed["error"]["code"] == 1 and run_cli("lookup", counts, "99", "-o", "json").returncode == 1
