"""The Python tutorial (docs/reference/python.md) runs: every ```python block of it, in
order, in one namespace, with /sys/fs/bpf read as a private bpffs directory and a
temporary directory as the working one.  (tests/docs runs each block as a script of its
own, as a reader would, on a fresh bpffs at /sys/fs/bpf.)"""

from __future__ import annotations

import io
import os
import re
import sys

from conftest import REPO

PAGE = os.path.join("docs", "reference", "python.md")


def python_blocks() -> list[str]:
    with open(os.path.join(REPO, PAGE), encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"^```python\n(.*?)^```$", text, re.S | re.M)


def test_every_python_block_runs(pindir, tmp_path, monkeypatch):
    blocks = python_blocks()
    assert len(blocks) >= 5
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    for n, block in enumerate(blocks, 1):
        code = block.replace("/tmp/", f"{tmp_path}/").replace("/sys/fs/bpf", pindir)
        exec(compile(code, f"{PAGE}, block {n}", "exec"), namespace)  # noqa: S102
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
