"""The command line says each parameter a library message names as its option, in the very
line it said before the library's messages named parameters: the whole stderr line of each
refusal, exit code 2."""

from __future__ import annotations

import os
import shlex
import struct

import pytest

from bpfmap import Map
from bpfmap.layout import Layout

pytestmark = pytest.mark.kernel

KV = "pid=u32:n=u32,comm=char[8],ok=bool,ts=u64"
L = f"--layout {KV}"
FIELDS = "(fields: key.pid, value.n, value.comm, value.ok, value.ts)"


def make(directory: str) -> str:
    """A hash map of one entry whose value is KV's, pinned at DIRECTORY/m."""
    pin = os.path.join(directory, "m")
    size = Layout.parse(KV).value.size
    with Map.create("hash", 4, size, max_entries=8) as m:
        m.update(struct.pack("I", 1), bytes(size))
        m.pin(pin)
    return pin


# The command line ({pin}: the map make() pinned; {dir}: its directory) -> its stderr.
LINES = {
    f"dump {{pin}} {L} --where pid": "--where 'pid': write FIELD=VALUE, FIELD!=VALUE, FIELD~TEXT, or FIELD<N (also <=, >, >=)",
    f"dump {{pin}} {L} --where 'pid<lots'": "--where 'pid<lots': < compares numbers; 'lots' is not one",
    f"dump {{pin}} {L} --where 'comm>1'": (
        "--where comm>1: comm is char[8], which has no order; > compares number fields (use = or ~ on it)"
    ),
    f"count {{pin}} {L} --where n=abc": "--where n=abc: n is u32, a number; 'abc' is not one: give a number",
    f"dump {{pin}} {L} --as n=errno --where n=ENOENTX": (
        "--where n=ENOENTX: n holds a number (shown as errno); 'ENOENTX' is neither a number nor a value errno shows"
    ),
    f"delete {{pin}} {L} --where nope=1": f"--where nope=1: no field nope in the key or the value {FIELDS}",
    f"dump {{pin}} {L} --older-than 1s --time-field ts --clock jiffies": (
        "--clock jiffies: choose one of monotonic, boottime, realtime, tai"
    ),
    f"dump {{pin}} {L} --older-than 1s --time-field comm": (
        "--time-field comm: comm is char[8], not an integer; name the field holding the timestamp in nanoseconds (a u64)"
    ),
    f"dump {{pin}} {L} --older-than 1s --time-field nope": (
        f"--time-field nope: no field nope in the key or the value {FIELDS}"
    ),
}


def argv(line: str, pin: str) -> list[str]:
    return [a.format(pin=pin, dir=os.path.dirname(pin)) for a in shlex.split(line)]


@pytest.mark.parametrize("line", LINES)
def test_the_refusal_names_the_option(line, pindir, bm):
    code, out, err = bm(*argv(line, make(pindir)))
    assert (code, out, err) == (2, "", f"bpfmap: {LINES[line].format(dir=pindir)}\n")
