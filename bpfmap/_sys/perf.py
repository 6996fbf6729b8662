"""perf_event_open(2) for BPF output events (what bpf_perf_event_output writes to), and
the constants of the perf ring buffer's layout (linux/perf_event.h)."""

from __future__ import annotations

import ctypes
import fcntl
import os
from ctypes import c_int32, c_uint16, c_uint32, c_uint64

# __NR_perf_event_open per architecture
_NR_PERF_EVENT_OPEN = {
    "x86_64": 298,
    "aarch64": 241,
    "arm64": 241,
    "riscv64": 241,
    "loongarch64": 241,
    "s390x": 331,
    "ppc64le": 319,
    "i686": 336,
    "armv7l": 364,
}

PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401

PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9

# struct perf_event_mmap_page: where the ring's positions live in the first page
MMAP_DATA_HEAD = 1024
MMAP_DATA_TAIL = 1032
MMAP_DATA_OFFSET = 1040
MMAP_DATA_SIZE = 1048


class PerfEventAttr(ctypes.Structure):
    """struct perf_event_attr up to ``sig_data`` (PERF_ATTR_SIZE_VER7, 128 bytes)."""

    _fields_ = [
        ("type", c_uint32),
        ("size", c_uint32),
        ("config", c_uint64),
        ("sample_period", c_uint64),
        ("sample_type", c_uint64),
        ("read_format", c_uint64),
        ("flags", c_uint64),  # disabled:1, inherit:1, ... (bit fields)
        ("wakeup_events", c_uint32),
        ("bp_type", c_uint32),
        ("config1", c_uint64),
        ("config2", c_uint64),
        ("branch_sample_type", c_uint64),
        ("sample_regs_user", c_uint64),
        ("sample_stack_user", c_uint32),
        ("clockid", c_int32),
        ("sample_regs_intr", c_uint64),
        ("aux_watermark", c_uint32),
        ("sample_max_stack", c_uint16),
        ("_reserved_2", c_uint16),
        ("aux_sample_size", c_uint32),
        ("_reserved_3", c_uint32),
        ("sig_data", c_uint64),
    ]


# a function object of our own: syscall.py fixes argtypes on its copy for bpf(2)
_syscall = ctypes.CDLL(None, use_errno=True).syscall
_syscall.restype = ctypes.c_long


def perf_event_open_bpf_output(cpu: int, wakeup_events: int = 1) -> int:
    """A PERF_COUNT_SW_BPF_OUTPUT event on ``cpu`` (any process), enabled, its samples
    carrying the raw bytes a program passes to bpf_perf_event_output; returns the fd."""
    nr = _NR_PERF_EVENT_OPEN.get(os.uname().machine)
    if nr is None:
        raise OSError(f"bpfmap does not know perf_event_open's number on {os.uname().machine}")
    attr = PerfEventAttr(
        type=PERF_TYPE_SOFTWARE,
        size=ctypes.sizeof(PerfEventAttr),
        config=PERF_COUNT_SW_BPF_OUTPUT,
        sample_period=1,
        sample_type=PERF_SAMPLE_RAW,
        wakeup_events=wakeup_events,
    )
    fd: int = _syscall(
        ctypes.c_long(nr),
        ctypes.byref(attr),
        ctypes.c_int(-1),
        ctypes.c_int(cpu),
        ctypes.c_int(-1),
        ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    try:
        fcntl.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)
    except OSError:
        os.close(fd)
        raise
    return fd
