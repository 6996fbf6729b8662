"""Library errors name the Python parameter (bpfmap.errors.Param), never a command-line
option; the command line words each as its option, in the very text it said before the
messages named parameters (cli.worded)."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable

import pytest

from bpfmap import hist
from bpfmap.cli import worded
from bpfmap.core.pins import check_pin_dir
from bpfmap.core.spec import MapSpec, create_fd
from bpfmap.errors import BpfmapError, KeyExists, translate
from bpfmap.export.serve import check_textfile, parse_listen
from bpfmap.filters import Age, Condition, Where
from bpfmap.layout import HexCodec, Layout, parse_hex
from bpfmap.layout.convert import Conversion, converter
from bpfmap.layout.formats import apply, parse_spec
from bpfmap.live.top import Top
from bpfmap.streams.events import RecordDecoder


def types(text: str):
    lay = Layout.parse(text)
    return lay.key.type, lay.value.type


KV = "pid=u32:n=u32,comm=char[8],ok=bool,ts=u64"
FIELDS = "(fields: key.pid, value.n, value.comm, value.ok, value.ts)"

PAGE = os.sysconf("SC_PAGE_SIZE")


def _raise(err: BaseException) -> Callable[[], object]:
    def call() -> object:
        raise err

    return call


# name: (the parameter the message names, what raises it, the command line's text of it)
CASES: dict[str, tuple[str, Callable[[], object], str]] = {
    "where grammar": (
        "where",
        lambda: Condition("pid"),
        "--where 'pid': write FIELD=VALUE, FIELD!=VALUE, FIELD~TEXT, or FIELD<N (also <=, >, >=)",
    ),
    "where order on text": (
        "where",
        lambda: Condition("pid<lots"),
        "--where 'pid<lots': < compares numbers; 'lots' is not one",
    ),
    "where no field": (
        "where",
        lambda: Condition("nope=1").check_fields(types(KV)[1]),
        "--where nope=1: no field nope in struct (fields: n, comm, ok, ts)",
    ),
    "where no order": (
        "where",
        lambda: Where(["comm>1"], *types(KV)),
        "--where comm>1: comm is char[8], which has no order; > compares number fields (use = or ~ on it)",
    ),
    "where not a number": (
        "where",
        lambda: Where(["n=abc"], *types(KV)),
        "--where n=abc: n is u32, a number; 'abc' is not one: give a number",
    ),
    "where shown number": (
        "where",
        lambda: Where(["n=ENOENTX"], *types(KV), formats=({}, {"n": "errno"})),
        "--where n=ENOENTX: n holds a number (shown as errno); 'ENOENTX' is neither a number nor a value errno shows",
    ),
    "where side": (
        "where",
        lambda: Where(["nope=1"], *types(KV)),
        f"--where nope=1: no field nope in the key or the value {FIELDS}",
    ),
    "clock": (
        "clock",
        lambda: Age("1s", "ts", "jiffies"),
        "--clock jiffies: choose one of monotonic, boottime, realtime, tai",
    ),
    "time_field not an integer": (
        "time_field",
        lambda: Where([], *types(KV), Age("1s", "comm")),
        "--time-field comm: comm is char[8], not an integer; name the field holding the timestamp in nanoseconds (a u64)",
    ),
    "time_field side": (
        "time_field",
        lambda: Where([], *types(KV), Age("1s", "nope")),
        f"--time-field nope: no field nope in the key or the value {FIELDS}",
    ),
    "hist not a number": (
        "slot_field",
        lambda: hist.build([("00 00 00 00", 1)]),
        "hist: the slot must be a number, not '00 00 00 00'; give a layout (--layout u32:u64) or pick a field "
        "(--slot NAME / --field NAME)",
    ),
    "hist slot": (
        "slot_field",
        lambda: hist.build([({"pid": 1}, 5)], slot_field="nope"),
        "hist --slot nope: the key has fields pid",
    ),
    "hist count": (
        "count_field",
        lambda: hist.build([(1, {"n": 5})], count_field="nope"),
        "hist --field nope: the value has fields n",
    ),
    "hist name one": (
        "slot_field",
        lambda: hist.build([({"name": "a"}, 5)]),
        "hist: the key has no numeric field; give --slot NAME",
    ),
    "hex size": (
        "layout",
        lambda: HexCodec(4).parse("01"),
        "1 bytes given, 4 expected; give hex bytes such as '00 00 00 00' or use --layout",
    ),
    "hex bytes": (
        "layout",
        lambda: parse_hex("1x"),
        "bad hex bytes '1x': write two hex digits per byte, e.g. '01 00 00 00' or 0x01000000 "
        "(numbers need --layout, e.g. --layout u32:u64)",
    ),
    "c header types": (
        "key_type",
        lambda: Layout.from_c("k.h"),
        "C header k.h: name the types with --key-type and/or --value-type",
    ),
    "packed": (
        "packed",
        lambda: Layout(HexCodec(4), HexCodec(8)).packed(),
        "--packed applies to --layout, not to C declarations or BTF (use __attribute__((packed)) there)",
    ),
    "listen": (
        "listen",
        lambda: parse_listen("nope"),
        "--listen 'nope': write HOST:PORT with an address or host name and ASCII digits, e.g. 127.0.0.1:9435 or [::1]:9435",
    ),
    "listen port": ("listen", lambda: parse_listen(":70000"), "--listen ':70000': port 70000 is not 1..65535"),
    "textfile empty": (
        "textfile",
        lambda: check_textfile(""),
        "--textfile: the path is empty (an unset variable?); give a file such as DIR/bpfmap.prom",
    ),
    "textfile directory": (
        "textfile",
        lambda: check_textfile("/proc/version/x.prom"),
        "--textfile /proc/version/x.prom: /proc/version is not a directory",
    ),
    "include_dirs": (
        "include_dirs",
        lambda: Layout.from_c("k.h", "unsigned int", include_dirs=["/nonexistent"]),
        "--include-dir /nonexistent: not a directory",
    ),
    "records' where": (
        "where",
        lambda: RecordDecoder(HexCodec(8), [Condition("pid=1")]),
        "--where pid=1: records need a layout (--layout, --c-header or --object)",
    ),
    "drops and sets": (
        "drops",
        lambda: converter(types("u32:s=char[8]")[1], types("u32:s=u32")[1], "value", Conversion()),
        "value.s: char[8] cannot become u32; --drop value.s and --set value.s=VALUE",
    ),
    "drops an array's end": (
        "drops",
        lambda: converter(*types("u32[4]:u32[2]"), "value", Conversion()),
        "value: u32[4] does not fit u32[2]; --drop value to keep the first 2 elements",
    ),
    "drops bytes": (
        "drops",
        lambda: converter(*types("bytes[16]:bytes[8]"), "value", Conversion()),
        "value: hex[16] does not fit hex[8]; --drop value to keep the first 8 bytes",
    ),
    "max_entries of a ring": (
        "max_entries",
        lambda: MapSpec("ringbuf", max_entries=1000).resolved(),
        f"create ringbuf: the size (--max-entries) must be a power of two and at least the page size ({PAGE}); "
        "1000 given",
    ),
    "map_extra of an arena": (
        "map_extra",
        lambda: MapSpec("arena", max_entries=1, flags="mmapable", map_extra=1).resolved(),
        "create arena: the arena's address (--map-extra) must be page-aligned",
    ),
    "key_size": (
        "key_size",
        lambda: MapSpec("hash", value_size=4).resolved(),
        "create hash: give the key size in bytes (--key N)",
    ),
    "value_size": (
        "value_size",
        lambda: MapSpec("hash", 4).resolved(),
        "create hash: give the value size in bytes (--value N)",
    ),
    "inner_map needed": (
        "inner_map",
        lambda: create_fd(MapSpec("hash_of_maps", 4, max_entries=1).resolved()),
        "create hash_of_maps: maps of maps need a template inner map (--inner-map MAP)",
    ),
    "inner_map not wanted": (
        "inner_map",
        lambda: create_fd(MapSpec("hash", 4, 4, 1).resolved(), inner_fd=99),
        "create hash: --inner-map is only for array_of_maps and hash_of_maps",
    ),
    "mkdir": (
        "mkdir",
        lambda: check_pin_dir("/nonexistent/dir", what="pin /nonexistent/dir/m"),
        "pin /nonexistent/dir/m: directory /nonexistent/dir does not exist; create it (mkdir -p /nonexistent/dir) "
        "or pass --mkdir",
    ),
    "noexist": (
        "noexist",
        _raise(
            translate("update", "/sys/fs/bpf/m", OSError(errno.EEXIST, "File exists"), detail=" (after 0 element(s))")
        ),
        "update /sys/fs/bpf/m: key already exists; drop --noexist to overwrite (after 0 element(s))",
    ),
    "top's sort": ("sort", lambda: Top(sort="nope"), "--sort 'nope': choose one of fill, entries, rate, memory, name"),
    "as grammar": ("as", lambda: parse_spec("n"), "--as 'n': write FIELD=FORMAT, e.g. saddr=ip"),
    "as size": (
        "as",
        lambda: apply(Layout.parse(KV).value, {"n": "ipv6"}),
        "--as n=ipv6: n is 4 bytes (u32), ipv6 is 16",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_the_message_names_the_parameter_and_the_command_line_its_option(name):
    param, call, cli_text = CASES[name]
    with pytest.raises(BpfmapError) as info:
        call()
    err = info.value
    assert "--" not in str(err) and param in err.params, str(err)
    assert re.search(rf"(^|\W){param}\b", str(err)), str(err)
    assert worded(err) == cli_text


def test_a_translated_error_keeps_its_class_and_errno():
    err = translate("update", "/sys/fs/bpf/m", OSError(errno.EEXIST, "File exists"), done=3)
    assert isinstance(err, KeyExists) and (err.errno, err.done) == (errno.EEXIST, 3)
    assert str(err) == err.message == "update /sys/fs/bpf/m: key already exists; drop noexist to overwrite"


def test_a_filter_describes_itself_by_its_parameters():
    w = Where(["n>1"], *types(KV), Age("1s", "ts"))
    assert str(w.describe()) == "where n>1 older_than 1s time_field ts"
    assert (
        w.describe().worded(lambda p: "--" + p.name.replace("_", "-")) == "--where n>1 --older-than 1s --time-field ts"
    )
