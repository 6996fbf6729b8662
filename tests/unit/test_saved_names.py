"""A saved file's name table: the kernel symbols it keeps (those that name the addresses
it holds) answer for those addresses exactly as the whole table does, and a hostile
table is ignored where it is not what the format says, never an error."""

from __future__ import annotations

import bisect

from hypothesis import given
from hypothesis import strategies as st

from bpfmap.host.hostnames import SavedNames
from bpfmap.host.symbols import KernelSymbols

BASE = 0xFFFFFFFF81000000


@given(
    st.lists(st.integers(0, 1 << 20), min_size=1, max_size=40, unique=True),
    st.lists(st.integers(0, (1 << 20) + 4096), min_size=1, max_size=30),
)
def test_the_symbols_kept_for_some_addresses_answer_for_them_as_the_whole_table(starts, offsets):
    whole = KernelSymbols.from_rows([(BASE + s, f"f{s}", "mod" if s % 3 == 0 else None) for s in starts])
    addrs = [BASE + o for o in offsets]
    kept = {bisect.bisect_right(whole.addrs, a) - 1 for a in addrs} - {-1}
    rows = [[whole.addrs[i], whole.names[i], whole.modules[i]] for i in sorted(kept)]
    saved = SavedNames({"ksym": rows})
    assert [saved.kernel().frame(a) for a in addrs] == [whole.frame(a) for a in addrs]
    assert saved.frames(addrs) == [whole.frame(a) for a in addrs]


def test_a_table_answers_only_what_it_holds_and_junk_is_ignored():
    names = SavedNames(
        {
            "uid": {"0": "root", "x": "junk", "7": 7},
            "ifname": [1, 2],
            "ksym": [[1, "a", None], "junk", [2]],
            "user": {"42": [[4096, "main", 16, "prog"], ["bad"]], "me": []},
        }
    )
    assert names.name("uid", 0) == "root" and names.number("uid", "root") == 0
    for kind, n in (("uid", 7), ("gid", 0), ("ifname", 1)):
        try:
            names.name(kind, n)
        except LookupError:
            continue
        raise AssertionError((kind, n))
    assert names.frames([4096], 42) == [{"addr": 4096, "symbol": "main", "offset": 16, "module": "prog"}]
    assert names.frames([4096], 43)[0]["symbol"] == "[unknown]" and names.gone(43) and not names.gone(42)


@given(
    data=st.binary(max_size=400),
    entry=st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16, 20, 24]),
    known=st.lists(st.integers(0, (1 << 32) - 1), max_size=6),
)
def test_the_collector_finds_every_aligned_word_the_host_names(data, entry, known):
    """Collector.feed keeps exactly the numbers the host names that some 4- or 8-byte word
    of the buffer holds (at offsets a multiple of gcd(entry, size), as a field can be):
    the shortcut that skips the 8-byte pass when every named number fits 4 bytes loses none."""
    import math

    from bpfmap.host import hostnames

    data = data[: len(data) - len(data) % entry]
    sets = {"uid": set(known[::2]), "gid": set(known[1::2])}
    c = hostnames.Collector()
    c._host = lambda: sets  # type: ignore[method-assign]  # the host's names: these, not this machine's
    c._kernel_words = lambda words: None  # type: ignore[method-assign]
    c.feed(data, entry)
    words = set()
    for size in (4, 8):
        step = math.gcd(entry, size)
        words |= {int.from_bytes(data[i : i + size], "little") for i in range(0, len(data) - size + 1, step)}
    for kind, numbers in sets.items():
        assert c.found.get(kind, set()) == numbers & words, kind
