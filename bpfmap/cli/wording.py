"""How the command line says a library message: each parameter it names (bpfmap.errors.Param)
as the option that gives it.  A leaf of cli/ (it imports only bpfmap.errors), so any module of
the command line may word a message without an import circle."""

from __future__ import annotations

from ..errors import BpfmapError, Param, Words


def n_entries(n: int) -> str:
    """``1 entry``, ``2 entries``: how a command's last line counts entries."""
    return f"{n} entr{'y' if n == 1 else 'ies'}"


class StdoutClosed(Exception):
    """The reader of stdout went away (``| head``): here, a leaf, so that any module of the
    command line may catch it."""


# The library names its parameters in messages (bpfmap.errors.Param); the command line says
# each as its option: --NAME with dashes for underscores, unless this table says otherwise.
OPTIONS = {
    "map_type": "--type",
    "map_name": "--map",
    "slot_field": "--slot",  # hist
    "count_field": "--field",
    "key_size": "--key",
    "value_size": "--value",
    "kernel_field": "--kernel-stack",  # stacks
    "user_field": "--user-stack",
    "pid_field": "--pid",
    "value_field": "--value",
    "labels": "--label",
    "include_dirs": "--include-dir",
    "cpus": "--cpu",  # events
    "codec": "--layout, --c-header or --object",  # events: what gives the records' codec
    "drops": "--drop",  # copy, migrate
    "sets": "--set",
    "src_layout": "--from-layout",  # copy: the layouts of the source's and the target's View
    "dst_layout": "--to-layout",
    "take": "delete --print",  # Map.take: the verb and option that call it
    "create_maps": "create --from-object",  # objects.create_maps: the same
    "load": "--from",  # update's bulk load (entries.bulk.Loader)
}


# The other options that give a parameter, named after it where a message means any way of
# giving it (Param.also).
ALSO = {"layout": " (or --c-header)"}


def option(p: Param) -> str:
    """A library parameter as the option that gives it (``cpu`` -> ``--cpu``), with its metavar."""
    name = OPTIONS.get(p.name) or "--" + p.name.replace("_", "-")
    if p.also:
        name += ALSO.get(p.name, "")
    return f"{name} {p.metavar}" if p.metavar else name


def worded(said: BpfmapError | Words | str) -> str:
    """An error's message (or a message, errors.said) as the command line says it:
    parameters as options."""
    if isinstance(said, str):
        return said
    return said.worded(option)
