"""The public API: what `import bpfmap` offers, and what it does not load."""

from __future__ import annotations

import inspect
import subprocess
import sys

import bpfmap
from bpfmap.errors import BpfmapError


def test_every_name_in_all_resolves():
    for name in bpfmap.__all__:
        assert getattr(bpfmap, name) is not None, name


def test_every_exception_class_is_exported():
    """Every BpfmapError subclass any module defines is reachable as bpfmap.NAME."""
    import bpfmap.asm
    import bpfmap.bulk
    import bpfmap.drain
    import bpfmap.objects  # noqa: F401  (load every module that defines errors)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    ours = {c for c in subclasses(BpfmapError) if c.__module__.startswith("bpfmap")}
    assert len(ours) > 15
    for cls in ours:
        assert getattr(bpfmap, cls.__name__) is cls, cls
        assert cls.__name__ in bpfmap.__all__


def test_import_stays_light():
    code = "import sys, bpfmap; print(','.join(sorted(sys.modules)))"
    mods = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(",")
    )
    for heavy in (
        "bpfmap.objects",
        "bpfmap.events",
        "bpfmap.drain",
        "bpfmap.bulk",
        "bpfmap.asm",
        "bpfmap.view",
        "elftools",
        "pycparser",
        "rich",
        "typer",
        "dataclasses",
    ):
        assert heavy not in mods, heavy


def test_lazy_names_are_the_modules_objects():
    from bpfmap.objects import read_object
    from bpfmap.view import View

    assert bpfmap.View is View and bpfmap.read_object is read_object
    assert "View" in dir(bpfmap)


def test_map_create_takes_a_spec(bpffs):
    spec = bpfmap.MapSpec.of("hash", key_size=4, value_size=8, max_entries=16, name="spec_t")
    with bpfmap.Map.create(spec) as m:
        info = m.info()
        assert (info.type_name, info.key_size, info.value_size, info.max_entries, info.name) == (
            "hash",
            4,
            8,
            16,
            "spec_t",
        )
        assert spec.compatible(info) == []
        other = spec.replace(max_entries=32)
        assert other.compatible(info) == ["max_entries 16 (pinned) vs 32 (spec)"]
    assert "map_extra" in inspect.signature(bpfmap.Map.create).parameters  # the keyword form stays
