"""The Python tutorial (docs/reference/python.md) shows every job: a call for each verb
(tests/kernel/test_python_api_docs.py runs its blocks)."""

from __future__ import annotations

import os
import re

from conftest import REPO

PAGE = os.path.join(REPO, "docs", "reference", "python.md")


def python_blocks() -> list[str]:
    with open(PAGE, encoding="utf-8") as f:
        return re.findall(r"^```python\n(.*?)^```$", f.read(), re.S | re.M)


def test_the_section_has_an_example_of_every_job():
    code = "\n".join(python_blocks())
    for call in ("count(", "Deletion(", "copy(", "migrate(", "Watcher(", "Top(", "histograms(", "UserRingBuffer("):
        assert f"bpfmap.{call}" in code, call
    assert "cpu=" in code and "pid:" in code
