"""Everything the executed docs normalise before comparing a page's output with a run's,
in one place: only what changes from run to run.  Each rule is (what, pattern,
replacement), applied to both sides in order; a page's text is otherwise compared as it is.

Output whose order is the kernel's hash order is compared as a sorted list of lines
(``unordered``)."""

from __future__ import annotations

import re

RULES: list[tuple[str, str, str]] = [
    # ids the kernel hands out: maps, programs, BTF objects
    ("map ids at the head of show/list", r"(?m)^\d+: (?=\S+  name )", "ID: "),
    ("BTF ids", r"\bbtf_id \d+", "btf_id ID"),
    ("ids in JSON", r'"(id|btf_id|map_id|prog_id)": \d+', r'"\1": ID'),
    ("map ids in messages", r"\b(map id|map) (\d+)\b(?=[ ,)])", r"\1 ID"),
    ("ids in parentheses", r"\(id \d+\)", "(id ID)"),
    ("id: references", r"\bid:\d+", "id:ID"),
    ("program ids in show", r"(?<=programs )\d+|(?<=, )\d+(?= \w+ on_)", "ID"),
    ("ids in top", r"(?m)^ +\d+ (?=│)", " ID "),
    # process ids and names of processes that hold maps
    ("pids in fields", r'\bpid[=:] ?"?\d+', "pid=PID"),
    ("pids in JSON", r'"pid": \d+', '"pid": PID'),
    ("pids after a process name", r"(?<=[\w-])\s?\(\d+\)", "(PID)"),
    ("pids after a process name in stacks", r"(?<=job-work )\(\d+\)", "(PID)"),
    # times: clocks, timestamps a program takes, durations
    ("wall clock", r"\b\d\d:\d\d:\d\d\b", "HH:MM:SS"),
    ("kernel timestamps", r'\b(last_seen|ts)([=:] ?"?)\d+', r"\1\2TIME"),
    ("scrape durations", r"(bpfmap_export_scrape_duration_seconds\{[^}]*\}) \S+", r"\1 SECONDS"),
    ("process start times in exposition", r"(process_start_time_seconds) \S+", r"\1 SECONDS"),
    # memory the kernel accounts: it differs between kernels and CPU counts
    ("memlock", r"\bmemlock \d+B", "memlock NB"),
    ("memlock in JSON", r'"memlock": \d+', '"memlock": N'),
    ("saved file sizes", r"\(\d+ bytes; ", "(N bytes; "),
    ("human sizes", r"\b\d+(\.\d+)? ?[kMG]i?B\b", "N kB"),
    # inodes and socket cookies
    ("inodes", r"\binode=\d+", "inode=N"),
    ("cookies", r"\bcookie=\d+", "cookie=N"),
    ("cookies in JSON", r'"cookie": ?\d+', '"cookie": N'),
    # BPF program names carry a tag of their instructions
    ("program tags", r"\bbpf_prog_[0-9a-f]{16}_", "bpf_prog_TAG_"),
    ("temporary paths", r"/tmp/[\w./-]+", "/tmp/PATH"),
]

_COMPILED = [(re.compile(pattern), repl) for _, pattern, repl in RULES]

# Commands whose lines come in the kernel's hash order (or another order that changes from
# run to run): compared as sorted lines, unless the command sorts itself.
_UNORDERED = re.compile(r"\bbpfmap (dump|stacks|list|events|count|show|delete)\b")
_SORTED = re.compile(r"--sort|--top|\|\s*(sort|head|tail)\b")


def normalise(text: str) -> str:
    for pattern, repl in _COMPILED:
        text = pattern.sub(repl, text)
    return "\n".join(line.rstrip() for line in text.rstrip("\n").split("\n"))


def unordered(command: str) -> bool:
    """Whether a command's output lines come in an order that changes from run to run."""
    return bool(_UNORDERED.search(command)) and not _SORTED.search(command)


def same(expected: str, actual: str, command: str) -> bool:
    want, got = normalise(expected), normalise(actual)
    if unordered(command):
        return sorted(want.split("\n")) == sorted(got.split("\n"))
    return want == got
