"""Instruction addresses to names: kernel addresses through /proc/kallsyms (modules too),
user addresses of a process through /proc/PID/maps and the mapped files' ELF symbol
tables (.symtab, else .dynsym; PIE and shared-library load bias handled).

Tables are read once per process (per file for user space) and looked up by bisection,
so symbolizing many frames costs a ``bisect`` each.  A frame is a dict::

    {"addr": 18446744071582..., "symbol": "do_sys_openat2", "offset": 33, "module": null}

``symbol`` is ``[unknown]`` where nothing is known; a user frame names its file as
``module`` (``libc.so.6``) and, without a symbol there, is ``[unknown]`` with the offset in
that file.
"""

from __future__ import annotations

import bisect
import os
from typing import Any

UNKNOWN = "[unknown]"

_kernel: KernelSymbols | None = None


class KernelSymbols:
    """/proc/kallsyms, sorted: text symbols of the kernel and its modules."""

    def __init__(self, path: str | None = "/proc/kallsyms") -> None:
        rows: list[tuple[int, str, str | None]] = []
        try:
            with open(path or os.devnull, encoding="utf-8", errors="replace") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) < 3 or parts[1] not in "tTwW":
                        continue
                    addr = int(parts[0], 16)
                    if addr:
                        module = parts[3][1:-1] if len(parts) > 3 and parts[3].startswith("[") else None
                        rows.append((addr, parts[2], module))
        except OSError:
            pass
        self._table(rows)

    @classmethod
    def from_rows(cls, rows: list[tuple[int, str, str | None]]) -> KernelSymbols:
        """A table of (address, name, module) rows (a saved file's: the symbols that name
        the addresses it holds, which answer for those as the whole table did)."""
        ks = cls(None)
        ks._table(rows)
        return ks

    def _table(self, rows: list[tuple[int, str, str | None]]) -> None:
        rows.sort(key=lambda r: r[0])
        self.addrs = [r[0] for r in rows]
        self.names = [r[1] for r in rows]
        self.modules = [r[2] for r in rows]
        self._by_name: dict[str, int] | None = None

    def __bool__(self) -> bool:
        return bool(self.addrs)

    def frame(self, addr: int) -> dict[str, Any]:
        i = bisect.bisect_right(self.addrs, addr) - 1
        if i < 0 or addr <= 0:
            return {"addr": addr, "symbol": UNKNOWN, "offset": None, "module": None}
        return {"addr": addr, "symbol": self.names[i], "offset": addr - self.addrs[i], "module": self.modules[i]}

    def address(self, name: str) -> int | None:
        """The address of text symbol ``name`` (the first, when several share it)."""
        if self._by_name is None:
            by_name: dict[str, int] = {}
            for a, n in zip(self.addrs, self.names):
                by_name.setdefault(n, a)
            self._by_name = by_name
        return self._by_name.get(name)


def kernel() -> KernelSymbols:
    """The kernel's symbols, read once per process."""
    global _kernel
    if _kernel is None:
        _kernel = KernelSymbols()
    return _kernel


class ElfSymbols:
    """One ELF file's function symbols and loadable segments."""

    def __init__(self, path: str) -> None:
        from elftools.elf.elffile import ELFFile

        self.segments: list[tuple[int, int, int]] = []  # (file offset, size, vaddr)
        pairs: list[tuple[int, int, str]] = []
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_LOAD":
                    self.segments.append((seg["p_offset"], seg["p_filesz"], seg["p_vaddr"]))
            for name in (".symtab", ".dynsym"):
                sec: Any = elf.get_section_by_name(name)
                if sec is None:
                    continue
                for sym in sec.iter_symbols():
                    if sym["st_info"]["type"] in ("STT_FUNC", "STT_GNU_IFUNC") and sym["st_value"] and sym.name:
                        pairs.append((sym["st_value"], sym["st_size"], sym.name))
                if pairs:
                    break  # .symtab has all of .dynsym's
        pairs.sort()
        self.starts = [p[0] for p in pairs]
        self.sizes = [p[1] for p in pairs]
        self.names = [p[2] for p in pairs]

    def vaddr(self, file_offset: int) -> int | None:
        for off, size, vaddr in self.segments:
            if off <= file_offset < off + max(size, 1):
                return vaddr + file_offset - off
        return None

    def lookup(self, vaddr: int) -> tuple[str, int] | None:
        i = bisect.bisect_right(self.starts, vaddr) - 1
        if i < 0:
            return None
        start, size = self.starts[i], self.sizes[i]
        if size and vaddr >= start + size:
            return None  # past the end of the nearest function: not in any
        return self.names[i], vaddr - start


_elf_cache: dict[tuple[int, int, float], ElfSymbols | None] = {}


def _elf(path: str) -> ElfSymbols | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_dev, st.st_ino, st.st_mtime)
    if key not in _elf_cache:
        try:
            _elf_cache[key] = ElfSymbols(path)
        except Exception:  # noqa: BLE001 - not an ELF file (a JIT's memory, a data file)
            _elf_cache[key] = None
    return _elf_cache[key]


class ProcessSymbols:
    """A process's user-space addresses, through its memory maps (read when made: a
    process that has exited gives ``[unknown]`` frames and ``gone`` set)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.gone = False
        self.maps: list[tuple[int, int, int, str]] = []  # (start, end, file offset, path)
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
                for line in f:
                    parts = line.split(None, 5)
                    if len(parts) < 6 or not parts[5].startswith("/"):
                        continue
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    self.maps.append((lo, hi, int(parts[2], 16), parts[5].rstrip("\n")))
        except OSError:
            self.gone = True
        self.maps.sort()
        self._starts = [m[0] for m in self.maps]
        self._elves: dict[int, ElfSymbols | None] = {}  # map index -> its file's symbols

    def frame(self, addr: int) -> dict[str, Any]:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0 or addr >= self.maps[i][1]:
            return {"addr": addr, "symbol": UNKNOWN, "offset": None, "module": None}
        lo, hi, off, path = self.maps[i]
        file_off = addr - lo + off
        module = os.path.basename(path.removesuffix(" (deleted)"))
        if i not in self._elves:
            self._elves[i] = _elf(f"/proc/{self.pid}/map_files/{lo:x}-{hi:x}") or _elf(path)
        elf = self._elves[i]
        if elf is not None:
            vaddr = elf.vaddr(file_off)
            found = elf.lookup(vaddr) if vaddr is not None else None
            if found is not None:
                return {"addr": addr, "symbol": found[0], "offset": found[1], "module": module}
        return {"addr": addr, "symbol": UNKNOWN, "offset": file_off, "module": module}


_processes: dict[int, ProcessSymbols] = {}


def process(pid: int) -> ProcessSymbols:
    """A process's symbols, read once per process of ours."""
    p = _processes.get(pid)
    if p is None:
        p = _processes[pid] = ProcessSymbols(pid)
    return p


def frame_text(frame: dict[str, Any], kernel: bool = False) -> str:
    """``symbol+0xOFF`` (``symbol+0xOFF [module]`` for a kernel module's; a user frame
    without a symbol as ``module+0xOFF``)."""
    sym, off, module = frame["symbol"], frame.get("offset"), frame.get("module")
    if sym == UNKNOWN:
        if module is not None and off is not None:
            return f"{module}+{off:#x}"
        return f"{UNKNOWN} {frame['addr']:#x}" if frame.get("addr") else UNKNOWN
    text = f"{sym}+{off:#x}" if off else sym
    return f"{text} [{module}]" if module and kernel else text


def is_kernel(addr: int) -> bool:
    """A kernel address (the upper half of the address space, x86-64 and arm64)."""
    return addr >= 1 << 63


def frames(addrs: list[int], pid: int | None = None) -> list[dict[str, Any]]:
    """Each address as a frame: kernel ones through kallsyms, user ones through ``pid``'s
    maps (``[unknown]`` without a pid)."""
    p = process(pid) if pid is not None else None
    ks = kernel()
    out = []
    for a in addrs:
        if is_kernel(a):
            out.append(ks.frame(a))
        elif p is not None:
            out.append(p.frame(a))
        else:
            out.append({"addr": a, "symbol": UNKNOWN, "offset": None, "module": None})
    return out
