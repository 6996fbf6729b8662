"""The stacks verb: a profiler's counts map joined with its stack map, as folded lines for
flame graphs, an offcputime-like listing or JSON (library: bpfmap.live.stacks)."""

import sys
import time
from typing import Annotated, Optional

import typer

from ..core.maps import Map
from ..errors import UsageError
from ..output import json_dumps, unguarded
from .common import NO_LAYOUT, LayoutOptions, MapArg, check_seconds, examples, layout_options, say
from .options import Choices

app = typer.Typer()

STACKS_OUTPUTS = Choices(("folded", "text", "json"), {"folded": "default off a terminal", "text": "on one"})


@app.command(
    epilog=examples(
        "bpfmap stacks /sys/fs/bpf/profile_counts --stack-map /sys/fs/bpf/profile_stacks -o folded",
        "bpfmap stacks /sys/fs/bpf/profile_counts --stack-map /sys/fs/bpf/profile_stacks -o text --top 5",
    )
)
@layout_options()
def stacks(
    map_ref: MapArg,
    stack_map: Annotated[
        str, typer.Option("--stack-map", metavar="STACKS", help="The stack_trace map the stack ids point into.")
    ],
    kernel_stack: Annotated[
        Optional[str],
        typer.Option(
            "--kernel-stack", metavar="FIELD", help="The kernel stack id field (default: kern_stack_id, ...)."
        ),
    ] = None,
    user_stack: Annotated[
        Optional[str],
        typer.Option("--user-stack", metavar="FIELD", help="The user stack id field (default: user_stack_id, ...)."),
    ] = None,
    pid: Annotated[
        Optional[str],
        typer.Option("--pid", metavar="FIELD", help="The process id field user frames are looked up in (pid, tgid)."),
    ] = None,
    value: Annotated[
        Optional[str], typer.Option("--value", metavar="FIELD", help="The count (default: the value itself).")
    ] = None,
    label: Annotated[
        Optional[list[str]],
        typer.Option("--label", metavar="FIELD", help="Fields that start each stack (default: comm); repeatable."),
    ] = None,
    output: Annotated[
        Optional[str],
        typer.Option("--output", "-o", metavar="FORMAT", help=f"{STACKS_OUTPUTS.help()}."),
    ] = None,
    top: Annotated[Optional[int], typer.Option("--top", metavar="N", help="text: only the N largest stacks.")] = None,
    interval: Annotated[
        Optional[float],
        typer.Option("--interval", "-i", metavar="S", help="Redraw every S seconds, counting what was added since."),
    ] = None,
    count: Annotated[
        Optional[int], typer.Option("--count", "-c", metavar="N", help="--interval: stop after N refreshes.")
    ] = None,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Stack traces with their counts: COUNTS (keyed by pid, comm and stack ids, as
    profilers keep them) joined with --stack-map STACKS, symbolized (kernel frames through
    /proc/kallsyms, user frames through each process's maps), identical stacks summed."""
    from ..live import stacks as lib

    fmt = (output or ("text" if sys.stdout.isatty() else "folded")).strip().lower()
    STACKS_OUTPUTS.check(fmt, "--output", "stacks")
    check_seconds(interval, "--interval")
    if count is not None and interval is None:
        raise UsageError("--count goes with --interval")
    if top is not None and top < 1:
        raise UsageError(f"--top {top}: give a positive number")
    with Map.open(map_ref, readonly=True) as m, Map.open(stack_map, readonly=True) as sm:
        joiner = lib.Joiner(opts.view(m), sm, kernel_stack, user_stack, pid, value, label)
        if interval is None:
            _write(lib, joiner.stacks(), fmt, top)
        else:
            _live(lib, joiner, fmt, top, interval, count)
        if joiner.gone:
            say(f"note: {len(joiner.gone)} process(es) had exited; their user frames are [unknown]")


def _write(lib, found, fmt: str, top: Optional[int]) -> None:
    if top is not None:
        found = found[:top]
    if fmt == "json":
        sys.stdout.write(json_dumps([s.to_dict() for s in found], indent=2) + "\n")
    elif fmt == "text":
        sys.stdout.writelines(lib.text(found))
    else:
        sys.stdout.writelines(lib.folded(found))
    sys.stdout.flush()


def _live(lib, joiner, fmt: str, top: Optional[int], interval: float, count: Optional[int]) -> None:
    """Every interval, the stacks by what their counts grew since the last refresh."""
    before: dict = {}
    n = 0
    try:
        while count is None or n < count:
            now = {(tuple(s.labels.items()), s.pid, _ident(s)): s for s in joiner.stacks()}
            grown = []
            for k, s in now.items():
                added = s.count - (before[k].count if k in before else 0)
                if added > 0:
                    grown.append(lib.Stack(s.labels, s.user, s.kernel, added, s.pid))
            grown.sort(key=lambda s: -s.count)
            if sys.stdout.isatty():
                unguarded(sys.stdout).write("\x1b[H\x1b[2J")  # our own escape, not the map's
            sys.stdout.write(f"# {time.strftime('%H:%M:%S')}  {len(grown)} stacks grew\n")
            _write(lib, grown, fmt, top)
            before = now
            n += 1
            if count is None or n < count:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass


def _ident(s) -> tuple:
    return tuple(f["addr"] for f in s.user) + (None,) + tuple(f["addr"] for f in s.kernel)
