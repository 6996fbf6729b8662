"""What the kernel says about maps: MapInfo (struct bpf_map_info + fdinfo), every map's id,
a map found by name, and listing (ids, names and listing need CAP_SYS_ADMIN)."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from typing import Any

from .. import _sys
from ..errors import NoSuchObject, UsageError, quote, translate
from ..types import MapFlag, MapType, map_type_label
from .pins import PinIndex


class MapInfo:
    """What the kernel says about a map (struct bpf_map_info + fdinfo), and where it is pinned."""

    def __init__(
        self,
        id: int,
        type: MapType | int,
        name: str,
        key_size: int,
        value_size: int,
        max_entries: int,
        flags: MapFlag,
        memlock: int | None = None,
        frozen: bool = False,
        btf_id: int = 0,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
        map_extra: int = 0,
        ifindex: int = 0,
        pinned: list[str] | None = None,
    ) -> None:
        self.id, self.type, self.name = id, type, name
        self.key_size, self.value_size, self.max_entries, self.flags = key_size, value_size, max_entries, flags
        self.memlock, self.frozen = memlock, frozen
        self.btf_id, self.btf_key_type_id, self.btf_value_type_id = btf_id, btf_key_type_id, btf_value_type_id
        self.map_extra, self.ifindex = map_extra, ifindex
        self.pinned: list[str] = list(pinned or [])

    def __repr__(self) -> str:
        return f"MapInfo({self.to_dict()!r})"

    @property
    def type_name(self) -> str:
        return map_type_label(int(self.type))

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape of ``show``/``list``."""
        return {
            "id": self.id,
            "type": self.type_name,
            "name": self.name,
            "key_size": self.key_size,
            "value_size": self.value_size,
            "max_entries": self.max_entries,
            "flags": MapFlag(self.flags).labels(),
            "memlock": self.memlock,
            "frozen": self.frozen,
            "btf_id": self.btf_id,
            "btf_key_type_id": self.btf_key_type_id,
            "btf_value_type_id": self.btf_value_type_id,
            "map_extra": self.map_extra,
            "pinned": list(self.pinned),
        }


def info_from_fd(fd: int) -> MapInfo:
    """Info on the map behind ``fd``; OBJ_GET_INFO_BY_FD's struct is zeroed first (_sys)."""
    raw = _sys.map_info(fd)
    try:
        mtype: MapType | int = MapType(raw.type)
    except ValueError:
        mtype = raw.type
    extra = _sys.fdinfo(fd)
    memlock = extra.get("memlock")
    return MapInfo(
        id=raw.id,
        type=mtype,
        name=raw.name.decode(errors="replace"),
        key_size=raw.key_size,
        value_size=raw.value_size,
        max_entries=raw.max_entries,
        flags=MapFlag(raw.map_flags),
        memlock=int(memlock) if memlock and memlock.isdigit() else None,
        frozen=extra.get("frozen", "0") == "1",
        btf_id=raw.btf_id,
        btf_key_type_id=raw.btf_key_type_id,
        btf_value_type_id=raw.btf_value_type_id,
        map_extra=raw.map_extra,
        ifindex=raw.ifindex,
    )


def map_ids() -> Iterator[int]:
    """Ids of every map in the system (needs CAP_SYS_ADMIN)."""
    current = 0
    while True:
        try:
            current = _sys.get_next_id(_sys.Cmd.MAP_GET_NEXT_ID, current)
        except OSError as err:
            if err.errno == errno.ENOENT:
                return
            raise translate("list", "maps", err) from err
        yield current


def parse_id(ref: str) -> int:
    try:
        value = int(ref[3:], 0)
    except ValueError:
        raise UsageError(f"map reference {quote(ref)}: expected id:N with a number N") from None
    if not 0 < value < 1 << 32:
        raise UsageError(f"map reference {quote(ref)}: ids are 1 to {(1 << 32) - 1}")
    return value


def id_by_name(name: str) -> int:
    matches = []
    for map_id in map_ids():
        try:
            fd = _sys.get_fd_by_id(_sys.Cmd.MAP_GET_FD_BY_ID, map_id, _sys.BPF_F_RDONLY)
        except OSError:
            continue  # gone meanwhile
        try:
            if _sys.map_info(fd).name.decode(errors="replace") == name:
                matches.append(map_id)
        finally:
            os.close(fd)
    if not matches:
        raise NoSuchObject(
            f"open name:{quote(name, bare=True)}: no map with that name; names are at most 15 characters "
            f"('bpfmap list' shows them)",
            errno.ENOENT,
        )
    if len(matches) > 1:
        ids = ", ".join(f"id:{i}" for i in matches)
        raise UsageError(
            f"open name:{quote(name, bare=True)}: {len(matches)} maps have that name ({ids}); use id:N or a pin"
        )
    return matches[0]


def list_maps(pins: bool | PinIndex = True) -> Iterator[MapInfo]:
    """Info on every map in the system, with pinned paths when ``pins`` (a PinIndex: the
    pins it found)."""
    found = pins if isinstance(pins, PinIndex) else PinIndex() if pins else None
    for map_id in map_ids():
        try:
            fd = _sys.get_fd_by_id(_sys.Cmd.MAP_GET_FD_BY_ID, map_id, _sys.BPF_F_RDONLY)
        except OSError as err:
            if err.errno == errno.ENOENT:
                continue
            raise translate("open", f"id:{map_id}", err) from err
        try:
            info = info_from_fd(fd)
        finally:
            os.close(fd)
        info.pinned = found.of(map_id) if found is not None else []
        yield info
