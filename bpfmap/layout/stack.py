"""A stack_trace map's values as frames, symbolized (see bpfmap.host.symbols)."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..host.hostnames import LIVE, Names
from ..host.symbols import frame_text, is_kernel
from . import Codec

BUILD_ID_FRAME = 32  # struct bpf_stack_build_id: s32 status, u8 build_id[20], u64 offset or ip
_STATUS_VALID, _STATUS_IP = 1, 2


class StackCodec(Codec):
    """A stack_trace map's value: its frames, innermost first, zero padding cut,
    symbolized (kernel addresses through kallsyms, user ones through ``pid``'s maps; a
    saved map's as its saving host named them: ``names``), as
    ``{"frames": [{"addr", "symbol", "offset", "module"}, ...]}``; text: the frames as
    ``symbol+0xOFF`` joined by ``;``.  Maps made with BPF_F_STACK_BUILD_ID hold
    ``{"build_id", "offset"}`` frames (or the address where the kernel fell back to an IP)."""

    def __init__(self, size: int, build_id: bool = False, pid: int | None = None, names: Names = LIVE) -> None:
        self.size, self.build_id, self.pid, self.names = size, build_id, pid, names

    def decode(self, data: bytes) -> Any:
        if self.build_id:
            return {"frames": self._build_id_frames(data)}
        return {"frames": self.names.frames(addresses(data), self.pid)}

    def _build_id_frames(self, data: bytes) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(0, len(data) - BUILD_ID_FRAME + 1, BUILD_ID_FRAME):
            status = int.from_bytes(data[i : i + 4], "little", signed=True)
            tail = int.from_bytes(data[i + 24 : i + 32], "little")
            if status == _STATUS_VALID:
                out.append({"build_id": data[i + 4 : i + 24].hex(), "offset": tail})
            elif status == _STATUS_IP:
                out.append(self.names.frames([tail], self.pid)[0])
            else:
                break
        return out

    def format(self, value: Any) -> str:
        if isinstance(value, dict) and "frames" in value:
            return ";".join(_frame_line(f) for f in value["frames"])
        return super().format(value)

    def encode(self, value: Any) -> bytes:
        raise UsageError("stack_trace values are written only by programs (bpf_get_stackid)")

    def parse(self, text: str) -> bytes:
        return self.encode(text)


def addresses(data: bytes) -> list[int]:
    """A stack's u64 instruction pointers up to the first zero."""
    out = []
    for i in range(0, len(data) - 7, 8):
        a = int.from_bytes(data[i : i + 8], "little")
        if not a:
            break
        out.append(a)
    return out


def _frame_line(f: dict[str, Any]) -> str:
    if "build_id" in f:
        return f"{f['build_id']}+{f['offset']:#x}"
    return frame_text(f, kernel=is_kernel(f["addr"]))
