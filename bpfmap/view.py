"""A Map seen through a Layout: text and Python values in, decoded entries out."""

from __future__ import annotations

from collections.abc import Iterator

from .errors import UsageError
from .layout import Codec, HexCodec, IdCodec, Layout
from .maps import Map, Program
from .types import Value


class View:
    """Decode and encode one map's keys and values through a layout (hex without one)."""

    def __init__(self, m: Map, layout: Layout | None = None) -> None:
        layout = layout or Layout()
        self.map = m
        keyless = m.key_size == 0
        if layout.bare is not None and not keyless:
            raise UsageError(f"layout for {m.ref}: {m.type_label} maps have keys; write the layout as KEY:VALUE")
        self.key: Codec = self._bind(layout.key, m.key_size, "key", m.ref)
        if keyless and layout.bare is not None:
            self.value: Codec = self._bind(layout.bare, m.value_size, "value", m.ref)
        elif m.spec.value is Value.MAP_ID:
            self.value = IdCodec("map")
        elif m.spec.value is Value.PROG_ID:
            self.value = IdCodec("program")
        else:
            self.value = self._bind(layout.value, m.value_size, "value", m.ref)

    @staticmethod
    def _bind(codec: Codec | None, size: int, what: str, ref: str) -> Codec:
        if codec is None:
            return HexCodec(size)
        try:
            codec.check_size(size, what)
        except UsageError as err:
            raise UsageError(f"layout for {ref}: {err}") from None
        return codec

    @property
    def percpu(self) -> bool:
        return self.map.percpu

    def parse_key(self, text: str) -> bytes:
        try:
            return self.key.parse(text)
        except UsageError as err:
            raise UsageError(f"key {text!r}: {err}") from None

    def parse_value(self, text: str) -> bytes:
        try:
            return self.value.parse(text)
        except UsageError as err:
            raise UsageError(f"value {text!r}: {err}") from None

    def open_value_ref(self, text: str) -> Map | Program:
        """For maps of maps and prog_array: open the map or program a value refers to."""
        if self.map.spec.value is Value.MAP_ID:
            return Map.open(text)
        return Program.open(text)

    def decode_value(self, raw: bytes | list[bytes]) -> object:
        if isinstance(raw, list):
            return [self.value.decode(v) for v in raw]
        return self.value.decode(raw)

    def items(self) -> Iterator[tuple[object, object]]:
        """Decoded (key, value) pairs; raises at once (not on first next) if the map cannot be iterated."""
        kd, dv = self.key.decode, self.decode_value
        return ((kd(k), dv(v)) for k, v in self.map.items())
