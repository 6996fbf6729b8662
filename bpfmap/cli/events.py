"""The events verb: records from ring buffers and perf event arrays (library: bpfmap.streams.events)."""

import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..core.maps import Map
from ..errors import EXIT_NOT_FOUND, UsageError
from ..output import json_dumps
from ..types import MapType
from . import worded
from .common import (
    NO_LAYOUT,
    LayoutOptions,
    MapArg,
    QuietOpt,
    check_seconds,
    examples,
    layout_options,
    say,
)
from .options import Choices

if TYPE_CHECKING:
    from ..layout import Codec

app = typer.Typer()

EVENTS_OUTPUTS = Choices(("text", "jsonl"), {"text": "one record per line"})


@app.command(
    epilog=examples(
        "bpfmap events /sys/fs/bpf/rb --layout 'pid=u32,comm=char[16]' --count 2",
        "bpfmap events /sys/fs/bpf/rb -o jsonl --timeout 1 | jq -c .value",
    )
)
@layout_options(keys=False)
def events(
    map_ref: MapArg,
    object_: Annotated[
        Optional[str],
        typer.Option(
            "--object",
            metavar="OBJ",
            help="Decode records as --value-type from this BPF object's BTF "
            "(e.g. --object prog.o --value-type 'struct event').",
        ),
    ] = None,
    count: Annotated[Optional[int], typer.Option("--count", "-c", metavar="N", help="Stop after N records.")] = None,
    timeout: Annotated[
        Optional[float],
        typer.Option("--timeout", "-t", metavar="S", help="Stop after S seconds (exit 1 if no record came)."),
    ] = None,
    pages: Annotated[
        int, typer.Option("--pages", metavar="N", help="perf_event_array: ring pages per CPU (a power of two).")
    ] = 64,
    cpu: Annotated[
        Optional[int],
        typer.Option(
            "--cpu", metavar="N", help="perf_event_array: read only CPU N's buffer (bpftool's event_pipe cpu N)."
        ),
    ] = None,
    output: Annotated[
        Optional[str], typer.Option("--output", "-o", metavar="FORMAT", help=f"{EVENTS_OUTPUTS.help()}.")
    ] = None,
    where: Annotated[
        Optional[list[str]],
        typer.Option(
            "--where",
            "-w",
            metavar="FIELD=VALUE",
            help="Only records whose FIELD is VALUE (also FIELD!=VALUE, FIELD~TEXT for a substring, "
            "<, <=, >, >= on numbers); repeatable: all must hold.",
        ),
    ] = None,
    quiet: QuietOpt = False,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Read the records programs write to a ring buffer (ringbuf) or perf event array, as
    the kernel commits them (--layout: the record's, one side: 'pid=u32,comm=char[16]').
    Ctrl-C stops with a summary line on stderr.

    Lost records (perf buffers) are reported on stderr.  jsonl: {"value": V} per record,
    with "cpu" for perf buffers."""
    from ..streams.events import Condition, RecordDecoder, reader

    if count is not None and count < 1:
        raise UsageError(f"--count {count}: give a positive number")
    check_seconds(timeout, "--timeout", zero=True)
    fmt = EVENTS_OUTPUTS.check(output or "text", "--output", "events")
    codec, stored, formats = _record_codecs(opts, object_)
    conditions = [Condition(w) for w in where or []]
    seen = read = 0
    with Map.open(map_ref) as m, reader(m, pages, [cpu] if cpu is not None else None) as rd:
        perf = m.type is MapType.PERF_EVENT_ARRAY
        decoder = RecordDecoder(codec, conditions, perf=perf, stored=stored if formats else None, formats=formats)
        lost_said = 0
        batches = rd.batches(count, timeout, packed=True)
        try:
            batch = next(batches, None)
            while batch is not None:
                shown, text = _record_lines(decoder, batch, fmt)
                for note in decoder.notes:
                    say(f"note: events {map_ref}: {note}", quiet)
                decoder.notes.clear()
                seen += shown
                read += len(batch)
                if shown:
                    sys.stdout.write(text)
                    sys.stdout.flush()
                if rd.lost > lost_said:
                    say(
                        f"events {map_ref}: {rd.lost - lost_said} records lost (the ring was full; "
                        f"--pages for a bigger perf buffer)"
                    )
                    lost_said = rd.lost
                try:  # --count counts the records shown: those --where let through
                    batch = batches.send(shown)
                except StopIteration:
                    batch = None
        except KeyboardInterrupt:
            pass
        # a ring buffer cannot tell what did not fit (the program's reserve failed): no lost count
        lost = f", {rd.lost} lost" if m.type is MapType.PERF_EVENT_ARRAY else ""
        matched = f" of {read} read" if conditions else ""
        say(f"events {map_ref}: {seen} records{matched}{lost}", quiet)
    if timeout is not None and seen == 0:
        raise typer.Exit(EXIT_NOT_FOUND)


def _record_lines(decoder, batch, fmt: str) -> tuple[int, str]:
    """Decode, filter and format a batch of records: (how many are shown, their lines).
    Records all of the type's size, unfiltered, of a type made of leaves are formatted
    straight from their bytes, as dump formats entries (a Packed run without a Record
    each); others go through the decoder (filters, short and long records) one by one."""
    from ..streams.events import Packed

    codec = decoder.codec
    if isinstance(batch, Packed):
        if codec is not None and not decoder.where and batch.size == codec.size:
            lines = _packed_lines(codec, batch.data, batch.count, None, fmt)
            if lines is not None:
                return batch.count, lines
        batch = batch.records()
    if codec is not None and not decoder.where and batch:
        datas, cpus = [r.data for r in batch], [r.cpu for r in batch]
        same_kind = all(c is None for c in cpus) or None not in cpus  # every record names its CPU, or none
        if same_kind and all(len(d) == codec.size for d in datas):
            lines = _packed_lines(codec, b"".join(datas), len(datas), None if cpus[0] is None else cpus, fmt)
            if lines is not None:
                return len(batch), lines
    decoded = decoder.decode(batch)
    if not decoded:
        return 0, ""
    n = len(decoded)
    if fmt == "text":
        fmt_value = codec.format if codec is not None else str
        return n, "".join(fmt_value(v) + (f" +[{extra}]" if extra else "") + "\n" for _r, v, extra in decoded)
    out = []
    for r, v, extra in decoded:
        obj: dict = {"cpu": r.cpu, "value": v} if r.cpu is not None else {"value": v}
        if extra:
            obj["extra"] = extra
        out.append(json_dumps(obj) + "\n")
    return n, "".join(out)


def _packed_lines(codec, data: bytes, count: int, cpus: Optional[list], fmt: str) -> Optional[str]:
    """The lines of ``count`` records of the codec's size packed in ``data`` (``cpus``:
    each one's CPU, for a perf buffer), formatted a chunk at a time as dump formats
    entries (layout.rows); None when the codec's type is not one rows writes."""
    from array import array

    from ..output.rows import record_writer

    lines = record_writer(fmt, codec, cpus is not None)
    if lines is None:
        return None
    return lines(array("I", cpus).tobytes() if cpus is not None else b"", data, count)


def _record_codec(opts: LayoutOptions, object_: Optional[str] = None):
    """The codec for one record (see :func:`_record_codecs`)."""
    return _record_codecs(opts, object_)[0]


def _record_codecs(opts: LayoutOptions, object_: Optional[str] = None):
    """(the codec for one record: the value side of --layout (or the whole layout when it
    has one side), --c-header or --object (the object's BTF) with --value-type, shown
    --as asked, None for hex; the same before --as, what --where compares; the --as
    formats by field)."""
    if sum(x is not None for x in (opts.layout, opts.c_header, object_)) > 1:
        raise UsageError("give one of --layout, --c-header and --object")
    codec: Optional[Codec]
    if object_ is not None:
        if opts.value_type is None:
            raise UsageError("--object needs --value-type CTYPE: the record's type, e.g. 'struct event'")
        from ..objects import read_object

        codec = read_object(object_).type_codec(opts.value_type)
    else:
        if opts.c_header is not None and opts.value_type is None:
            raise UsageError("--c-header needs --value-type CTYPE: the record's type")
        if opts.c_header is None and opts.value_type is not None:
            raise UsageError("--value-type needs --c-header FILE or --object OBJ")
        lay = opts.pick()
        codec = None if lay is None else lay.bare if lay.bare is not None else lay.value
    stored, formats = codec, {}
    if opts.as_:
        from ..layout.formats import apply, parse_spec

        formats = parse_spec(opts.as_)
        codec, rest = apply(codec, formats)
        if rest:
            raise UsageError(f"--as {', '.join(rest)}: no such field in the record type")
    return codec, stored, formats


@app.command(
    epilog=examples(
        "bpfmap send /sys/fs/bpf/urb --layout 'pid=u32,cmd=u32' 'pid=1,cmd=2' 'pid=7,cmd=0'",
        "bpfmap send /sys/fs/bpf/urb --layout 'pid=u32,cmd=u32' --from records.txt --timeout 5",
    ),
)
@layout_options(keys=False)
def send(
    map_ref: MapArg,
    records: Annotated[
        Optional[list[str]],
        typer.Argument(metavar="RECORD...", help="Records, each as the layout reads it (hex bytes without one)."),
    ] = None,
    object_: Annotated[
        Optional[str],
        typer.Option("--object", metavar="OBJ", help="Encode records as --value-type from this BPF object's BTF."),
    ] = None,
    from_: Annotated[
        Optional[str],
        typer.Option("--from", metavar="FILE", help="Records from FILE ('-' for stdin), one per line (text or JSON)."),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            "-t",
            metavar="S",
            help="When the ring is full, wait up to S seconds for a program to drain it.",
        ),
    ] = 0.0,
    quiet: QuietOpt = False,
    opts: LayoutOptions = NO_LAYOUT,
) -> None:
    """Write records into a user ring buffer (user_ringbuf), for the programs that drain
    it with bpf_user_ringbuf_drain.  Says how many went in; a bad RECORD sends none; a
    ring that stays full exits 3 with how many records went in before it."""
    from ..layout import HexCodec
    from ..streams.userring import UserRingBuffer

    check_seconds(timeout, "--timeout", zero=True)
    records = records or []
    if from_ is not None and records:
        raise UsageError("send: give RECORDs or --from FILE, not both")
    if from_ is None and not records:
        raise UsageError(f"send {map_ref}: give the RECORDs to send (or --from FILE)")
    codec = _record_codec(opts, object_)

    def encode(text: str) -> bytes:
        if codec is None:
            return HexCodec(len(text.replace(" ", "")) // 2).parse(text)
        if text.lstrip()[:1] in ("{", "["):
            import json

            try:
                return codec.encode(json.loads(text))
            except ValueError:
                pass
        return codec.parse(text)

    with Map.open(map_ref) as m, UserRingBuffer(m) as ring:
        if from_ is not None:
            sent = _send_from(ring, from_, encode, timeout)
        else:  # every record encoded before any is sent: a bad one sends none
            encoded = []
            for i, text in enumerate(records, 1):
                try:
                    encoded.append(encode(text))
                except UsageError as err:
                    raise UsageError(f"send {map_ref}: record {i}: {worded(err)}; nothing sent") from None
            try:
                sent = ring.send_all(encoded, timeout)
            except UsageError as err:  # a record the ring cannot take
                went = f"{ring.sent} record{'' if ring.sent == 1 else 's'}"
                raise UsageError(f"{worded(err)} ({went} went in before it)") from None
    say(f"send {map_ref}: {sent} record{'' if sent == 1 else 's'} sent", quiet)


def _send_from(ring, path: str, encode, timeout: float) -> int:
    """send --from FILE: a record a line; a bad line named by its number, as update --from does."""
    from ..host.inputs import LoadError, open_input

    where = f"send {ring.map.ref} --from {path}"
    stream = open_input(path, where)
    try:
        return ring.send_lines(stream, encode, timeout)
    except LoadError as err:
        raise UsageError(f"{where}: {worded(err)}") from None
    finally:
        if stream is not sys.stdin:
            stream.close()
