"""The command line says each parameter a library message names as its option, in the very
line it said before the library's messages named parameters: the whole stderr line of each
refusal, exit code 2."""

from __future__ import annotations

import os
import shlex

import pytest

from bpfmap import Map, View, hist
from bpfmap.entries.bulk import Loader
from bpfmap.layout import Layout
from bpfmap.live.watch import Watcher
from bpfmap.objects import create_maps, read_object
from bpfmap.objects.create import create_map
from bpfmap.streams.events import reader

pytestmark = pytest.mark.kernel

KV = "pid=u32:n=u32,comm=char[8],ok=bool,ts=u64"
L = f"--layout {KV}"
FIELDS = "(fields: key.pid, value.n, value.comm, value.ok, value.ts)"


MAPS = {  # name: (type, layout) of the maps make() pins
    "m": ("hash", KV),
    "st": ("stack_trace", "u32:u64[4]"),
    "ids": ("hash", "pid=u32,a_stack_id=u32,b_stack_id=u32:u64"),
    "sv": ("hash", "pid=u32,kern_stack_id=u32:n=u64,c=u64"),
    "ck": ("hash", "name=char[4]:u64"),
    "cv": ("hash", "k=u32:s=char[8]"),
}


# Maps make() creates from their facts, with no entry (MapSpec fields but the type).
OTHER_MAPS = {
    "lpm": ("lpm_trie", {"key_size": 8, "value_size": 4, "flags": "no_prealloc"}),
    "q": ("queue", {"value_size": 4}),
    "rb": ("ringbuf", {"max_entries": 4096}),
    "ur": ("user_ringbuf", {"max_entries": 4096}),
    "sk": ("sockmap", {"key_size": 4, "value_size": 4, "max_entries": 2}),
}

Z8 = " ".join(["00"] * 8)
FILES = {
    "c.yaml": "metrics: [{name: m, map: /x}]\n",
    "k.h": "struct v { unsigned int n; unsigned char c[8]; unsigned long long t[2]; };\n",
    "m.jsonl": '{"key": "00 00 00 00", "value": "%s"}\n' % " ".join(["00"] * 24),
    "full.txt": "0000000000000000\n" * 300,  # 4096 bytes of ring hold 256 records of 8 bytes
    "as.yaml": "metrics: [{name: m, map: /x, as: {n: nope}}]\n",
    "asmap.yaml": f"metrics: [{{name: m, map: 'MAP', layout: '{KV}', value: n, as: {{n: ipv6}}}}]\n",
    "bad.jsonl": '{"key": "00 00 00 01", "value": "%s"}\n{"key": "1x", "value": "00"}\n' % ("00 " * 24).strip(),
}


def make(directory: str, tmp: str) -> dict[str, str]:
    """The maps of MAPS pinned in DIRECTORY (each with one entry of zeros but the stack
    map): name -> pin, "dir" -> DIRECTORY; and the files of FILES in TMP ("tmp")."""
    pins = {"dir": directory, "tmp": tmp}
    pins.update((name, os.path.join(directory, name)) for name in MAPS)
    for name, (kind, layout) in MAPS.items():
        lay = Layout.parse(layout)
        with Map.create(kind, lay.key.size, lay.value.size, max_entries=8) as m:
            if kind == "hash":
                m.update(bytes(lay.key.size), bytes(lay.value.size))
            m.pin(pins[name])
    for name, (kind, facts) in OTHER_MAPS.items():
        pins[name] = os.path.join(directory, name)
        Map.create(kind, pin=pins[name], **facts).close()
    for name, text in FILES.items():
        with open(os.path.join(tmp, name), "w") as f:
            f.write(text.replace("MAP", pins["m"]))
    return pins


# The command line ({m}, {st}, ...: the maps make() pinned; {dir}: their directory) -> its stderr.
LINES = {
    f"dump {{m}} {L} --where pid": "--where 'pid': write FIELD=VALUE, FIELD!=VALUE, FIELD~TEXT, or FIELD<N (also <=, >, >=)",
    f"dump {{m}} {L} --where 'pid<lots'": "--where 'pid<lots': < compares numbers; 'lots' is not one",
    f"dump {{m}} {L} --where 'comm>1'": (
        "--where comm>1: comm is char[8], which has no order; > compares number fields (use = or ~ on it)"
    ),
    f"count {{m}} {L} --where n=abc": "--where n=abc: n is u32, a number; 'abc' is not one: give a number",
    f"dump {{m}} {L} --as n=errno --where n=ENOENTX": (
        "--where n=ENOENTX: n holds a number (shown as errno); 'ENOENTX' is neither a number nor a value errno shows"
    ),
    f"delete {{m}} {L} --where nope=1": f"--where nope=1: no field nope in the key or the value {FIELDS}",
    f"dump {{m}} {L} --older-than 1s --time-field ts --clock jiffies": (
        "--clock jiffies: choose one of monotonic, boottime, realtime, tai"
    ),
    f"dump {{m}} {L} --older-than 1s --time-field comm": (
        "--time-field comm: comm is char[8], not an integer; name the field holding the timestamp in nanoseconds (a u64)"
    ),
    f"dump {{m}} {L} --older-than 1s --time-field nope": (
        f"--time-field nope: no field nope in the key or the value {FIELDS}"
    ),
    "dump {m} --where n=1": "--where n=1: the map has no layout to name fields by; give --layout (or --c-header) or BTF",
    "migrate {m}": "migrate: give the new shape: --max-entries, --type, --flags, --layout (or --c-header) or --from-object",
    "migrate {m} --layout u64:u64": (
        "migrate: the keys are 4 and 8 bytes and one has no layout to convert them by; "
        "give both (--old-layout, --layout, or BTF)"
    ),
    # layouts
    "lookup {m} 01": "key '01': 1 bytes given, 4 expected; give hex bytes such as '00 00 00 00' or use --layout",
    "lookup {m} 1x": "key '1x': bad hex bytes '1x': write two hex digits per byte, e.g. '01 00 00 00' or 0x01000000 (numbers need --layout, e.g. --layout u32:u64)",
    "update {m} --from {tmp}/bad.jsonl": "update {dir}/m --from {tmp}/bad.jsonl: line 2: key '1x': bad hex bytes '1x': write two hex digits per byte, e.g. '01 00 00 00' or 0x01000000 (numbers need --layout, e.g. --layout u32:u64); 1 entry written before it",
    "update {m} --from {tmp}/bad.jsonl --keep-going": "update {dir}/m --from {tmp}/bad.jsonl: line 2: key '1x': bad hex bytes '1x': write two hex digits per byte, e.g. '01 00 00 00' or 0x01000000 (numbers need --layout, e.g. --layout u32:u64) (skipped)\nbpfmap: update {dir}/m --from {tmp}/bad.jsonl: 1 entry written, 1 bad line skipped",
    # --as
    f"dump {{m}} {L} --as n": "--as 'n': write FIELD=FORMAT, e.g. saddr=ip",
    f"dump {{m}} {L} --as n=nope": "--as 'n=nope': unknown format 'nope'; formats: ip, ipv4, ipv6, mac, hex, ksym, errno, syscall, cgroup, ifname, majorminor, majorminor_user, uid, gid",
    f"dump {{m}} {L} --as n=ipv6": "--as n=ipv6: n is 4 bytes (u32), ipv6 is 16",
    f"dump {{m}} {L} --as ok=ip": "--as ok=ip: ok is 1 bytes (bool), too small for an address",
    f"dump {{m}} {L} --as ts=ip": "--as ts=ip: no address-family field (af, family, sa_family...) beside ts, and 8 bytes is neither IPv4 nor IPv6; use ipv4 or ipv6",
    f"dump {{m}} {L} --as comm=errno": "--as comm=errno: comm is char[8], not an integer or an array of them",
    # export
    "export {tmp}/c.yaml --listen nope": "--listen 'nope': write HOST:PORT with an address or host name and ASCII digits, e.g. 127.0.0.1:9435 or [::1]:9435",
    "export {tmp}/c.yaml --listen :70000": "--listen ':70000': port 70000 is not 1..65535",
    "export {tmp}/c.yaml --textfile ''": "--textfile: the path is empty (an unset variable?); give a file such as DIR/bpfmap.prom",
    "export {tmp}/c.yaml --textfile {tmp}/no/x.prom": "--textfile {tmp}/no/x.prom: directory {tmp}/no: No such file or directory",
    "export {tmp}/c.yaml --textfile {tmp}/c.yaml/x.prom": "--textfile {tmp}/c.yaml/x.prom: {tmp}/c.yaml is not a directory",
    "export {tmp}/as.yaml --check": "{tmp}/as.yaml: metric m: as: 'n=nope': unknown format 'nope'; formats: ip, ipv4, ipv6, mac, hex, ksym, errno, syscall, cgroup, ifname, majorminor, majorminor_user, uid, gid",
    "export {tmp}/asmap.yaml --check": "{tmp}/asmap.yaml: metric m: as: n=ipv6: n is 4 bytes (u32), ipv6 is 16",
    # stacks
    "stacks {m} --stack-map {m}": "stacks: --stack-map {dir}/m is a hash, not a stack_trace map",
    f"stacks {{ids}} --stack-map {{st}} --layout {MAPS['ids'][1]}": "stacks {dir}/ids: several stack id fields (a_stack_id, b_stack_id); name one with --kernel-stack",
    f"stacks {{m}} --stack-map {{st}} {L}": "stacks {dir}/m: no stack id field in its key or value (looked for kern_stack_id, kernel_stack_id, kstack_id, user_stack_id, ustack_id and 4-byte integers named like stack_id); name one with --kernel-stack or --user-stack",
    f"stacks {{sv}} --stack-map {{st}} --layout {MAPS['sv'][1]}": "stacks {dir}/sv: the value is a struct (n, c); name the count with --value FIELD",
    f"stacks {{sv}} --stack-map {{st}} --layout {MAPS['sv'][1]} --kernel-stack nope": "--kernel-stack nope: no field nope in the key or the value (fields: key.pid, key.kern_stack_id, value.n, value.c)",
    f"stacks {{sv}} --stack-map {{st}} --layout {MAPS['sv'][1]} --user-stack nope": "--user-stack nope: no field nope in the key or the value (fields: key.pid, key.kern_stack_id, value.n, value.c)",
    f"stacks {{sv}} --stack-map {{st}} --layout {MAPS['sv'][1]} --pid nope --value n": "--pid nope: no field nope in the key or the value (fields: key.pid, key.kern_stack_id, value.n, value.c)",
    f"stacks {{sv}} --stack-map {{st}} --layout {MAPS['sv'][1]} --label nope --value n": "--label nope: no field nope in the key or the value (fields: key.pid, key.kern_stack_id, value.n, value.c)",
    f"stacks {{sv}} --stack-map {{st}} --layout {MAPS['sv'][1]} --value nope": "--value nope: no field nope in the key or the value (fields: key.pid, key.kern_stack_id, value.n, value.c)",
    # hist
    "hist {m}": "hist: the slot must be a number, not '00 00 00 00'; give a layout (--layout u32:u64) or pick a field (--slot NAME / --field NAME)",
    f"hist {{m}} {L} --slot nope": "hist --slot nope: the key has fields pid",
    f"hist {{m}} {L} --field nope": "hist --field nope: the value has fields n, comm, ok, ts",
    f"hist {{m}} {L} --slots nope": "hist --slots nope: 'nope': no field nope (fields: n, comm, ok, ts)",
    f"hist {{ck}} --layout {MAPS['ck'][1]}": "hist: the key has no numeric field; give --slot NAME",
    f"hist {{cv}} --layout {MAPS['cv'][1]}": "hist: the value has no numeric field; give --field NAME",
    f"hist {{m}} {L} --merge": "hist {dir}/m: the values hold no array of counts; give --slots FIELD",
    f"hist {{m}} {L} --sum-slot": "hist {dir}/m: the values hold no array of counts; give --slots FIELD",
    # C declarations
    "dump {m} --c-header {tmp}/k.h --key-type 'unsigned int' --value-type 'struct v' --include-dir {tmp}/nodir": (
        "--include-dir {tmp}/nodir: not a directory"
    ),
    "dump {m} --c-header {tmp}/k.h --key-type 'unsigned int' --value-type 'struct v[1'": (
        "C type unsigned int/struct v[1: before: [; is the type declared in {tmp}/k.h?"
    ),
    # events and send
    "events {rb} --cpu 0": "events {dir}/rb: a ring buffer is one for every CPU; --cpu is for perf event arrays",
    "events {rb} --where pid=1": "--where pid=1: records need a layout (--layout, --c-header or --object)",
    "send {ur} --from {tmp}/full.txt": (
        "send {dir}/ur: the ring stayed full for 0 s after 256 records went in; no program drained it "
        "(wait longer with --timeout)"
    ),
    # the Map
    "delete {lpm} 2000000001020304 --print": (
        "delete --print {dir}/lpm: the kernel hands an entry over as it deletes it only for hash maps "
        "(hash, percpu_hash, lru_hash, lru_percpu_hash), not lpm_trie; lookup, then delete"
    ),
    "lookup {m} 00000000 --lock": (
        "lookup --lock {dir}/m: its values hold no struct bpf_spin_lock (the map has no BTF to say so); "
        "--lock is for values that do"
    ),
    f"update {{m}} 00000000 '{Z8} {Z8} {Z8}' --lock": (
        "update --lock {dir}/m: its values hold no struct bpf_spin_lock (the map has no BTF to say so); "
        "--lock is for values that do"
    ),
    f"update {{m}} 00000000 '{Z8} {Z8} {Z8}' --noexist": "update {dir}/m: key already exists; drop --noexist to overwrite",
    "update {m} --from {tmp}/m.jsonl --noexist": (
        "update {dir}/m: key already exists; drop --noexist to overwrite (after 0 element(s) of the batch); "
        "0 entries written"
    ),
    "update {q} --from {tmp}/m.jsonl": "update {dir}/q --from: bulk load is for maps with keys and data values, not queue",
    # create
    "create hash --key 4 --value 4 --max-entries 1 --pin {dir}/no/m": (
        "pin {dir}/no/m: directory {dir}/no does not exist; create it (mkdir -p {dir}/no) or pass --mkdir"
    ),
    "create ringbuf --max-entries 1000 --pin {dir}/x": (
        "create ringbuf: the size (--max-entries) must be a power of two and at least the page size (4096); 1000 given"
    ),
    "create arena --max-entries 1 --map-extra 1 --pin {dir}/x": (
        "create arena: the arena's address (--map-extra) must be page-aligned"
    ),
    "create hash_of_maps --key 4 --max-entries 1 --pin {dir}/x": (
        "create hash_of_maps: maps of maps need a template inner map (--inner-map MAP)"
    ),
    "create hash --key 4 --value 4 --max-entries 1 --inner-map {m} --pin {dir}/x": (
        "create hash: --inner-map is only for array_of_maps and hash_of_maps"
    ),
    "create hash --value 4 --max-entries 1 --pin {dir}/x": "create hash: give the key size in bytes (--key N)",
    "create hash --key 4 --max-entries 1 --pin {dir}/x": "create hash: give the value size in bytes (--value N)",
    # copy's conversions
    f"copy {{m}} {{cv}} --from-layout {KV} --to-layout {MAPS['cv'][1]}": (
        "copy {dir}/m -> {dir}/cv: the target has no key.pid (u32), value.n (u32), value.comm (char[8]), "
        "value.ok (bool), value.ts (u64); --drop key.pid --drop value.n --drop value.comm --drop value.ok "
        "--drop value.ts to leave them behind"
    ),
    f"copy {{cv}} {{ck}} --from-layout {MAPS['cv'][1]} --to-layout k=u32:s=u64": (
        "value.s: char[8] cannot become u64; --drop value.s and --set value.s=VALUE"
    ),
    "copy {sv} {cv} --from-layout k=u64:h=u32[4] --to-layout k=u32:h=u32[2]": (
        "value.h: u32[4] does not fit u32[2]; --drop value.h to keep the first 2 elements"
    ),
    "copy {sv} {cv} --from-layout k=u64:h=bytes[16] --to-layout k=u32:h=bytes[8]": (
        "value.h: hex[16] does not fit hex[8]; --drop value.h to keep the first 8 bytes"
    ),
    "copy {m} {lpm}": (
        "copy: the keys are 4 and 8 bytes and neither has layout to convert them by; "
        "give both (--from-layout, --to-layout, or BTF)"
    ),
    # objects
    "migrate {m} --from-object {obj} --map outer": "{obj}: outer is a map of maps; create it with create --from-object",
    "create --from-object {obj} --pin-dir {dir} --only outer": (
        "create outer from {obj}: slot 1 holds map inner_a, which was not created (add it to --only)"
    ),
    # watch, top, dump
    "top --sort nope": "--sort 'nope': choose one of fill, entries, rate, memory, name",
    "watch {m} --sort nope": "--sort nope: choose one of key, value, rate",
    "watch {m} --top 0": "--top 0: give a positive number",
    "dump {m} --sort key --top 0": "--top must be at least 1",
    "dump {sk}": (
        "note: sockmap {dir}/sk: 2 slots; user space cannot read a sockmap's values of 4 bytes (make it with "
        "--value 8 to read sockets back as cookies), so occupied slots cannot be told from empty ones"
    ),
}

# The exit code and stdout of the LINES that say something other than a refusal (2, "").
OTHER_ENDS = {
    "send {ur} --from {tmp}/full.txt": (3, ""),  # the ring is full: MapFull
    f"update {{m}} 00000000 '{Z8} {Z8} {Z8}' --noexist": (3, ""),
    "update {m} --from {tmp}/m.jsonl --noexist": (3, ""),
    "create --from-object {obj} --pin-dir {dir} --only outer": (3, ""),  # the kernel's ENOENT
    "dump {sk}": (0, ""),  # a note, and no entry to show
}


def argv(line: str, pins: dict[str, str]) -> list[str]:
    return [a.format(**pins) for a in shlex.split(line)]


@pytest.mark.parametrize("line", LINES)
def test_the_refusal_names_the_option(line, pindir, tmp_path, bm, request):
    pins = make(pindir, str(tmp_path))
    pins["obj"] = str(request.getfixturevalue("obj")) if "{obj}" in line else ""
    code, out, err = bm(*argv(line, pins))
    ends = OTHER_ENDS.get(line, (2, ""))
    assert (code, out, err) == (*ends, f"bpfmap: {LINES[line].format(dir=pindir, tmp=tmp_path, obj=pins['obj'])}\n")


def _joiner(pins: dict[str, str], name: str, stack_map: str = "st", **fields):
    from bpfmap.live.stacks import Joiner

    with Map.open(pins[name]) as counts, Map.open(pins[stack_map]) as sm:
        return Joiner(View(counts, Layout.parse(MAPS[name][1])), sm, **fields)


def _hist(pin: str, **options):
    with Map.open(pin) as m:
        return hist.from_view(View(m, Layout.parse(KV)), **options)


def _copy(src: str, dst: str, src_layout: str | None = None, dst_layout: str | None = None):
    from bpfmap.entries.migrate import Copy

    with Map.open(src) as sm, Map.open(dst) as dm:
        lay = (Layout.parse(t) if t else None for t in (src_layout, dst_layout))
        return Copy(View(sm, next(lay)), View(dm, next(lay)))


def _on(pin: str, call):
    with Map.open(pin) as m:
        return call(m)


def _send(pin: str, records: list[bytes]):
    from bpfmap.streams.userring import UserRingBuffer

    with Map.open(pin) as m, UserRingBuffer(m) as ring:
        return ring.send_all(records, 0)


def _reader(pin: str, **options):
    with Map.open(pin) as m:
        reader(m, **options).close()


# The library's own refusals, for Python callers: (what raises it, the parameter it names,
# the command line's LINES entry that says the same).
LIBRARY = {
    "stack_map": (lambda p: _joiner(p, "m", "m"), "stacks {m} --stack-map {m}"),
    "kernel_field": (
        lambda p: _joiner(p, "ids"),
        f"stacks {{ids}} --stack-map {{st}} --layout {MAPS['ids'][1]}",
    ),
    "value_field": (lambda p: _joiner(p, "sv"), f"stacks {{sv}} --stack-map {{st}} --layout {MAPS['sv'][1]}"),
    "user_field": (
        lambda p: _joiner(p, "sv", user_field="nope"),
        f"stacks {{sv}} --stack-map {{st}} --layout {MAPS['sv'][1]} --user-stack nope",
    ),
    "pid_field": (
        lambda p: _joiner(p, "sv", pid_field="nope", value_field="n"),
        f"stacks {{sv}} --stack-map {{st}} --layout {MAPS['sv'][1]} --pid nope --value n",
    ),
    "labels": (
        lambda p: _joiner(p, "sv", labels=["nope"], value_field="n"),
        f"stacks {{sv}} --stack-map {{st}} --layout {MAPS['sv'][1]} --label nope --value n",
    ),
    "cpus": (lambda p: _reader(p["rb"], cpus=[0]), "events {rb} --cpu 0"),
    "drops": (
        lambda p: _copy(p["m"], p["cv"], KV, MAPS["cv"][1]),
        f"copy {{m}} {{cv}} --from-layout {KV} --to-layout {MAPS['cv'][1]}",
    ),
    "src_layout": (lambda p: _copy(p["m"], p["lpm"]), "copy {m} {lpm}"),
    "take": (lambda p: _on(p["lpm"], lambda m: m.take(bytes(8))), "delete {lpm} 2000000001020304 --print"),
    "lock": (lambda p: _on(p["m"], lambda m: m.lookup(bytes(4), lock=True)), "lookup {m} 00000000 --lock"),
    "create_maps": (
        lambda p: create_map(read_object(p["obj"]), "outer"),
        "migrate {m} --from-object {obj} --map outer",
    ),
    "only": (
        lambda p: create_maps(read_object(p["obj"]), p["dir"], only=["outer"]),
        "create --from-object {obj} --pin-dir {dir} --only outer",
    ),
    "sort": (lambda p: _on(p["m"], lambda m: Watcher(View(m), sort="nope")), "watch {m} --sort nope"),
    "top": (lambda p: _on(p["m"], lambda m: Watcher(View(m), top=0)), "watch {m} --top 0"),
    "timeout": (lambda p: _send(p["ur"], [bytes(8)] * 300), "send {ur} --from {tmp}/full.txt"),
    "load": (lambda p: _on(p["q"], lambda m: Loader(View(m))), "update {q} --from {tmp}/m.jsonl"),
    "slots": (
        lambda p: _hist(p["m"], merge=True, strict=True),
        f"hist {{m}} {L} --merge",
    ),
}


@pytest.mark.parametrize("param", LIBRARY)
def test_the_library_names_the_parameter(param, pindir, tmp_path, request):
    from bpfmap.cli import worded
    from bpfmap.errors import BpfmapError

    call, line = LIBRARY[param]
    pins = make(pindir, str(tmp_path))
    pins["obj"] = str(request.getfixturevalue("obj")) if "{obj}" in line else ""
    with pytest.raises(BpfmapError) as info:
        call(pins)
    err = info.value
    assert "--" not in str(err) and param in err.params and param in str(err), str(err)
    assert worded(err) == LINES[line].format(dir=pindir, tmp=tmp_path, obj=pins["obj"])


def test_dump_says_the_top_and_its_note_by_parameters(pindir, tmp_path):
    """dump()'s top refusal and its note on a sockmap's 4-byte values name parameters; the
    command line's lines (LINES) say them as options."""
    import io

    from bpfmap.cli import worded
    from bpfmap.errors import UsageError
    from bpfmap.output.dump import dump

    pins = make(pindir, str(tmp_path))
    with Map.open(pins["m"]) as m, pytest.raises(UsageError) as info:
        dump(View(m), io.StringIO(), sort="key", top=0)
    assert (str(info.value), info.value.params) == ("top must be at least 1", ("top",))
    assert worded(info.value) == LINES["dump {m} --sort key --top 0"]
    notes: list = []
    with Map.open(pins["sk"]) as m:
        assert dump(View(m), io.StringIO(), note=notes.append) == 0
    (note,) = notes
    assert "--" not in str(note) and " (make it with value_size 8 to read sockets back as cookies)" in str(note)
    assert "note: " + worded(note) == LINES["dump {sk}"].format(dir=pindir)
