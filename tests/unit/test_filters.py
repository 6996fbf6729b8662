"""The filter grammar (--where, --older-than) and the layout conversion rules, without a kernel."""

import time

import pytest

from bpfmap.errors import UsageError
from bpfmap.filters import Age, Condition, Where, parse_duration
from bpfmap.layout import Layout
from bpfmap.layout.convert import Conversion, converter


def types(text: str):
    lay = Layout.parse(text)
    return lay.key.type, lay.value.type


@pytest.mark.parametrize(
    "text, value, passes",
    [
        ("pid=10", {"pid": 10}, True),
        ("pid=0xa", {"pid": 10}, True),
        ("pid!=10", {"pid": 10}, False),
        ("pid<10", {"pid": 9}, True),
        ("pid<10", {"pid": 10}, False),
        ("pid<=10", {"pid": 10}, True),
        ("pid>10", {"pid": 11}, True),
        ("pid>=11", {"pid": 10}, False),
        ("ratio<0.5", {"ratio": 0.25}, True),
        ("comm=curl", {"comm": "curl"}, True),
        ("comm~ur", {"comm": "curl"}, True),
        ("comm~x", {"comm": "curl"}, False),
        ("comm<5", {"comm": "curl"}, False),  # text has no order
        ("ok=true", {"ok": True}, True),
        ("a.b[1]=3", {"a": {"b": [1, 3]}}, True),
        ("missing=1", {"pid": 1}, False),
        # == is =, and a quoted VALUE is the string it spells (as text output writes it)
        ("pid==10", {"pid": 10}, True),
        ('comm=="curl"', {"comm": "curl"}, True),
        ('comm="curl"', {"comm": "curl"}, True),
        ('comm!="curl"', {"comm": "curl"}, False),
        ('comm~"ur"', {"comm": "curl"}, True),
        ('comm="a b"', {"comm": "a b"}, True),
        ('comm="a\\xffb"', {"comm": "a\udcffb"}, True),
        ('comm="say \\"hi\\""', {"comm": 'say "hi"'}, True),
        ('comm="x', {"comm": '"x'}, True),  # not a quoted string: as it is
    ],
)
def test_condition(text, value, passes):
    assert Condition(text)(value) is passes


@pytest.mark.parametrize("bad", ["pid", "=3", "pid<abc", "1x=3", "pid>=", "a..b=1"])
def test_bad_conditions_say_the_grammar(bad):
    with pytest.raises(UsageError):
        Condition(bad)


@pytest.mark.parametrize(
    "text, ns",
    [
        ("90s", 90 * 10**9),
        ("10m", 600 * 10**9),
        ("2h", 7200 * 10**9),
        ("1h30m", 5400 * 10**9),
        ("500ms", 5 * 10**8),
        ("1.5d", 129600 * 10**9),
        ("7", 7 * 10**9),
    ],
)
def test_durations(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "10x",
        "m10",
        "-5",
        "5 m s",
        "1h-2m",
        "10M",
        "2H",
        "1D",
        "90S",
        "inf",
        "Infinity",
        "1e400",
        pytest.param("9" * 400 + "d", id="400-nines-d"),
    ],
)
def test_bad_durations(bad):
    """Units are case-sensitive (10M is not ten minutes), and a length past any clock
    (inf, 1e400, 400 nines of days) is refused rather than an OverflowError."""
    with pytest.raises(UsageError, match="duration"):
        parse_duration(bad)


def test_fields_resolve_against_the_key_and_the_value():
    k, v = types("pid=u32,cpu=u32:pid=u32,comm=char[16],n=u64")
    with pytest.raises(UsageError, match="key.pid or value.pid"):
        Where(["pid=1"], k, v)
    with pytest.raises(UsageError, match="no field nope in the key or the value"):
        Where(["nope=1"], k, v)
    with pytest.raises(UsageError, match="the value has no field cpu"):
        Where(["value.cpu=1"], k, v)
    w = Where(["key.pid=1", "cpu>=2", "comm~ur", "n<100"], k, v)
    assert w({"pid": 1, "cpu": 3}, {"pid": 9, "comm": "curl", "n": 5})
    assert not w({"pid": 1, "cpu": 1}, {"pid": 9, "comm": "curl", "n": 5})
    assert not w({"pid": 2, "cpu": 3}, {"pid": 1, "comm": "curl", "n": 5})


def test_whole_scalar_sides_and_per_cpu_values():
    k, v = types("u32:u64")
    w = Where(["key>=2", "value>10"], k, v, percpu=True)
    assert w(2, [5, 6])  # 11 over the CPUs
    assert not w(2, [5, 5])
    assert not w(1, [50, 50])


def test_age_keeps_what_is_older_than_the_duration():
    k, v = types("u32:ts=u64")
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    w = Where([], k, v, Age("10s", "ts"))
    assert w(1, {"ts": now - 11 * 10**9})
    assert not w(1, {"ts": now - 9 * 10**9})
    per_cpu = Where([], k, v, Age("10s", "ts"), percpu=True)  # the newest CPU's stamp counts
    assert not per_cpu(1, [{"ts": now - 11 * 10**9}, {"ts": now}])
    assert per_cpu(1, [{"ts": now - 11 * 10**9}, {"ts": now - 12 * 10**9}])
    with pytest.raises(UsageError, match="clock jiffies: choose one of"):
        Age("1s", "ts", "jiffies")


def test_conversion_rules():
    _k, old = types("u32:packets=u32,comm=char[8],hist=u32[4],gone=u8")
    _k, new = types("u32:packets=u64,comm=char[4],hist=u32[2],extra=u16")
    plan = Conversion()
    with pytest.raises(UsageError, match="drops value.hist to keep the first"):
        converter(old, new, "value", plan)
    plan = Conversion(drops={"value.hist", "value.gone"}, sets={"value.extra": "7"}, truncate=True)
    f = converter(old, new, "value", plan)
    assert plan.unmatched == []
    got = f({"packets": 5, "comm": "abcdefgh", "hist": [1, 2, 3, 4], "gone": 1})
    assert got == {"packets": 5, "comm": "abcd", "hist": [1, 2], "extra": "7"}
    plan = Conversion()
    converter(old, types("u32:packets=u64")[1], "value", plan)
    assert plan.unmatched == ["value.comm (char[8])", "value.hist (u32[4])", "value.gone (u8)"]
    with pytest.raises(UsageError, match="cannot become"):
        converter(types("u32:a=ipv4")[1], types("u32:a=u32")[1], "value", Conversion())


def test_tests_a_field_could_never_pass_are_refused():
    k, v = types("u32:n=u32,comm=char[8],hist=u32[4],ok=bool,ratio=f64,ts=u64,stats={a=u32,b=u32}")
    for where, why in [
        ("hist>1", "hist is u32\\[4\\], which has no order"),
        ("comm>1", "comm is char\\[8\\], which has no order"),
        ("stats<=2", "stats is struct, which has no order"),
        ("ok>0", "ok is bool, which has no order"),
        ("n=abc", "n is u32, a number; 'abc' is not one"),
        ("ratio!=lots", "ratio is f64, a number"),
    ]:
        with pytest.raises(UsageError, match=why):
            Where([where], k, v)
    Where(["hist[1]>1", "stats.a<=2", "ratio<0.5", "comm=x", "comm~x", "n~12", "hist~3"], k, v)  # these can pass
    for field in ("comm", "hist", "ratio", "ok", "stats"):
        with pytest.raises(UsageError, match=f"time_field {field}: .* not an integer"):
            Where([], k, v, Age("1s", field))
    Where([], k, v, Age("1s", "ts"))
    Where([], k, v, Age("1s", "stats.a"))


def test_a_value_in_the_shown_form_means_what_the_field_holds():
    """With display formats, a filter still compares what the field holds (the number);
    its VALUE may be written in the shown form too, and both mean the same."""
    k, v = types("u32:n=u32,e=s32,codes=s32[2],addr=u32")
    formats = ({}, {"n": "hex", "e": "errno", "codes": "errno", "addr": "ip"})
    entry = {"n": 9, "e": -2, "codes": [5, 2], "addr": 0x0100000A}
    for where in [
        "n>8",
        "n>0x8",
        "n=09 00 00 00",
        "e=-2",
        "e=-ENOENT",
        "e!=ENOENT",
        "codes[1]=ENOENT",
        "addr=10.0.0.1",
    ]:
        assert Where([where], k, v, formats=formats)(1, entry), where
    for where in ["n>9", "e=ENOENT", "e=2", "codes[0]=ENOENT", "addr=10.0.0.2"]:
        assert not Where([where], k, v, formats=formats)(1, entry), where
    with pytest.raises(UsageError, match="'ENOENTX' is neither a number nor a value errno shows"):
        Where(["e=ENOENTX"], k, v, formats=formats)
    with pytest.raises(UsageError, match="'ENOENT' is not one"):
        Where(["e=ENOENT"], k, v)  # not shown as errno: a name means nothing


def test_event_filters_read_what_the_record_holds():
    from bpfmap.layout import TypeCodec
    from bpfmap.layout.formats import apply
    from bpfmap.streams.events import Record, RecordDecoder

    stored = TypeCodec(types("u32:pid=u32,err=s32")[1])
    shown, _rest = apply(stored, {"err": "errno"})
    records = [Record(bytes.fromhex(h)) for h in ("01000000feffffff", "02000000fbffffff", "03000000")]
    for where in ("err=-2", "err=-ENOENT", "err<-1"):
        dec = RecordDecoder(shown, [Condition(where)], stored=stored, formats={"err": "errno"})
        got = [(v["pid"], v.get("err")) for _r, v, _x in dec.decode(records)]
        assert got == ([(1, "-ENOENT"), (2, "-EIO")] if where == "err<-1" else [(1, "-ENOENT")]), where


def test_tilde_looks_in_the_text_the_entry_shows():
    """``~`` reads the entry as the output shows it (``shown``), the other tests what the
    fields hold; without ``shown`` the entry is shown as it is held."""
    k, v = types("u32:e=s32,addr=u32,n=u32")
    formats = ({}, {"e": "errno", "addr": "ip"})
    held = {"e": -2, "addr": 0x0100000A, "n": 7}
    shown = {"e": "-ENOENT", "addr": "10.0.0.1", "n": 7}
    for where in (["e~NOENT"], ["addr~10.0.0."], ["e~NOENT", "e=-2", "n~7"], ["e~-ENOENT", "e=-ENOENT"]):
        w = Where(where, k, v, formats=formats)
        assert w.reads_shown and w(1, held, (1, shown)), where
        assert not w(1, held), where  # the held entry shows no name
    for where in (["e~-2"], ["addr~16777226"], ["e~NOENT", "n~8"]):
        assert not Where(where, k, v, formats=formats)(1, held, (1, shown)), where
    assert not Where(["e=-2", "n>1"], k, v, formats=formats).reads_shown


def test_event_filters_look_in_the_text_a_record_shows():
    from bpfmap.layout import TypeCodec
    from bpfmap.layout.formats import apply
    from bpfmap.streams.events import Record, RecordDecoder

    stored = TypeCodec(types("u32:pid=u32,err=s32")[1])
    shown, _rest = apply(stored, {"err": "errno"})
    records = [Record(bytes.fromhex(h)) for h in ("01000000feffffff", "02000000fbffffff", "03000000")]
    for where, pids in [("err~NOENT", [1]), ("err~E", [1, 2]), ("err~-2", []), ("pid~3", [3])]:
        dec = RecordDecoder(shown, [Condition(where)], stored=stored, formats={"err": "errno"})
        assert [v["pid"] for _r, v, _x in dec.decode(records)] == pids, where


@pytest.mark.parametrize(
    "cond",
    ["key<0", "key<=-1", "key=-1", "key=4294967296", "key>4294967295", "key>=5000000000", "key=1.5", "value=1e400",
     "value<0", "s<-128", "s>127", "s=200"],
)  # fmt: skip
def test_an_integer_compared_past_its_range_is_refused(cond):
    """A test no value of the field can pass (past its range, or a fraction it should
    equal) is exit 2 before the map is read, not an empty answer."""
    lay = Layout.parse("u32:u64") if not cond.startswith("s") else Layout.parse("u32:s=s8,n=u8")
    with pytest.raises(UsageError, match="no entry can pass it"):
        Where([cond], lay.key.type, lay.value.type)


@pytest.mark.parametrize("cond", ["key>=0", "key<4294967296", "key!=1.5", "key=4294967295", "s>=-128", "s!=200"])
def test_an_integer_compared_within_its_range_is_taken(cond):
    lay = Layout.parse("u32:s=s8,n=u8")
    Where([cond], lay.key.type, lay.value.type)


def test_a_per_cpu_sum_has_no_upper_bound():
    """Per-CPU values compare by their sum: past one CPU's range is a value the sum can take."""
    lay = Layout.parse("u32:u8")
    Where(["value>255"], lay.key.type, lay.value.type, percpu=True)
    with pytest.raises(UsageError, match="no entry can pass it"):
        Where(["value<0"], lay.key.type, lay.value.type, percpu=True)
