"""Loaded BPF programs, held by fd: what prog_array values point to, and what tests run."""

from __future__ import annotations

import enum
import errno
from typing import Any

from .. import _sys
from ..errors import UsageError, VerifierRejected, WrongObjectType, translate
from .fd import FdOwner
from .info import parse_id
from .pins import open_pinned


class ProgType(enum.IntEnum):
    """enum bpf_prog_type (Linux 6.1 uapi; newer types load by number): here, beside the
    programs, not in bpfmap.types, whose enums every command builds at start-up."""

    UNSPEC = 0
    SOCKET_FILTER = 1
    KPROBE = 2
    SCHED_CLS = 3
    SCHED_ACT = 4
    TRACEPOINT = 5
    XDP = 6
    PERF_EVENT = 7
    CGROUP_SKB = 8
    CGROUP_SOCK = 9
    LWT_IN = 10
    LWT_OUT = 11
    LWT_XMIT = 12
    SOCK_OPS = 13
    SK_SKB = 14
    CGROUP_DEVICE = 15
    SK_MSG = 16
    RAW_TRACEPOINT = 17
    CGROUP_SOCK_ADDR = 18
    LWT_SEG6LOCAL = 19
    LIRC_MODE2 = 20
    SK_REUSEPORT = 21
    FLOW_DISSECTOR = 22
    CGROUP_SYSCTL = 23
    RAW_TRACEPOINT_WRITABLE = 24
    CGROUP_SOCKOPT = 25
    TRACING = 26
    STRUCT_OPS = 27
    EXT = 28
    LSM = 29
    SK_LOOKUP = 30
    SYSCALL = 31


class Program(FdOwner):
    """A loaded BPF program, held by fd: what prog_array values point to."""

    def __init__(self, fd: int, ref: str) -> None:
        self._fd = fd
        self.ref = ref
        self.id = _sys.prog_info(fd).id

    @classmethod
    def open(cls, ref: str) -> Program:
        """Open a program by pinned path or ``id:N``."""
        if ref.startswith("id:"):
            try:
                fd = _sys.get_fd_by_id(_sys.Cmd.PROG_GET_FD_BY_ID, parse_id(ref))
            except OSError as err:
                raise translate("open program", ref, err) from err
            return cls(fd, ref)
        if ref.startswith("name:"):
            raise UsageError(f"open program {ref}: programs are given as a pin path or id:N")
        return cls(open_pinned(ref, "prog"), ref)

    @classmethod
    def from_fd(cls, fd: int, ref: str = "") -> Program:
        if _sys.fd_kind(fd) != "prog":
            raise WrongObjectType(f"{ref or fd}: not a program", errno.EINVAL)
        return cls(fd, ref or f"fd:{fd}")

    @classmethod
    def load(
        cls,
        prog_type: str | int,
        code: str | bytes,
        maps: dict[str, Any] | None = None,
        name: str = "",
        license: str = "GPL",
        attach_type: int = 0,
        attach_btf_id: int = 0,
    ) -> Program:
        """Load a program: ``code`` is eBPF assembly (see bpfmap.core.asm) or instructions
        (bytes); ``maps`` names the maps ``map[NAME]`` refers to.  ``prog_type`` is a
        name (``socket_filter``, ``xdp``, ``raw_tracepoint``...) or a number.  Raises
        AsmError (bad assembly), VerifierRejected (with the verifier's log) or the
        usual KernelError subclasses.  ``attach_type`` is the expected attach type (enum
        bpf_attach_type), ``attach_btf_id`` the kernel BTF id of the target (tracing and
        iterator programs)."""
        from .asm import assemble

        ptype = _prog_type(prog_type)
        insns = assemble(code, maps) if isinstance(code, str) else bytes(code)
        if not insns or len(insns) % 8:
            raise UsageError(f"load program: {len(insns)} bytes of instructions; give whole 8-byte instructions")
        what = f"load {ptype.name.lower()} program{' ' + name if name else ''}"
        try:
            fd = _sys.prog_load(
                ptype,
                insns,
                license.encode() + b"\0",
                name.encode()[:15],
                log_level=1,
                log_size=1 << 20,
                expected_attach_type=attach_type,
                attach_btf_id=attach_btf_id,
            )
        except _sys.VerifierError as err:
            log = err.log.strip()
            if err.errno == errno.EACCES and log or err.errno == errno.EINVAL and log:
                tail = " / ".join(log.splitlines()[-3:])
                raise VerifierRejected(f"{what}: the verifier refused it: {tail}", err.errno, log) from None
            raise translate("load program", name, err) from None
        except OSError as err:
            raise translate("load program", name, err) from err
        return cls(fd, f"prog:{name or fd}")

    def test_run(
        self, data: bytes = b"", repeat: int = 1, data_out: int = 0, ctx: bytes = b"", cpu: int | None = None
    ) -> tuple[int, bytes]:
        """Run the program in the kernel with BPF_PROG_TEST_RUN (Linux 4.12+) on a packet
        ``data`` (socket filter, tc, xdp) or a context ``ctx``; returns (return value,
        data out).  ``cpu`` runs it on that CPU (raw_tracepoint programs only)."""
        flags = 0 if cpu is None else _sys.attrs.BPF_F_TEST_RUN_ON_CPU
        if repeat == 1 and _sys.prog_info(self.fileno()).type in _RUN_ONCE:
            repeat = 0  # these run once and refuse a repeat count
        try:
            retval, out, _ = _sys.prog_test_run(self.fileno(), data, data_out, ctx, repeat, flags, cpu or 0)
        except OSError as err:
            raise translate("test run", self.ref, err) from err
        return retval, out


_RUN_ONCE = (ProgType.RAW_TRACEPOINT, ProgType.RAW_TRACEPOINT_WRITABLE)


def _prog_type(value: str | int) -> ProgType:
    if isinstance(value, int):
        return ProgType(value)
    try:
        return ProgType[value.upper().replace("-", "_")]
    except KeyError:
        names = ", ".join(t.name.lower() for t in ProgType if t.value)
        raise UsageError(f"program type {value!r}: choose one of {names}") from None
