"""The .kconfig map's bytes, as libbpf fills them from the machine it runs on: what
``__kconfig`` externs read (LINUX_KERNEL_VERSION from uname, CONFIG_* from the running
kernel's config).  Read when a map is created, never when an object is read."""

from __future__ import annotations

import gzip
import os
import re

from ..btf.wire import BTF, BtfType, Kind


def kconfig_values(btf: BTF, sec: BtfType) -> bytes:
    """The .kconfig map's bytes as libbpf fills them: LINUX_KERNEL_VERSION from uname,
    CONFIG_* from the running kernel's config (/proc/config.gz or /boot/config-RELEASE):
    bools and tristates (``enum libbpf_tristate``: n 0, y 1, m 2), integers and char
    arrays; an option the kernel does not set reads 0 (n)."""
    config = _kernel_config()
    buf = bytearray(sec.size)
    for m in sec.members:
        var = btf.type(m.type)
        if var.kind != Kind.VAR:
            continue
        off, size = m.bit_offset // 8, m.bit_size
        t = btf.resolve(var.type)
        name = var.name
        if name == "LINUX_KERNEL_VERSION":
            major, minor, patch = (list(map(int, _release_numbers())) + [0, 0, 0])[:3]
            value: int | bytes = (major << 16) + (minor << 8) + min(patch, 255)
        elif name.startswith("CONFIG_"):
            raw = config.get(name)
            if raw is None:
                continue  # an option this kernel does not set reads 0 (n), as a __weak extern does
            value = _kconfig_value(t, raw)
        else:
            continue  # other LINUX_* externs: 0, as on a kernel without them
        if isinstance(value, bytes):
            buf[off : off + size] = value[:size].ljust(size, b"\0")
        else:
            buf[off : off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    return bytes(buf)


def _release_numbers() -> list[str]:
    return re.findall(r"\d+", os.uname().release.split("-")[0])[:3]


def _kconfig_value(t: BtfType, raw: str) -> int | bytes:
    if t.kind == Kind.ARRAY:
        return raw.strip('"').encode()
    if t.kind == Kind.ENUM and t.name == "libbpf_tristate":
        return {"y": 1, "m": 2}.get(raw, 0)
    if raw in ("y", "m", "n"):
        return {"y": 1, "m": 1 if t.size == 1 else 2}.get(raw, 0)
    try:
        return int(raw, 0)
    except ValueError:
        return 0


def _kernel_config() -> dict[str, str]:
    """CONFIG_NAME -> its value text, from /proc/config.gz or /boot/config-RELEASE (empty
    when neither is there)."""
    text = ""
    try:
        with gzip.open("/proc/config.gz", "rt", errors="replace") as f:
            text = f.read()
    except OSError:
        try:
            with open(f"/boot/config-{os.uname().release}", errors="replace") as f:
                text = f.read()
        except OSError:
            return {}
    out = {}
    for line in text.splitlines():
        name, eq, value = line.partition("=")
        if eq and name.startswith("CONFIG_"):
            out[name] = value
    return out
