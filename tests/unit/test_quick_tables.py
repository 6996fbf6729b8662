"""The quick path's own tables (bpfmap/cli/quick.py) are the library's: map type numbers,
integer types, option names and output formats (its behaviour against the full path:
tests/kernel/test_quick.py)."""

from __future__ import annotations

import bpfmap.cli
import bpfmap.cli.quick as quick
from bpfmap.layout.model import SCALARS
from bpfmap.types import MapType


def test_its_tables_are_the_librarys():
    assert (quick.HASH, quick.ARRAY, quick.LRU_HASH, quick.QUEUE, quick.STACK) == (
        MapType.HASH,
        MapType.ARRAY,
        MapType.LRU_HASH,
        MapType.QUEUE,
        MapType.STACK,
    )
    for name, (size, signed) in quick.INTEGERS.items():
        assert (SCALARS[name].size, SCALARS[name].signed) == (size, signed), name
    from bpfmap.cli import options
    from bpfmap.output import OUTPUT_FORMATS

    assert options.LAYOUT.names == quick.LAYOUT_NAMES and options.OUTPUT.names == quick.OUTPUT_NAMES
    assert set(quick.OUTPUTS) == set(OUTPUT_FORMATS) and quick.JSON_OUTPUTS == options.JSON_OUTPUTS
    assert set(quick.VERBS) == set(bpfmap.cli.QUICK_VERBS)
    for verb, (count, _types, _reads, prints) in quick.VERBS.items():
        low, high = options.VERBS[verb].args
        assert low <= count <= high, verb
        assert options.LAYOUT in options.VERBS[verb].options, verb
        if prints:  # a verb that takes no --output must not get one through the quick path
            assert options.OUTPUT in options.VERBS[verb].options, verb
