"""Listing a socket-storage map (sk_storage) through the kernel's ``bpf_sk_storage_map``
BPF iterator: the only way to find the sockets a map holds values for.

A small iterator program (assembled with bpfmap.core.asm, field offsets from the kernel's own
BTF) writes, for every socket with a value, a fixed record describing the socket (its
cookie, inode, family, protocol, state, ports and addresses) and then the value; it is
attached with BPF_LINK_CREATE over the map and read through BPF_ITER_CREATE.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

from .. import _sys
from ..errors import Unsupported, UsageError, translate
from ..layout import Codec
from .asm import assemble
from .program import ProgType

RECORD = struct.Struct(
    "<QQHHHHB3x4s4s16s16s4x"
)  # cookie, ino, family, sport, dport(be), proto, state, src4, dst4, src6, dst6
RECORD_SIZE = 72
assert RECORD.size == RECORD_SIZE

TCP_STATES = {
    1: "established",
    2: "syn_sent",
    3: "syn_recv",
    4: "fin_wait1",
    5: "fin_wait2",
    6: "time_wait",
    7: "close",
    8: "close_wait",
    9: "last_ack",
    10: "listen",
    11: "closing",
    12: "new_syn_recv",
}
FAMILIES = {socket.AF_INET: "inet", socket.AF_INET6: "inet6", socket.AF_UNIX: "unix"}
PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp", 262: "mptcp", 1: "icmp", 58: "icmpv6"}


def _offset(btf: Any, struct_name: str, path: list[str]) -> int:
    """Byte offset of ``path`` (member names, looked up through anonymous members) in
    ``struct struct_name`` of the kernel's BTF."""
    from ..btf.wire import Kind

    t = btf.find(struct_name, Kind.STRUCT)
    off = 0
    for name in path:
        found = _member(btf, t, name)
        if found is None:
            raise Unsupported(f"this kernel's struct {t.name} has no member {name}; cannot list sockets")
        member_off, tid = found
        off += member_off
        t = btf.resolve(tid)
    return off


def _member(btf: Any, t: Any, name: str) -> tuple[int, int] | None:
    from ..btf.wire import Kind

    for m in t.members:
        if m.name == name:
            return m.bit_offset // 8, m.type
        if not m.name:
            inner = btf.resolve(m.type)
            if inner.kind in (Kind.STRUCT, Kind.UNION):
                found = _member(btf, inner, name)
                if found is not None:
                    return m.bit_offset // 8 + found[0], found[1]
    return None


def program(value_size: int) -> tuple[bytes, int]:
    """The iterator program for values of ``value_size`` bytes, and the BTF id of its
    attach target."""
    from ..btf.wire import Kind, vmlinux

    btf = vmlinux()
    o = {
        "family": _offset(btf, "sock_common", ["skc_family"]),
        "state": _offset(btf, "sock_common", ["skc_state"]),
        "num": _offset(btf, "sock_common", ["skc_num"]),
        "dport": _offset(btf, "sock_common", ["skc_dport"]),
        "saddr": _offset(btf, "sock_common", ["skc_rcv_saddr"]),
        "daddr": _offset(btf, "sock_common", ["skc_daddr"]),
        "saddr6": _offset(btf, "sock_common", ["skc_v6_rcv_saddr"]),
        "daddr6": _offset(btf, "sock_common", ["skc_v6_daddr"]),
        "protocol": _offset(btf, "sock", ["sk_protocol"]),
        "socket": _offset(btf, "sock", ["sk_socket"]),
        "file": _offset(btf, "socket", ["file"]),
        "inode": _offset(btf, "file", ["f_inode"]),
        "ino": _offset(btf, "inode", ["i_ino"]),
    }
    v6 = []
    for i in range(4):
        v6 += [
            f"r1 = *(u32 *)(r7 + {o['saddr6'] + 4 * i})",
            f"*(u32 *)(r10 - {36 - 4 * i}) = r1",
            f"r1 = *(u32 *)(r7 + {o['daddr6'] + 4 * i})",
            f"*(u32 *)(r10 - {20 - 4 * i}) = r1",
        ]
    zero = [f"*(u64 *)(r10 - {8 * i}) = r1" for i in range(1, 10)]
    text = "\n".join(
        [
            "r6 = r1",
            "r7 = *(u64 *)(r6 + 16)  ; the socket",
            "if r7 == 0 goto out",
            "r8 = *(u64 *)(r6 + 24)  ; its value",
            "if r8 == 0 goto out",
            "r1 = 0",
            *zero,
            "r1 = r7",
            "call get_socket_cookie",
            "*(u64 *)(r10 - 72) = r0",
            f"r1 = *(u64 *)(r7 + {o['socket']})",
            f"r1 = *(u64 *)(r1 + {o['file']})",
            f"r1 = *(u64 *)(r1 + {o['inode']})",
            f"r1 = *(u64 *)(r1 + {o['ino']})",
            "*(u64 *)(r10 - 64) = r1",
            f"r1 = *(u16 *)(r7 + {o['family']})",
            "*(u16 *)(r10 - 56) = r1",
            f"r1 = *(u16 *)(r7 + {o['num']})",
            "*(u16 *)(r10 - 54) = r1",
            f"r1 = *(u16 *)(r7 + {o['dport']})",
            "*(u16 *)(r10 - 52) = r1",
            f"r1 = *(u16 *)(r7 + {o['protocol']})",
            "*(u16 *)(r10 - 50) = r1",
            f"r1 = *(u8 *)(r7 + {o['state']})",
            "*(u8 *)(r10 - 48) = r1",
            f"r1 = *(u32 *)(r7 + {o['saddr']})",
            "*(u32 *)(r10 - 44) = r1",
            f"r1 = *(u32 *)(r7 + {o['daddr']})",
            "*(u32 *)(r10 - 40) = r1",
            *v6,
            "r1 = *(u64 *)(r6 + 0)  ; meta",
            "r1 = *(u64 *)(r1 + 0)  ; meta->seq",
            "r9 = r1",
            "r2 = r10",
            f"r2 += -{RECORD_SIZE}",
            f"r3 = {RECORD_SIZE}",
            "call seq_write",
            "r1 = r9",
            "r2 = r8",
            f"r3 = {value_size}",
            "call seq_write",
            "out:",
            "r0 = 0",
            "exit",
        ]
    )
    target = btf.find("bpf_iter_bpf_sk_storage_map", Kind.FUNC).id
    return assemble(text), target


def walk_sockets(m: Any, size: int = 256) -> Iterator[tuple[bytes, bytes, int]]:
    """Raw (keys, values, count) batches of an sk_storage map: keys are RECORD_SIZE-byte
    socket records (see :class:`SocketKey`).  Through the kernel's iterator; where the
    kernel refuses it, by trying every socket a process holds (``m.walk_note`` then says
    so: sockets no process holds are missed)."""
    try:
        prog = load_iterator(m)
    except Unsupported as err:
        m.walk_note = (
            f"{err}; listed the sockets processes hold instead (/proc/PID/fd), so sockets "
            f"no process holds are not shown"
        )
        yield from _by_fds(m, size)
        return
    yield from _iterate(m, prog, size)


def load_iterator(m: Any) -> int:
    """The iterator program for ``m``'s values, loaded; Unsupported when the kernel
    refuses it (no BTF for the target, an old kernel, or a policy: EPERM)."""
    try:
        insns, target = program(m.value_size)
    except (OSError, KeyError) as err:
        raise Unsupported(f"this kernel has no BTF for the bpf_sk_storage_map iterator ({err})") from None
    try:
        return _sys.prog_load(
            ProgType.TRACING,
            insns,
            b"GPL\0",
            b"bpfmap_sk_iter",
            log_level=1,
            log_size=1 << 20,
            expected_attach_type=_sys.attrs.BPF_TRACE_ITER,
            attach_btf_id=target,
        )
    except OSError as err:
        log = getattr(err, "log", "").strip().splitlines()
        said = [
            line for line in log if not line.startswith(("processed ", "verification time", "stack depth", "func#"))
        ]
        why = said[-1] if said else errno.errorcode.get(err.errno or 0, str(err.errno))
        raise Unsupported(f"the kernel refused the bpf_sk_storage_map iterator program ({why})", err.errno) from None


def _iterate(m: Any, prog: int, size: int) -> Iterator[tuple[bytes, bytes, int]]:
    link = it = -1
    try:
        try:
            link = _sys.iter_link(prog, m.fileno())
            it = _sys.iter_create(link)
        except OSError as err:
            raise translate("dump", m.ref, err, "(attaching the socket iterator)") from err
        stride = RECORD_SIZE + m.value_size
        pending = b""
        while True:
            try:
                chunk = os.read(it, 1 << 16)
            except OSError as err:
                raise translate("dump", m.ref, err, "(reading the socket iterator)") from err
            if not chunk:
                break
            pending += chunk
            n = len(pending) // stride
            for start in range(0, n, size):
                k = min(size, n - start)
                rows = [pending[(start + i) * stride : (start + i + 1) * stride] for i in range(k)]
                yield b"".join(r[:RECORD_SIZE] for r in rows), b"".join(r[RECORD_SIZE:] for r in rows), k
            pending = pending[n * stride :]
    finally:
        for fd in (it, link, prog):
            if fd >= 0:
                os.close(fd)


def _by_fds(m: Any, size: int) -> Iterator[tuple[bytes, bytes, int]]:
    """Every socket some process holds (each once, by inode), taken with pidfd_getfd and
    looked up in ``m``; its record made from user space (getsockopt, getsockname)."""
    vbuf = _sys.buffer(m.value_size)
    seen: set[int] = set()
    keys: list[bytes] = []
    values: list[bytes] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            fds = [(int(f.name), os.readlink(f.path)) for f in os.scandir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        socks = [(fd, int(link[8:-1])) for fd, link in fds if link.startswith("socket:[")]
        socks = [(fd, ino) for fd, ino in socks if ino not in seen]
        if not socks:
            continue
        try:
            pfd = _sys.pidfd_open(pid, False)
        except OSError:
            continue
        try:
            for target, ino in socks:
                try:
                    fd = _sys.pidfd_getfd(pfd, target)
                except OSError:
                    continue
                try:
                    _sys.map_elem(_sys.Cmd.MAP_LOOKUP_ELEM, m.fileno(), _sys.buffer(struct.pack("<i", fd)), vbuf)
                except OSError as err:
                    if err.errno in (errno.ENOENT, errno.EBADF, errno.EOPNOTSUPP, errno.EINVAL):
                        continue
                    raise translate("dump", m.ref, err) from err
                else:
                    seen.add(ino)
                    keys.append(_record(fd, ino))
                    values.append(vbuf.raw)
                finally:
                    os.close(fd)
                if len(keys) >= size:
                    yield b"".join(keys), b"".join(values), len(keys)
                    keys, values = [], []
        finally:
            os.close(pfd)
    if keys:
        yield b"".join(keys), b"".join(values), len(keys)


def _record(fd: int, ino: int) -> bytes:
    """The RECORD of the socket ``fd`` (this process's), as the iterator program writes it."""
    s = socket.socket(fileno=os.dup(fd))
    try:
        family = s.family
        proto = s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)
        cookie = int.from_bytes(s.getsockopt(socket.SOL_SOCKET, 57, 8), "little")  # SO_COOKIE
        state = 0
        src4 = dst4 = bytes(4)
        src6 = dst6 = bytes(16)
        sport = dport = 0
        if family in (socket.AF_INET, socket.AF_INET6):
            if proto == socket.IPPROTO_TCP:
                state = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
            here = s.getsockname()
            try:
                there = s.getpeername()
            except OSError:
                there = ("0.0.0.0" if family == socket.AF_INET else "::", 0)
            packed_here = socket.inet_pton(family, here[0])
            packed_there = socket.inet_pton(family, there[0])
            if family == socket.AF_INET:
                src4, dst4 = packed_here, packed_there
            else:
                src6, dst6 = packed_here, packed_there
            sport, dport = here[1], socket.htons(there[1])
        return RECORD.pack(cookie, ino, family, sport, dport, proto, state, src4, dst4, src6, dst6)
    finally:
        s.close()


class SocketKey(Codec):
    """A socket as a dump of sk_storage shows it: ``{"family": "inet", "protocol":
    "tcp", "state": "listen", "src": "127.0.0.1", "sport": 8080, "dst": "0.0.0.0",
    "dport": 0, "inode": 1234, "cookie": 4097}`` (``state`` null but for TCP; other
    families: family, inode and cookie)."""

    size = RECORD_SIZE

    def decode(self, data: bytes) -> dict[str, Any]:
        cookie, ino, family, sport, dport, proto, state, src4, dst4, src6, dst6 = RECORD.unpack(data)
        out: dict[str, Any] = {"family": FAMILIES.get(family, family)}
        if family in (socket.AF_INET, socket.AF_INET6):
            v6 = family == socket.AF_INET6
            out["protocol"] = PROTOCOLS.get(proto, proto)
            out["state"] = TCP_STATES.get(state, state) if proto == socket.IPPROTO_TCP else None
            out["src"] = socket.inet_ntop(family, src6 if v6 else src4)
            out["sport"] = sport
            out["dst"] = socket.inet_ntop(family, dst6 if v6 else dst4)
            out["dport"] = socket.ntohs(dport)
        out["inode"] = ino
        out["cookie"] = cookie
        return out

    def encode(self, value: Any) -> bytes:
        raise UsageError("give a socket as sock:PID:FD (the socket process PID holds as FD)")

    def parse(self, text: str) -> bytes:
        return self.encode(text)
