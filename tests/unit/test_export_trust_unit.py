"""bpfmap export's label regexp as Prometheus's relabelling reads it (RE2 syntax, the
whole label, ``.`` matching a newline), patterns RE2 refuses refused at load, and the
config's limits: the documented ones are the enforced ones, and a config past them is
refused while it is parsed, before it is built."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest
from conftest import BPFMAP, run_cli

pytest.importorskip("prometheus_client")
pytest.importorskip("re2")
yaml = pytest.importorskip("yaml")

from bpfmap.export import ConfigError, parse_config, read_config  # noqa: E402
from bpfmap.export.config import MAX_CONFIG_NODES  # noqa: E402
from bpfmap.export.labels import MAX_TABLE, Drop  # noqa: E402


def _regexp(pattern: str, drop: bool = False):
    [m] = parse_config(
        {"metrics": [{"name": "m", "map": "/x", "labels": ["l"], "as": {"l": {"regexp": pattern, "drop": drop}}}]}
    )
    [decoder] = m.decoders["l"]
    return decoder


def _kept(pattern: str, text: str) -> bool:
    try:
        return _regexp(pattern)(text) == text
    except Drop:
        return False


@pytest.mark.parametrize(
    ("pattern", "text", "kept"),
    [
        ("nginx", "nginx", True),
        ("nginx", "nginx-worker", False),  # the whole label, as Prometheus: ^(?s:PATTERN)$
        ("worker", "nginx-worker", False),
        ("nginx.*", "nginx-worker", True),
        ("a.b", "a\nb", True),  # . matches a newline
        ("a", "a\n", False),  # $ is the end of the label, not before a last newline
        ("a|b", "b", True),  # the alternation is inside the anchors
        ("^(a+)+$", "a" * 35, True),  # (a b after them: tests/kernel/test_export_trust.py, in a process of its own)
        ("(?i)NGINX", "nginx", True),
        (r"\pL+", "näme", True),  # UTF-8, Unicode classes
        (r"bad\\xff", "bad\udcff", True),  # a byte that is not UTF-8 is the text \xff, as the exposition writes it
    ],
)
def test_regexp_matches_the_whole_label_as_prometheus_relabelling_does(pattern, text, kept):
    assert _kept(pattern, text) is kept


def test_drop_leaves_out_what_matches():
    decoder = _regexp("curl", drop=True)
    assert decoder("curl-x") == "curl-x"
    with pytest.raises(Drop):
        decoder("curl")


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a)\1",  # a backreference
        "(?=a)a",  # lookahead
        "(?<!a)b",  # lookbehind
        r"a\Z",  # Python's \Z (RE2 spells it \z)
        "a{1001}",  # RE2's repeat limit, as Go's
        "(",
    ],
)
def test_a_pattern_re2_refuses_is_refused_at_load(tmp_path, pattern):
    with pytest.raises(ConfigError, match="regexp"):
        _regexp(pattern)
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump({"metrics": [{"name": "m", "map": "/x", "labels": ["l"], "as": {"l": {"regexp": pattern}}}]})
    )
    r = run_cli("export", str(path), "--check")
    assert r.returncode == 2, r.stderr
    assert "regexp" in r.stderr and "RE2" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_re2_is_imported_only_for_a_regexp(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("metrics: [{name: m, map: /x, labels: [l], as: {l: {static_map: {1: one}}}}]\n")
    code = f"import sys, bpfmap.export as e; e.read_config({str(path)!r}); print('re2' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


def _static_map(n: int) -> str:
    return "metrics:\n- name: m\n  map: /x\n  labels: [l]\n  as:\n    l:\n      static_map:\n" + "".join(
        f"        {i}: n{i}\n" for i in range(n)
    )


def test_a_static_map_of_the_documented_limit_loads(tmp_path):
    assert MAX_TABLE == 65536
    path = tmp_path / "c.yaml"
    path.write_text(_static_map(MAX_TABLE))
    [m] = read_config(str(path))
    [table] = m.decoders["l"]
    assert len(table.table) == MAX_TABLE and table("65535") == "n65535"
    path.write_text(_static_map(MAX_TABLE + 1))
    with pytest.raises(ConfigError, match="static_map: 65,537 entries.*65,536"):
        read_config(str(path))


def test_the_config_limit_leaves_room_for_a_full_static_map():
    assert MAX_CONFIG_NODES >= 2 * MAX_TABLE + 1000


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (768 << 20, 768 << 20))


@pytest.mark.parametrize(
    "text",
    [
        "metrics: [" + "0," * 2_000_000 + "]\n",  # 4 MB of text, 2 million values
        "a: &a [" + "0," * 1000 + "]\nmetrics: [" + "*a," * 300 + "]\n",  # aliases: 300,000 values
    ],
    ids=["values", "aliases"],
)
def test_a_config_past_the_limit_is_refused_while_parsing_in_bounded_memory(tmp_path, text):
    """What a config over the limit may cost is what one at the limit costs: refused at
    the value past it, never built whole (here under a 768 MiB address space, where
    building 2 million values does not fit)."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    r = subprocess.run(
        [*BPFMAP, "export", str(path), "--check"], capture_output=True, text=True, timeout=300, preexec_fn=_limit_memory
    )
    assert r.returncode == 2, r.stderr
    assert f"more than {MAX_CONFIG_NODES:,} values" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_a_regexp_without_re2_says_what_to_install(monkeypatch):
    from bpfmap.errors import UsageError

    monkeypatch.setitem(sys.modules, "re2", None)  # import re2 fails, as where it is not installed
    with pytest.raises(UsageError, match=r"google-re2 .*pip install 'bpfmap\[export\]'"):
        _regexp("a")
