"""The README's Python API section runs: every ```python block of it, in order, in one
namespace (a later block uses what an earlier one made), with /sys/fs/bpf read as a
private bpffs directory and /tmp as a temporary one."""

from __future__ import annotations

import io
import os
import re
import sys

from conftest import REPO

SECTION = "## Python API"


def python_blocks() -> list[str]:
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index(SECTION + "\n")
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end >= 0 else len(text)]
    return re.findall(r"^```python\n(.*?)^```$", section, re.S | re.M)


def test_the_section_has_an_example_of_every_job():
    code = "\n".join(python_blocks())
    for call in ("count(", "Deletion(", "copy(", "migrate(", "Watcher(", "Top(", "histograms(", "UserRingBuffer("):
        assert f"bpfmap.{call}" in code, call
    assert "cpu=" in code and "pid:" in code


def test_every_python_block_runs(pindir, tmp_path, monkeypatch):
    blocks = python_blocks()
    assert len(blocks) >= 5
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    namespace: dict = {"__name__": "readme"}
    for n, block in enumerate(blocks, 1):
        code = block.replace("/tmp/", f"{tmp_path}/").replace("/sys/fs/bpf", pindir)
        exec(compile(code, f"README.md, Python API block {n}", "exec"), namespace)  # noqa: S102
    printed = out.getvalue()
    assert "10.0.0.1 443 1" in printed  # the typed API's loop over the flows
    assert "{1: 42}" in printed  # the bytes API's last line
    assert os.path.exists(os.path.join(pindir, "flows_v1"))  # migrate kept the old map
    assert namespace["done"].new.max_entries == 4096
    assert namespace["job"].held == 1  # the one TCP flow


def test_library_names_parameters_where_the_cli_names_options(pindir):
    import pytest
    from conftest import run_cli

    import bpfmap

    pin = os.path.join(pindir, "pc")
    with bpfmap.create("percpu_array", layout="u32:u64", pin=pin, max_entries=2) as counters:
        with pytest.raises(bpfmap.UsageError) as err:
            counters.update(0, 1, cpu=4096)
        assert str(err.value).startswith("cpu 4096: this machine has CPUs 0..")
        assert err.value.params == ("cpu",)
    r = run_cli("update", pin, "0", "1", "--cpu", "4096")
    assert r.returncode == 2 and "bpfmap: --cpu 4096: this machine has CPUs 0.." in r.stderr
    with pytest.raises(
        bpfmap.UsageError, match=r"^migrate: give the new shape: max_entries, map_type, flags, layout or"
    ):
        bpfmap.migrate(pin)
    r = run_cli("migrate", pin)
    assert r.returncode == 2
    assert "--max-entries, --type, --flags, --layout (or --c-header) or --from-object" in r.stderr
