"""Creating the maps an object declares, as libbpf creates them: machine facts resolved
here (possible CPUs for perf buffers, the .kconfig bytes), the object's BTF loaded once,
compatible pins reused, map-in-map slots filled."""

from __future__ import annotations

import copy
import errno
import os

from .. import btf as btfmod
from ..btf import BtfSpec, spec_for, to_model
from ..btf.wire import BTF
from ..core.maps import Map
from ..core.pins import check_pin_dir
from ..errors import BpfmapError, KernelError, Param, PinExists, UsageError, words
from ..layout.model import SCALARS
from .elf import BpfObject, MapDef, ObjectError
from .kconfig import kconfig_values


class Created:
    """A map created (or reused) from an object, and where it is pinned."""

    def __init__(self, d: MapDef, m: Map, path: str, reused: bool) -> None:
        self.definition, self.map, self.path, self.reused = d, m, path, reused


def create_maps(
    obj: BpfObject, pin_dir: str, only: list[str] | None = None, mkdir: bool = False, mount: bool = True
) -> list[Created]:
    """Create the maps of ``obj`` (those named in ``only``, default all) and pin each at
    ``pin_dir``/NAME; an existing compatible pin is reused, an incompatible one is
    refused (PinExists, with the differences) before anything is created; an object
    that declares no maps is a UsageError.  On failure, maps pinned by this call are
    unpinned again.  ``pin_dir`` is checked first, as
    :meth:`Map.create <bpfmap.core.maps.Map.create>` checks a pin: on a bpffs (NotBpffs,
    with how to mount one), made with ``mkdir`` (else UsageError when missing), a bpffs
    mounted on /sys/fs/bpf with ``mount``."""
    if only is not None:
        for n in only:
            obj.map(n)  # unknown names fail here
    what = words("create ", Param("from_object"), f" {obj.path}")
    if not obj.maps:
        raise UsageError(words(what, ": the object declares no maps in .maps"))
    check_pin_dir(pin_dir, mkdir, what, mount)
    wanted = [
        _for_this_machine(obj, d) for d in obj.maps if only is None or any(obj.map(n) is d for n in only)
    ]  # object order: inner maps first
    plan = _plan(obj, wanted, pin_dir)
    btf_fd = 0
    created: list[Created] = []
    try:
        btf_fd, generated = _load_object_btf(obj, [d for d, _p, m in plan if m is None])
        for d, path, existing in plan:
            if existing is not None:
                created.append(Created(d, existing, path, True))
                continue
            m = _create_one(d, btf_fd, obj if generated else None)
            try:
                m.pin(path)
            except BaseException:
                m.close()
                raise
            created.append(Created(d, m, path, False))
        _fill_slots(obj, created, pin_dir)
    except BaseException:
        for c in created:
            if not c.reused:
                try:
                    os.unlink(c.path)
                except OSError:
                    pass
            c.map.close()
        raise
    finally:
        if btf_fd:
            os.close(btf_fd)
    return created


def create_map(obj: BpfObject, name: str) -> Map:
    """The map ``name`` of ``obj`` created as :func:`create_maps` creates it (the object's
    BTF, this machine's facts), but not pinned: the caller pins or closes it."""
    d = _for_this_machine(obj, obj.map(name))
    if d.inner is not None:
        raise ObjectError(words(f"{obj.path}: {name} is a map of maps; create it with ", Param("create_maps")))
    btf_fd, generated = _load_object_btf(obj, [d])
    try:
        return _create_one(d, btf_fd, obj if generated else None)
    finally:
        if btf_fd:
            os.close(btf_fd)


def _for_this_machine(obj: BpfObject, d: MapDef) -> MapDef:
    """A copy of ``d`` with what depends on this machine filled in: the .kconfig map's
    bytes from the running kernel (a perf buffer's max_entries, the possible CPUs, is
    filled in by MapSpec.resolved)."""
    if d.section != ".kconfig":
        return d
    mine = copy.copy(d)
    mine.spec = d.spec.replace()
    sec = BTF(obj.btf_data).type(d.value_type_id) if d.value_type_id else None
    if sec is not None:
        mine.initial = kconfig_values(BTF(obj.btf_data), sec)
    return mine


def _plan(obj: BpfObject, wanted: list[MapDef], pin_dir: str) -> list[tuple[MapDef, str, Map | None]]:
    """(definition, pin path, the compatible map pinned there or None) for each map; an
    incompatible pin is PinExists, before anything is created."""
    plan: list[tuple[MapDef, str, Map | None]] = []
    try:
        for d in wanted:
            path = os.path.join(pin_dir, d.pin_name)
            existing = None
            if os.path.lexists(path):
                try:
                    existing = Map.open(path)
                except BpfmapError as err:
                    raise PinExists(
                        f"create {d.name} from {obj.path}: {path} exists and is not a map bpfmap "
                        f"can open ({err}); remove it or pin elsewhere",
                        errno.EEXIST,
                    ) from None
                diff = d.spec.compatible(existing.info(), "object")
                if diff:
                    existing.close()
                    raise PinExists(
                        f"create {d.name} from {obj.path}: {path} is pinned with an incompatible map: "
                        f"{'; '.join(diff)}; remove the pin (rm {path}) or change the object",
                        errno.EEXIST,
                    )
            plan.append((d, path, existing))
    except BaseException:
        for _d, _p, m in plan:
            if m is not None:
                m.close()
        raise
    return plan


def _load_object_btf(obj: BpfObject, new: list[MapDef]) -> tuple[int, bool]:
    """(fd of the object's BTF loaded in the kernel or 0, whether to generate BTF per map
    instead) for the maps about to be created."""
    if not any(d.key_type_id or d.value_type_id for d in new):
        return 0, False
    try:
        return btfmod.load(btfmod.BtfSpec(obj.btf_data, 0, 0)), False
    except BpfmapError as err:
        # BTF this kernel cannot take (extern functions, newer kinds): give each map BTF
        # generated from its key and value types instead, which decodes the same
        obj.btf_note = f"{err}; the maps carry BTF generated from their key and value types instead of the object's"
        return 0, True


def _create_one(d: MapDef, btf_fd: int, generate_from: BpfObject | None = None) -> Map:
    inner = None
    if d.inner is not None:
        inner = _create_one(d.inner, btf_fd, generate_from)  # with its own BTF, as libbpf does
    try:
        types = None
        if d.key_type_id or d.value_type_id:
            if generate_from is not None:
                btf = BTF(generate_from.btf_data)
                # the kernel takes a value-only BTF for a one-entry array only when the value is a
                # DATASEC; generated BTF describes a section as a struct, so it gets a u32 key
                no_key = SCALARS["u32"] if d.section else None
                types = spec_for(
                    to_model(btf, d.key_type_id, "key") if d.key_type_id else no_key,
                    to_model(btf, d.value_type_id, "value") if d.value_type_id else None,
                )
            elif btf_fd:
                types = BtfSpec(b"", d.key_type_id, d.value_type_id, fd=btf_fd)
        spec = d.spec.replace(btf=types, inner=None)
        m = Map.create(spec, inner_map=inner, btf_required=types is not None)
        if d.initial is not None:  # a global-variable map: its section's bytes, then frozen if read-only
            try:
                if any(d.initial):
                    m.update(bytes(4), d.initial)
                if d.freeze:
                    m.freeze()
            except BaseException:
                m.close()
                raise
        return m
    finally:
        if inner is not None:
            inner.close()  # the outer map keeps what it needs of the template


def _fill_slots(obj: BpfObject, created: list[Created], pin_dir: str) -> None:
    """Put the maps a map-in-map definition names in its slots (libbpf's init_slots)."""
    by_name = {c.definition.name: c.map for c in created}
    for c in created:
        if c.reused:
            continue  # a map in use keeps what its slots hold, as libbpf leaves reused maps alone
        for index, name in c.definition.slots.items():
            target = by_name.get(name)
            opened = None
            if target is None:  # not created in this call (--only): its pin, if there is one
                try:
                    opened = target = Map.open(os.path.join(pin_dir, name))
                except BpfmapError:
                    raise KernelError(
                        words(
                            f"create {c.definition.name} from {obj.path}: slot {index} holds map "
                            f"{name}, which was not created (add it to ",
                            Param("only"),
                            ")",
                        ),
                        errno.ENOENT,
                    ) from None
            try:
                c.map.update(index.to_bytes(4, "little"), target)
            finally:
                if opened is not None:
                    opened.close()
