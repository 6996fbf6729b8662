"""core.threads.prefetch: a dump's read-ahead thread hands every item over in order,
passes the reader's error on, and is stopped and joined when the caller stops early
(it must never read the map after the caller has closed it)."""

from __future__ import annotations

import threading

import pytest

from bpfmap.core.threads import prefetch


def test_every_item_in_order():
    assert list(prefetch(iter(range(1000)), depth=2)) == list(range(1000))
    assert list(prefetch(iter([]))) == []


def test_the_readers_error_reaches_the_caller_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise OSError(5, "the kernel said no")

    got = []
    with pytest.raises(OSError, match="the kernel said no"):
        for item in prefetch(items()):
            got.append(item)
    assert got == [1, 2]


def test_an_early_stop_joins_the_reader_before_returning():
    read = []
    state = {"closed": False, "read_after_close": False}

    def items():
        for i in range(100):
            if state["closed"]:
                state["read_after_close"] = True
            read.append(i)
            yield i

    stream = prefetch(items(), depth=2)
    assert next(stream) == 0
    before = threading.active_count()
    stream.close()  # the caller stops: the thread is told, and joined here
    state["closed"] = True
    assert threading.active_count() == before - 1
    assert not state["read_after_close"]
    assert len(read) <= 4  # no more than depth items past the one taken (and one in hand)
