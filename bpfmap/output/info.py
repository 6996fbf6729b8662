"""Map info (show, list) and the maps an object declares (show --object), in every format."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from .entries import _writer
from .terminal import cell, console, inline


def human_size(n: int | None) -> str:
    """Bytes for people: ``80.8 MB`` (SI units, as rich and ls -h --si print them)."""
    if n is None:
        return "-"
    from rich.filesize import decimal

    return decimal(n)


def usage_facts(info: dict[Any, Any], name: Callable[[str], str] = str) -> Iterator[tuple[str, str]]:
    """What show and list add to a map's info, as (fact, text) for the text's lines and
    the table's rows alike: entries (and fill), the processes holding it, the programs
    using it, the operations its type has; ``name`` writes the process names."""
    n = info.get("entries")
    if n is not None:
        if not info.get("entries_exact", True):
            yield "entries", f">{n} (counting took too long; 'bpfmap show MAP' counts them all)"
        elif info.get("fill") is not None:
            yield "entries", f"{n} of {info['max_entries']} ({100 * info['fill']:.1f}% full)"
        else:
            yield "entries", str(n)
    if info.get("pids"):
        yield "pids", ", ".join(f"{name(p['comm'])}({p['pid']})" for p in info["pids"])
    if info.get("programs"):
        yield "programs", ", ".join(f"{p['id']} {p['type']} {p['name'] or '-'}" for p in info["programs"])
    if info.get("operations"):
        yield "operations", ", ".join(info["operations"])


def info_lines(info: dict[Any, Any], name: Callable[[str], str] = str) -> Iterator[str]:
    """bpftool-like text for one map; ``name`` writes the names from files and the kernel
    (pins, process names) inside its lines."""
    flags = ",".join(info["flags"]) or "-"
    head = f"{info['id']}: {info['type']}  name {name(info['name']) if info['name'] else '-'}  flags {flags}"
    if info["frozen"]:
        head += "  frozen"
    yield head
    line = (
        f"\tkey {info['key_size']}B  value {info['value_size']}B  max_entries {info['max_entries']}"
        f"  memlock {info['memlock'] if info['memlock'] is not None else '-'}B"
    )
    if info["btf_id"]:
        line += f"  btf_id {info['btf_id']}"
    yield line
    for path in info["pinned"]:
        yield f"\tpinned {name(path)}"
    saved = info.get("saved")
    if saved:  # facts a file states: shown through the same escaping as names
        yield "\tsaved from " + name(
            f"{saved.get('host', '?')} (kernel {saved.get('kernel', '?')}, "
            f"{saved.get('ncpus', '?')} possible CPUs) at {saved.get('time', '?')}"
        )
    for fact_name, fact in usage_facts(info, name):
        yield f"\t{fact_name}{':' if fact_name == 'operations' else ''} {fact}"
    for side in ("key", "value"):
        text = info.get(f"{side}_type")
        if text:
            lines = text.splitlines()
            yield f"\t{side} type: {lines[0]}" if len(lines) == 1 else f"\t{side} type:"
            if len(lines) > 1:
                for ln in lines:
                    yield f"\t\t{ln}" if ln else ""


def _infos_table(infos: Iterable[dict[Any, Any]], single: bool, out: IO[str]) -> int:
    """A rich table: one row per map (list), or field/value rows for one map (show),
    sizes for people."""
    from rich.table import Table

    count = 0
    if single:
        table = Table(show_edge=False, show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for info in infos:
            count += 1
            rows = [
                ("id", str(info["id"])),
                ("type", info["type"]),
                ("name", info["name"] or "-"),
                ("key", f"{info['key_size']} B"),
                ("value", f"{info['value_size']} B"),
                ("max entries", f"{info['max_entries']:,}"),
                ("flags", ",".join(info["flags"]) or "-"),
                ("memlock", human_size(info["memlock"])),
                ("frozen", "yes" if info["frozen"] else "no"),
                ("btf id", str(info["btf_id"] or "-")),
                ("pinned", "\n".join(map(cell, info["pinned"])) or "-"),  # a line each, newlines in names escaped
                *usage_facts(info, cell),
            ]
            for side in ("key", "value"):
                if info.get(f"{side}_type"):
                    rows.append((f"{side} type", info[f"{side}_type"].expandtabs(4)))
            for name, value in rows:
                table.add_row(name, "\n".join(cell(x) for x in value.split("\n")))
    else:
        table = Table(show_edge=False, header_style="bold")
        for col in ("id", "type", "name", "key", "value", "max", "flags", "memlock", "btf", "pinned"):
            table.add_column(
                col,
                overflow="fold",
                no_wrap=col not in ("pinned", "name", "flags"),
                min_width=16 if col == "pinned" else None,
                justify="right" if col in ("id", "key", "value", "max", "memlock", "btf") else "left",
            )
        for info in infos:
            table.add_row(
                str(info["id"]),
                info["type"],
                cell(info["name"]),
                f"{info['key_size']} B",
                f"{info['value_size']} B",
                f"{info['max_entries']:,}",
                ",".join(info["flags"]) + (" frozen" if info["frozen"] else ""),
                human_size(info["memlock"]),
                str(info["btf_id"] or ""),
                "\n".join(map(cell, info["pinned"])),
            )
            count += 1
    console(out).print(table)
    return count


def _infos_text(infos: Iterable[dict[Any, Any]], _single: bool, out: IO[str]) -> int:
    count = 0
    for info in infos:
        for line in info_lines(info, lambda text: inline(text, out)):
            out.write(line + "\n")
        count += 1
    return count


def _infos_jsonl(infos: Iterable[dict[Any, Any]], _single: bool, out: IO[str]) -> int:
    import json

    count = 0
    for info in infos:
        out.write(json.dumps(info) + "\n")
        count += 1
    return count


def _infos_json(infos: Iterable[dict[Any, Any]], single: bool, out: IO[str]) -> int:
    import json

    items = list(infos)
    out.write(json.dumps(items[0] if single and items else items, indent=2) + "\n")
    return len(items)


_INFO_WRITERS = {"text": _infos_text, "jsonl": _infos_jsonl, "json": _infos_json, "table": _infos_table}


def write_infos(infos: Iterable[dict[Any, Any]], fmt: str, out: IO[str], single: bool = False) -> int:
    """Map info (show, list, create) in ``fmt``; ``single``: one map (show), which json
    prints as an object, not an array.  Returns how many maps were written."""
    written: int = _writer(_INFO_WRITERS, fmt)(infos, single, out)
    return written


def object_map_lines(d: dict[Any, Any], indent: str = "") -> Iterator[str]:
    """Text for one map an object declares (show --object)."""
    flags = ",".join(d["flags"]) or "-"
    yield (
        f"{indent}{d['name']}: {d['type']}  key {d['key_size']}B  value {d['value_size']}B  "
        f"max_entries {d['max_entries'] if d['max_entries'] is not None else '(possible CPUs)'}  "
        f"flags {flags}  pinning {d['pinning']}"
    )
    if d["slots"]:
        yield f"{indent}\tslots " + ", ".join(f"{k}={v}" for k, v in d["slots"].items())
    for side in ("key", "value"):
        text = d.get(f"{side}_type")
        if text:
            lines = text.splitlines()
            if len(lines) == 1:
                yield f"{indent}\t{side} type: {lines[0]}"
            else:
                yield f"{indent}\t{side} type:"
                yield from (f"{indent}\t\t{ln}" if ln else "" for ln in lines)
    if d["inner"]:
        yield f"{indent}\tinner map:"
        yield from object_map_lines(d["inner"], indent + "\t\t")


def _object_maps_text(defs: list[dict[Any, Any]], out: IO[str]) -> None:
    for d in defs:
        for line in object_map_lines(d):
            out.write(line + "\n")


def _object_maps_json(defs: list[dict[Any, Any]], out: IO[str]) -> None:
    import json

    out.write(json.dumps(defs, indent=2) + "\n")


def _object_maps_jsonl(defs: list[dict[Any, Any]], out: IO[str]) -> None:
    import json

    for d in defs:
        out.write(json.dumps(d) + "\n")


_OBJECT_WRITERS = {
    "text": _object_maps_text,
    "table": _object_maps_text,
    "csv": _object_maps_text,
    "json": _object_maps_json,
    "jsonl": _object_maps_jsonl,
}


def write_object_maps(defs: list[dict[Any, Any]], fmt: str, out: IO[str]) -> None:
    """show --object: text (bpftool-like), json (an array) or jsonl; table is text."""
    _writer(_OBJECT_WRITERS, fmt)(defs, out)
