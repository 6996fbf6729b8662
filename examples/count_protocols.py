#!/usr/bin/env python3
"""Count packets per IP protocol in a hash map, with a program bpfmap assembles.

The program (a socket filter) reads the IPv4 header's protocol byte with
bpf_skb_load_bytes and adds one to counts[protocol].  Instead of attaching it to a
socket, this runs it in the kernel on crafted packets with BPF_PROG_TEST_RUN, then
dumps the map.  Run as root:

    python examples/count_protocols.py [--pin /sys/fs/bpf/protocols]

With --pin the map stays for the command line: `bpfmap dump /sys/fs/bpf/protocols`.
"""

import argparse
import struct
import sys

from bpfmap import Layout, Map
from bpfmap.core.maps import Program
from bpfmap.view import View

COUNT = """
    r6 = r1                         ; the packet (struct __sk_buff *)
    r1 = 0
    *(u32 *)(r10 - 4) = r1          ; key: the protocol, as a u32
    r1 = r6
    r2 = 9                          ; offset of the protocol in the IPv4 header
    r3 = r10
    r3 += -4
    r4 = 1
    call skb_load_bytes
    if r0 != 0 goto out             ; too short: not counted
    r1 = map[counts]
    r2 = r10
    r2 += -4
    call map_lookup_elem
    if r0 == 0 goto first
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1     ; seen before: add one, atomically
    goto out
first:
    r1 = 1
    *(u64 *)(r10 - 16) = r1
    r1 = map[counts]
    r2 = r10
    r2 += -4
    r3 = r10
    r3 += -16
    r4 = 0                          ; BPF_ANY
    call map_update_elem
out:
    r0 = 0                          ; a socket filter's verdict: keep 0 bytes
    exit
"""

NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp"}


def packet(proto: int, payload: bytes = b"") -> bytes:
    """An Ethernet frame with an IPv4 header carrying ``proto``."""
    eth = bytes(6) + bytes(6) + struct.pack("!H", 0x0800)
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    )
    return eth + ip + payload


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pin", help="also pin the map here (on a bpffs)")
    args = ap.parse_args()
    with Map.create("hash", 4, 8, 256, name="protocols") as counts:
        prog = Program.load("socket_filter", COUNT, {"counts": counts}, name="count_protocols")
        with prog:
            for proto in [6, 6, 17, 6, 1, 17, 132]:
                prog.test_run(packet(proto, b"x" * 8))
        if args.pin:
            counts.pin(args.pin)
        view = View(counts, Layout.parse("u32:u64"))
        print(f"{'protocol':<10} {'packets':>7}")
        for proto, n in sorted(view.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"{NAMES.get(proto, str(proto)):<10} {n:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
