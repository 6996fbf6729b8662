"""The public API without the kernel: what `import bpfmap` offers, and what it does not load."""

from __future__ import annotations

import subprocess
import sys

import bpfmap
from bpfmap.errors import BpfmapError


def test_every_name_in_all_resolves():
    for name in bpfmap.__all__:
        assert getattr(bpfmap, name) is not None, name


def test_every_exception_class_is_exported():
    """Every BpfmapError subclass any module defines is reachable as bpfmap.NAME."""
    import bpfmap.core.asm
    import bpfmap.entries.bulk
    import bpfmap.entries.drain
    import bpfmap.export
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
        "bpfmap.streams.events",
        "bpfmap.entries.drain",
        "bpfmap.entries.bulk",
        "bpfmap.core.asm",
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


def test_public_signatures_name_no_standard_type_only_at_type_checking():
    """typing.get_type_hints works on the public functions and methods as far as the
    standard names go (Any, Callable, Iterator...: documentation tools and validators call
    it): the modules that keep typing and collections out of start-up still bind the names
    their public annotations use.  (A class of a higher floor, named under TYPE_CHECKING
    to keep the layers, stays a forward reference: Map.btf's MapBTF, Map.update's Program.)"""
    import collections.abc
    import inspect
    import typing

    import bpfmap

    standard = set(dir(typing)) | set(dir(collections.abc))
    failed = []
    for name in bpfmap.__all__:
        obj = getattr(bpfmap, name)
        members = [obj]
        if inspect.isclass(obj):
            members += [m for k, m in vars(obj).items() if inspect.isfunction(m) and not k.startswith("_")]
        for member in members:
            if not callable(member):
                continue
            try:
                typing.get_type_hints(member)
            except NameError as err:
                if err.name in standard:
                    failed.append(f"{name}.{getattr(member, '__name__', '')}: {err}")
    assert failed == []
