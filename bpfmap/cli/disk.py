"""Maps on disk: save, restore, diff (library: bpfmap.entries.save, .restore, .diff).
Every verb that reads a map takes a saved file where it takes a map (core/saved.py)."""

from typing import Annotated, Optional

import typer

from ..errors import EXIT_DIFFER, UsageError
from .common import QuietOpt, examples, say
from .options import Choices

app = typer.Typer()

DIFF_OUTPUTS = Choices(("text", "jsonl"), {"text": "default"})


def _size(n: int) -> str:
    return f"{n:,} bytes"


@app.command(
    epilog=examples(
        "bpfmap save /sys/fs/bpf/counts counts.bpfmap",
        "bpfmap save /sys/fs/bpf counts-and-all.bpfmap",
    )
)
def save(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="MAP... FILE",
            help="The maps to save (pins, id:N, name:NAME, a bpffs directory or a glob: every map below), "
            "then the file to write.",
            show_default=False,
        ),
    ],
    layout: Annotated[
        Optional[str],
        typer.Option("--layout", "-l", metavar="KEY:VALUE", help="The key and value of a map without BTF."),
    ] = None,
    level: Annotated[
        int, typer.Option("--level", metavar="N", help="zlib compression level, 0 (none) to 9.", min=0, max=9)
    ] = 1,
    quiet: QuietOpt = False,
) -> None:
    """Save maps into one file: each map's shape, BTF, every entry's bytes (per-CPU values
    per CPU), inner maps, frozen state and where it came from, with checksums.  Every
    verb that reads a map reads the file (FILE, or FILE:NAME for one of several maps);
    'bpfmap restore' makes a map of it again."""
    if len(args) < 2:
        raise UsageError("save: give one or more MAPs and then the FILE to write")
    from ..entries.save import save as run_save
    from ..layout import Layout

    *refs, path = args
    report = run_save(refs, path, Layout.parse(layout) if layout else None, level)
    for ref, why in report.skipped:
        say(f"save: left out {ref}: {why}")
    maps = len(report.maps)
    say(
        f"save {path}: {report.entries:,} entries of {maps} map{'s' if maps != 1 else ''} "
        f"({_size(report.size)}; the entries' bytes: {_size(report.raw)})",
        quiet,
    )


@app.command(
    epilog=examples(
        "bpfmap restore counts.bpfmap --pin /sys/fs/bpf/counts_restored",
        "bpfmap restore counts.bpfmap --into /sys/fs/bpf/copy",
    )
)
def restore(
    file: Annotated[str, typer.Argument(metavar="FILE", help="A saved file, or FILE:NAME for one of its maps.")],
    pin: Annotated[
        Optional[str], typer.Option("--pin", metavar="PIN", help="Make a new map of the saved shape, pinned here.")
    ] = None,
    pin_dir: Annotated[
        Optional[str],
        typer.Option("--pin-dir", metavar="DIR", help="Every map of the file, each pinned in DIR under its name."),
    ] = None,
    into: Annotated[
        Optional[str], typer.Option("--into", metavar="MAP", help="Write the entries into this existing map.")
    ] = None,
    cpus: Annotated[
        Optional[str],
        typer.Option(
            "--cpus",
            metavar="HOW",
            help="Per-CPU values saved on a host with another number of CPUs: sum (every saved CPU's value "
            "added into CPU 0) or first (CPU N keeps saved CPU N's value; refused when that drops a value).",
        ),
    ] = None,
    mkdir: Annotated[bool, typer.Option("--mkdir", help="Create missing directories of --pin or --pin-dir.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Make a map of a saved one again (--pin, --pin-dir), with its BTF and every entry, or
    write its entries into an existing map (--into; converted as 'bpfmap copy' does when
    the layouts differ).  Never replaces a pin; a restore that fails leaves no pin behind
    and says how many entries went in."""
    from ..entries.restore import restore as run_restore

    given = [o for o, v in (("--pin", pin), ("--pin-dir", pin_dir), ("--into", into)) if v is not None]
    if len(given) != 1:
        raise UsageError("restore: give one of --pin PIN, --pin-dir DIR or --into MAP")
    report = run_restore(file, pin=pin, pin_dir=pin_dir, into=into, cpus=cpus, mkdir=mkdir)
    for line in report.notes:
        say(f"note: {line}")
    for target, n in report.maps:
        say(f"restore {file} -> {target}: {n:,} entr{'y' if n == 1 else 'ies'}", quiet)


@app.command(
    epilog=examples(
        "bpfmap diff counts.bpfmap /sys/fs/bpf/counts",
        "if bpfmap diff counts.bpfmap /sys/fs/bpf/counts -o jsonl; then echo same; fi",
    )
)
def diff(
    a: Annotated[str, typer.Argument(metavar="A", help="A map or a saved file.")],
    b: Annotated[str, typer.Argument(metavar="B", help="A map or a saved file.")],
    output: Annotated[
        Optional[str], typer.Option("--output", "-o", metavar="FORMAT", help=f"{DIFF_OUTPUTS.help()}.")
    ] = None,
    where: Annotated[
        Optional[list[str]],
        typer.Option("--where", metavar="FIELD OP VALUE", help="Compare only the entries this picks (on either side)."),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Compare two maps or saved files entry by entry, by their bytes (per CPU for per-CPU
    maps), shown decoded (changed fields one by one), and a summary line on stderr.
    Exit 0 when they are equal and 1 when they differ, as diff(1) does (the one verb
    where 1 means 'differ'); 2 or 3 when one cannot be read."""
    from ..entries.diff import diff as run_diff

    fmt = DIFF_OUTPUTS.check(output or "text", "-o", "diff")
    import sys

    result = run_diff(a, b, sys.stdout, fmt, where or [])
    say(result.summary(), quiet)
    if not result.equal:
        raise typer.Exit(EXIT_DIFFER)
