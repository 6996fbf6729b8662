"""The type table (bpfmap.types.SPECS) against the kernel, generated from the kernel's own
list of map types (enum bpf_map_type in /sys/kernel/btf/vmlinux): for every type this
kernel can create, ``bpfmap create TYPE`` with its defaults works, every verb ``show``
lists works on it (exit 0, or 1 for "not found"/"empty"), and every verb it does not list
is refused by bpfmap with a message naming what works (exit 2), before the kernel sees it."""

from __future__ import annotations

import os
import socket

import pytest
from helpers import kernel_map_types, run_cli

from bpfmap.types import MapType, spec

VERBS = ("lookup", "getnext", "dump", "watch", "update", "delete", "clear", "peek", "pop", "push", "events", "send")


TYPES = kernel_map_types()


class Objects:
    """What verbs on objects need: a UDP socket (sockmap values, sk_storage keys), a
    program (prog_array values), an inner map (maps of maps)."""

    def __init__(self, pindir: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.inner = os.path.join(pindir, "inner")
        assert (
            run_cli(
                "create", "array", "--key", "4", "--value", "4", "--max-entries", "1", "--pin", self.inner
            ).returncode
            == 0
        )

    @property
    def sock_ref(self) -> str:
        return f"sock:{os.getpid()}:{self.sock.fileno()}"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def objects(pindir, program):
    o = Objects(pindir)
    o.prog = f"id:{program.id}"  # type: ignore[attr-defined]
    yield o
    o.close()


def create_with_defaults(name: str, pin: str, objects: Objects) -> tuple[int, str]:
    """bpfmap create NAME --pin PIN with defaults, sizes given only where the type has
    none (the message says so) and the inner map of maps of maps."""
    extra: list[str] = []
    if name in ("array_of_maps", "hash_of_maps"):
        extra += ["--inner-map", objects.inner]
    for _ in range(3):
        r = run_cli("create", name, "--pin", pin, "-q", *extra)
        if r.returncode != 2:
            return r.returncode, r.stderr
        if "give the key size" in r.stderr:
            extra += ["--key", "8"]  # an LPM trie's key: a prefix length and 4 bytes
        elif "give the value size" in r.stderr:
            extra += ["--value", "8"]
        else:
            return r.returncode, r.stderr
    return r.returncode, r.stderr


def args_for(verb: str, name: str, pin: str, info: dict, objects: Objects) -> list[str]:
    """Arguments that make sense for VERB on a map of type NAME."""
    key_size, value_size = info["key_size"], info["value_size"]
    keys = {
        "task_storage": f"pid:{os.getpid()}",
        "cgrp_storage": "cgroup:/",
        "inode_storage": "file:/proc/self/exe",
        "sk_storage": objects.sock_ref,
        "cgroup_storage": "cgroup:/,cgroup_inet_egress",
        "percpu_cgroup_storage": "cgroup:/,cgroup_inet_egress",
    }
    indexed = spec(MapType.parse(name)).indexed
    key = keys.get(name, "0" if indexed else " ".join(["00"] * key_size))
    values = {
        "prog_array": objects.prog,  # type: ignore[attr-defined]
        "array_of_maps": objects.inner,
        "hash_of_maps": objects.inner,
        "sockmap": objects.sock_ref,
        "sockhash": objects.sock_ref,
        "reuseport_sockarray": objects.sock_ref,
        "xskmap": objects.sock_ref,
        "cgroup_array": "cgroup:/",
        "devmap": "01 00 00 00",  # the loopback device's ifindex
        "devmap_hash": "01 00 00 00",
        "cpumap": "c0 00 00 00",  # a queue of 192 frames
    }
    value = values.get(name, " ".join(["01"] * value_size) or "00")
    return {
        "lookup": ["lookup", pin, key],
        "getnext": ["getnext", pin],
        "dump": ["dump", pin],
        "watch": ["watch", pin, "--count", "1", "--interval", "0.1", "-o", "jsonl"],
        "update": ["update", pin, key, value],
        "delete": ["delete", pin, key],
        "clear": ["clear", pin, "-q"],
        "peek": ["peek", pin] + ([value] if name == "bloom_filter" else []),
        "pop": ["pop", pin],
        "push": ["push", pin, value],
        "events": ["events", pin, "--timeout", "0.1"],
        "send": ["send", pin, "01 02 03 04 05 06 07 08"],
    }[verb]


# What the kernel itself refuses for the objects this test can make (the verb reaches
# the kernel, which is what "works" means here): an AF_XDP socket needs a device.
KERNEL_REFUSES = {("xskmap", "update"): "an xskmap takes only AF_XDP sockets bound to a device"}


@pytest.mark.parametrize("name", [t[0] for t in TYPES])
def test_type_table(name, pindir, objects):
    import json

    pin = os.path.join(pindir, "m")
    code, err = create_with_defaults(name, pin, objects)
    if code != 0:
        if name in ("struct_ops", "arena") or "not support" in err or "kernel itself does not allow" in err:
            pytest.skip(f"this kernel does not create {name} maps with defaults here: {err.strip()}")
        pytest.fail(f"create {name} with defaults: exit {code}: {err}")
    info = json.loads(run_cli("show", pin, "-o", "json").stdout)
    listed = {op.split(" ")[0] for op in info["operations"]}
    for verb in VERBS:
        r = run_cli(*args_for(verb, name, pin, info, objects))
        if verb in listed:
            if (name, verb) in KERNEL_REFUSES:
                assert r.returncode == 3, (verb, r.stderr)
                continue
            assert r.returncode in (0, 1), f"{name}: '{verb}' is listed but failed: {r.returncode} {r.stderr}"
        else:
            assert r.returncode == 2, f"{name}: '{verb}' is not listed but exit {r.returncode}: {r.stderr}"
            assert "'bpfmap " in r.stderr or "programs" in r.stderr or "have no elements" in r.stderr, r.stderr
            assert "\n" not in r.stderr.strip(), r.stderr


def test_arena_is_made_or_refused_with_the_reason(pindir):
    """An arena: BPF_F_MMAPABLE, max_entries in pages, --map-extra for its address. Where
    the kernel refuses it, the message says the kernel does not allow it here, not that
    a map is read-only or frozen."""
    pin = os.path.join(pindir, "arena")
    r = run_cli("create", "arena", "--map-extra", "0x1001", "--pin", pin)
    assert r.returncode == 2 and "page-aligned" in r.stderr
    r = run_cli("create", "arena", "--max-entries", "4", "--map-extra", "0x100000000", "--pin", pin)
    assert "read-only" not in r.stderr and "frozen" not in r.stderr, r.stderr
    if r.returncode == 3:
        assert "the kernel itself does not allow this map here" in r.stderr or "not support" in r.stderr
        pytest.skip(f"this kernel does not create arenas here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    import json

    info = json.loads(run_cli("show", pin, "-o", "json").stdout)
    assert (info["type"], info["max_entries"], info["flags"]) == ("arena", 4, ["mmapable"])
    assert info["map_extra"] == 1 << 32
